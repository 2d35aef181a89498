package keyviz

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

func k(s string) []byte { return []byte(s) }

// The ring keeps the newest Columns minutes and drops older ones.
func TestRingKeepsTheNewestColumns(t *testing.T) {
	r, err := New(Options{Columns: 10})
	require.NoError(t, err)
	for i := 0; i < 25; i++ {
		r.Observe(1, nil, nil, Rates{ReadBytes: float64(i)}, minute(i))
	}
	require.Equal(t, 10, r.Len())
	m, err := r.Matrix(ReadBytes, minute(0), minute(100), 0)
	require.NoError(t, err)
	// 10 closed columns (minutes 14..23) and the open minute 24.
	require.Len(t, m.Times, 11)
	require.Equal(t, minute(14), m.Times[0])
	require.Equal(t, minute(24), m.Times[10])
	require.Equal(t, 14.0, m.Values[0][0])
	require.Equal(t, 24.0, m.Max)
}

// Memory stays under Options.MaxBytes however many tablets there are and
// however often their boundaries move, and the default bound is the one
// docs/limits.md states.
func TestMemoryIsBounded(t *testing.T) {
	require.Less(t, Options{}.MaxBytes(), 26<<20, "docs/limits.md promises about 25.5 MiB with the defaults")
	rnd := testutils.Rand(t, 0)
	o := Options{Columns: 30, MaxBuckets: 64, MaxKeyBytes: 16}
	r, err := New(o)
	require.NoError(t, err)
	for i := 0; i < 3*o.Columns; i++ {
		// 1000 tablets with long keys that move every minute.
		for id := 0; id < 1000; id++ {
			start := fmt.Sprintf("%08d-%064d", id, rnd.IntN(1000))
			end := fmt.Sprintf("%08d-%064d", id+1, 0)
			r.Observe(uint64(id), k(start), k(end), Rates{1, 2, 3, 4}, minute(i).Add(time.Second))
		}
	}
	require.Equal(t, o.Columns, r.Len())
	require.LessOrEqual(t, r.Bytes(), o.MaxBytes())
	r.mu.Lock()
	for _, c := range r.ring {
		require.LessOrEqual(t, len(c.keys), o.MaxBuckets)
		for _, key := range c.keys {
			require.LessOrEqual(t, len(key), o.MaxKeyBytes)
		}
	}
	r.mu.Unlock()
	// Merged buckets sum their tablets' rates: 1000 tablets of 2 B/s.
	m, err := r.Matrix(WriteBytes, minute(0), minute(1000), 0)
	require.NoError(t, err)
	var sum float64
	for _, v := range m.Values[0] {
		sum += v
	}
	require.InDelta(t, 2000, sum, 1)
}

// Unchanged boundaries are stored once.
func TestUnchangedBoundariesAreShared(t *testing.T) {
	r, err := New(Options{})
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		r.Observe(1, nil, k("m"), Rates{}, minute(i))
		r.Observe(2, k("m"), nil, Rates{}, minute(i))
	}
	// 99 closed columns: one copy of the two keys, plus per-column cost.
	require.Equal(t, 99*(columnBytes+2*16)+2*24+1, r.Bytes())
}

// Rates within a minute are averaged per tablet; columns are in key order;
// the axis is the union of boundaries across a split.
func TestMatrixFollowsSplits(t *testing.T) {
	r, err := New(Options{})
	require.NoError(t, err)
	// Minute 0: one tablet [a, z) reporting 10 then 30 write ops/s.
	r.Observe(7, k("a"), k("z"), Rates{WriteOps: 10}, minute(0))
	r.Observe(7, k("a"), k("z"), Rates{WriteOps: 30}, minute(0).Add(30*time.Second))
	// Minute 1: split at m; the right half is hot.
	r.Observe(7, k("a"), k("m"), Rates{WriteOps: 1}, minute(1))
	r.Observe(8, k("m"), k("z"), Rates{WriteOps: 50}, minute(1))
	// Minute 2: a report of minute 1 arriving late is dropped.
	r.Observe(8, k("m"), k("z"), Rates{WriteOps: 1}, minute(2))
	r.Observe(7, k("a"), k("m"), Rates{WriteOps: 1000}, minute(1).Add(59*time.Second))

	m, err := r.Matrix(WriteOps, minute(0), minute(3), 0)
	require.NoError(t, err)
	require.Equal(t, [][]byte{k("a"), k("m")}, m.Keys)
	require.Equal(t, k("z"), m.End)
	require.Equal(t, []time.Time{minute(0), minute(1), minute(2)}, m.Times)
	// Before the split the tablet covered both rows at its mean rate.
	require.Equal(t, []float64{20, 20}, m.Values[0])
	require.Equal(t, []float64{1, 50}, m.Values[1])
	// Minute 2 (open) has only tablet 8.
	require.Equal(t, []float64{0, 1}, m.Values[2])
	require.Equal(t, 50.0, m.Max)

	_, err = r.Matrix(WriteOps, minute(3), minute(3), 0)
	require.ErrorIs(t, err, ErrBadWindow)
}

// A tablet merged away mid-minute overlaps its survivor: its rates fold
// into the bucket before it instead of producing overlapping buckets.
func TestOverlappingTabletsFold(t *testing.T) {
	r, err := New(Options{})
	require.NoError(t, err)
	r.Observe(1, k("a"), k("m"), Rates{ReadOps: 5}, minute(0))
	r.Observe(2, k("m"), k("z"), Rates{ReadOps: 7}, minute(0))
	r.Observe(1, k("a"), k("z"), Rates{ReadOps: 5}, minute(0).Add(time.Second)) // absorbed 2
	r.Observe(1, k("a"), k("z"), Rates{}, minute(1))
	r.mu.Lock()
	c := r.ring[0]
	r.mu.Unlock()
	require.Equal(t, [][]byte{k("a")}, c.keys)
	require.Equal(t, float32(12), c.vals[0][ReadOps])
}

// Thinning keeps at most maxRows rows.
func TestMatrixThinsTheAxis(t *testing.T) {
	r, err := New(Options{})
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		r.Observe(uint64(i+1), k(fmt.Sprintf("%03d", i)), k(fmt.Sprintf("%03d", i+1)), Rates{ReadBytes: 1}, minute(0))
	}
	m, err := r.Matrix(ReadBytes, minute(0), minute(1), 10)
	require.NoError(t, err)
	require.Len(t, m.Keys, 10)
	var sum float64
	for _, v := range m.Values[0] {
		sum += v
	}
	require.Equal(t, 100.0, sum)
}

func TestOptionsAndMetrics(t *testing.T) {
	_, err := New(Options{Columns: -1})
	require.Error(t, err)
	for _, n := range []string{"read_bytes", "write_bytes", "read_ops", "write_ops"} {
		m, err := ParseMetric(n)
		require.NoError(t, err)
		require.Equal(t, n, m.String())
	}
	_, err = ParseMetric("nope")
	require.ErrorContains(t, err, "unknown heat map metric")
}
