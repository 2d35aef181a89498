package schedule

import (
	"errors"
	"testing"
)

// TestPutTabletStaleLeaderTerm: a leader report with a lower raft term than
// the held one, or the same term from another store, is stale at the same
// epoch; term 0 (unknown) and a newer epoch are taken.
func TestPutTabletStaleLeaderTerm(t *testing.T) {
	type report struct {
		leader, term, confVersion uint64
		stale                     bool
	}
	cases := []struct {
		name    string
		reports []report
	}{
		{"lower term ignored, higher wins", []report{{1, 5, 1, false}, {2, 4, 1, true}, {2, 6, 1, false}, {1, 5, 1, true}}},
		{"same term same store", []report{{1, 5, 1, false}, {1, 5, 1, false}}},
		{"same term other store keeps the first", []report{{1, 5, 1, false}, {2, 5, 1, true}}},
		{"term 0 taken and clears the term", []report{{1, 5, 1, false}, {2, 0, 1, false}, {3, 1, 1, false}}},
		{"first report after term 0", []report{{1, 0, 1, false}, {2, 3, 1, false}}},
		{"newer epoch taken whatever the term", []report{{1, 5, 1, false}, {2, 4, 2, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster([]*Store{store(1, ""), store(2, ""), store(3, "")}, nil)
			want := uint64(0)
			for i, r := range tc.reports {
				tab := tablet(7, "a", "z", 1, 2, 3)
				tab.LeaderStoreID, tab.Term, tab.ConfVersion = r.leader, r.term, r.confVersion
				_, err := c.PutTablet(tab)
				if r.stale {
					if !errors.Is(err, ErrStaleTablet) {
						t.Fatalf("report %d %+v: want ErrStaleTablet, got %v", i, r, err)
					}
				} else {
					if err != nil {
						t.Fatalf("report %d %+v: %v", i, r, err)
					}
					want = r.leader
				}
				if got := c.Tablet(7).LeaderStoreID; got != want {
					t.Fatalf("after report %d %+v: leader %d, want %d", i, r, got, want)
				}
			}
		})
	}
}

// TestPutTabletTermGoesWithTheTablet: a split's new tablet has a term of
// its own; a merge removes the absorbed tablet with its term.
func TestPutTabletTermGoesWithTheTablet(t *testing.T) {
	c := NewCluster([]*Store{store(1, ""), store(2, ""), store(3, "")}, nil)
	left := tablet(1, "a", "z", 1, 2, 3)
	left.Term = 9
	if _, err := c.PutTablet(left); err != nil {
		t.Fatal(err)
	}
	// Split at "m": the left half's epoch grows, the right is new.
	l2 := tablet(1, "a", "m", 1, 2, 3)
	l2.Version, l2.Term = 2, 9
	r2 := tablet(2, "m", "z", 2, 1, 3)
	r2.Version, r2.Term = 2, 1
	for _, tab := range []*Tablet{l2, r2} {
		if _, err := c.PutTablet(tab); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Tablet(2); got.LeaderStoreID != 2 || got.Term != 1 {
		t.Fatalf("right tablet: %+v", got)
	}
	// Merge: tablet 1 absorbs tablet 2, which leaves the view with its term.
	m := tablet(1, "a", "z", 1, 2, 3)
	m.Version, m.Term = 3, 9
	removed, err := c.PutTablet(m)
	if err != nil || len(removed) != 1 || removed[0].ID != 2 {
		t.Fatalf("merge: removed %v, err %v", removed, err)
	}
	if c.Tablet(2) != nil {
		t.Fatal("absorbed tablet still in the view")
	}
}
