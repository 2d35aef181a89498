package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeDirectory is the PD's store directory as a resolver sees it.
type fakeDirectory struct {
	mu      sync.Mutex
	addr    map[uint64]string
	lookups int
	down    bool
}

func (d *fakeDirectory) lookup(_ context.Context, id uint64) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if d.down {
		return "", errors.New("pd unavailable")
	}
	return d.addr[id], nil
}

func (d *fakeDirectory) set(id uint64, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addr[id] = addr
}

// ageEntry moves the resolver's last lookup of id back by d.
func ageEntry(r *pdResolver, id uint64, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[id]
	e.at = e.at.Add(-d)
	r.m[id] = e
}

// TestPDResolverInvalidate: an address the transport could not reach is
// looked up again (at most once per minRefresh), where before it was kept
// for resolveTTL; a PD that cannot answer leaves the old address in use.
func TestPDResolverInvalidate(t *testing.T) {
	d := &fakeDirectory{addr: map[uint64]string{2: "old:1"}}
	r := &pdResolver{lookup: d.lookup, m: map[uint64]resolved{}}
	age := func(id uint64, by time.Duration) { ageEntry(r, id, by) }
	resolve := func() string {
		t.Helper()
		a, err := r.Resolve(2)
		require.NoError(t, err)
		return a
	}

	require.Equal(t, "old:1", resolve())
	d.set(2, "new:2") // store 2 restarted on another port
	require.Equal(t, "old:1", resolve(), "cached")
	require.Equal(t, 1, d.lookups)

	r.Invalidate(2)
	require.Equal(t, "old:1", resolve(), "invalidated within minRefresh of the last lookup: no new lookup yet")
	require.Equal(t, 1, d.lookups)
	age(2, minRefresh)
	require.Equal(t, "new:2", resolve(), "invalidated: asked again")
	require.Equal(t, 2, d.lookups)
	require.Equal(t, "new:2", resolve(), "the new answer is cached")
	require.Equal(t, 2, d.lookups)

	// The PD cannot answer: the last address is better than none.
	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	r.Invalidate(2)
	age(2, minRefresh)
	require.Equal(t, "new:2", resolve())
	require.Equal(t, 3, d.lookups)
	require.Equal(t, "new:2", resolve(), "the failed lookup counts: not asked again at once")
	require.Equal(t, 3, d.lookups)
	r.Invalidate(2)
	age(2, minRefresh)
	require.Equal(t, "new:2", resolve())
	require.Equal(t, 3, d.lookups, "still unreachable, no new answer: the wait doubled")
	age(2, minRefresh)
	require.Equal(t, "new:2", resolve())
	require.Equal(t, 4, d.lookups, "asked again after twice minRefresh")
	_, err := r.Resolve(3)
	require.ErrorContains(t, err, "pd unavailable", "an unknown store with no PD answer is an error")
}

// TestPDResolverBacksOffForADownStore: a store that is down, not moved,
// is looked up at most once per resolveTTL in the end, however often the
// transport finds it unreachable; a lookup that finds it moved starts
// over at minRefresh.
func TestPDResolverBacksOffForADownStore(t *testing.T) {
	d := &fakeDirectory{addr: map[uint64]string{2: "a:1"}}
	r := &pdResolver{lookup: d.lookup, m: map[uint64]resolved{}}
	_, err := r.Resolve(2)
	require.NoError(t, err)
	var waits []time.Duration
	for range 6 {
		r.Invalidate(2)
		// Step time forward until the resolver asks the PD again.
		before, waited := d.lookups, time.Duration(0)
		for d.lookups == before {
			ageEntry(r, 2, minRefresh/2)
			waited += minRefresh / 2
			_, err := r.Resolve(2)
			require.NoError(t, err)
		}
		waits = append(waits, waited)
	}
	require.Equal(t, []time.Duration{minRefresh, 2 * minRefresh, 4 * minRefresh, 8 * minRefresh, resolveTTL, resolveTTL}, waits)

	d.set(2, "b:2") // moved: found at the next lookup, and the wait starts over
	r.Invalidate(2)
	ageEntry(r, 2, resolveTTL)
	a, err := r.Resolve(2)
	require.NoError(t, err)
	require.Equal(t, "b:2", a)
	require.Equal(t, minRefresh, r.m[2].refresh)
}
