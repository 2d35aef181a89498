package store

import (
	"testing"

	"github.com/shaledb/shale/proto/metapb"
)

// Only a newer tablet covering a replica's start key proves the replica's
// tablet merged away; one covering another part of its range may come
// from a split the replica has not applied yet.
func TestSupersedes(t *testing.T) {
	d := func(id uint64, start, end string, version uint64) *metapb.TabletDescriptor {
		return &metapb.TabletDescriptor{TabletId: id, StartKey: []byte(start), EndKey: []byte(end), Epoch: &metapb.Epoch{Version: version, ConfVersion: 1}}
	}
	orphan := d(2, "m", "z", 2)
	for _, tc := range []struct {
		name  string
		newer *metapb.TabletDescriptor
		want  bool
	}{
		{"merged left covers it", d(1, "a", "z", 3), true},
		{"merged left, later split inside it", d(1, "a", "p", 4), true},
		{"unbounded merged tablet", d(1, "", "", 5), true},
		{"same tablet", d(2, "m", "z", 3), false},
		{"older left before the split", d(1, "a", "z", 1), false},
		{"same version", d(1, "a", "z", 2), false},
		{"split off its right part", d(3, "p", "z", 3), false},
		{"left neighbour not merged", d(1, "a", "m", 3), false},
	} {
		if got := supersedes(tc.newer, orphan); got != tc.want {
			t.Errorf("%s: supersedes = %v, want %v", tc.name, got, tc.want)
		}
	}
}
