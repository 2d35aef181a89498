package placementdriver

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
)

// memMeta is PD metadata in memory, for the allocator's tests.
type memMeta struct {
	mu   sync.Mutex
	rows map[string][]byte
}

func (m *memMeta) get(_ context.Context, row string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.rows[row]
	return v, ok, nil
}

func (m *memMeta) put(_ context.Context, rows map[string][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range rows {
		m.rows[k] = v
	}
	return nil
}

func (m *memMeta) cas(_ context.Context, row string, old, v []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.rows[row]
	if (old == nil && ok) || (old != nil && (!ok || !bytes.Equal(cur, old))) {
		return false, nil
	}
	m.rows[row] = v
	return true, nil
}

func (m *memMeta) scan(_ context.Context, prefix string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range m.rows {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (m *memMeta) localRow(ctx context.Context, row string) ([]byte, bool, error) {
	return m.get(ctx, row)
}

func (m *memMeta) leader() (uint64, uint64, error) { return 1, 1, nil }

// IDs come out in the order they are asked for, whether the scheduler
// takes them (AllocID, never waiting on raft) or a split or table create
// does (alloc): a store's tombstone refuses a re-added replica whose ID is
// below the removed one's, so an older ID handed out later strands the
// replica (kvnemesis: a learner re-added with an ID from a block reserved
// earlier never came into being, and its tablet lost its quorum).
func TestIDsIncreaseAcrossCallers(t *testing.T) {
	ctx := context.Background()
	m := &memMeta{rows: map[string][]byte{}}
	c := &cluster{alloc: &idAllocator{meta: m}}
	c.ids.c = c
	if err := c.alloc.load(ctx); err != nil {
		t.Fatal(err)
	}
	var last uint64
	check := func(what string, id uint64) {
		t.Helper()
		if id <= last {
			t.Fatalf("%s got id %d after %d was handed out", what, id, last)
		}
		last = id
	}
	for i := range 3 * idWindow {
		if err := c.ids.refill(ctx); err != nil {
			t.Fatal(err)
		}
		check("the scheduler", c.ids.AllocID())
		if i%7 == 0 {
			first, err := c.alloc.alloc(ctx, 12)
			if err != nil {
				t.Fatal(err)
			}
			check("a split", first)
			last = first + 11
		}
	}
	// A new leader starts past every ID the old one could have served.
	next := &idAllocator{meta: m}
	if err := next.load(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := next.alloc(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	check("the next leader", id)
}

// A leader that lost the allocation row to another leader stops handing
// out IDs once its window is spent.
func TestIDAllocatorStaleLeaderStops(t *testing.T) {
	ctx := context.Background()
	m := &memMeta{rows: map[string][]byte{}}
	a, b := &idAllocator{meta: m}, &idAllocator{meta: m}
	for _, x := range []*idAllocator{a, b} {
		if err := x.load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.alloc(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.alloc(ctx, 1); err != errNotLeaderAnymore {
		t.Fatalf("a second leader with a stale window: got %v, want errNotLeaderAnymore", err)
	}
}
