package hlc

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// manualWall is a wall clock that tests move by hand.
type manualWall struct{ micros atomic.Int64 }

func (m *manualWall) now() time.Time { return time.UnixMicro(m.micros.Load()) }
func (m *manualWall) set(us int64)   { m.micros.Store(us) }

func TestNowFollowsWall(t *testing.T) {
	var w manualWall
	w.set(1_000)
	c := New(w.now)
	require.Equal(t, int64(0), c.Last())
	require.Equal(t, int64(1_000), c.Now())
	require.Equal(t, int64(1_000), c.Last())

	// Wall does not advance: the logical part ticks by one.
	require.Equal(t, int64(1_001), c.Now())
	require.Equal(t, int64(1_002), c.Now())

	// Wall jumps ahead of the logical part: follow it.
	w.set(5_000)
	require.Equal(t, int64(5_000), c.Now())
}

func TestWallJumpsBackward(t *testing.T) {
	var w manualWall
	w.set(10_000)
	c := New(w.now)
	require.Equal(t, int64(10_000), c.Now())

	w.set(2_000) // e.g. an NTP step backwards
	prev := int64(10_000)
	for range 100 {
		ts := c.Now()
		require.Greater(t, ts, prev)
		require.Equal(t, prev+1, ts)
		prev = ts
	}
	require.Equal(t, prev, c.Last())

	// When the wall clock catches up and passes the clock, it is used again.
	w.set(20_000)
	require.Equal(t, int64(20_000), c.Now())
}

func TestUpdate(t *testing.T) {
	var w manualWall
	w.set(1_000)
	c := New(w.now)

	t.Run("future", func(t *testing.T) {
		c.Update(1_000_000) // a peer's clock far ahead
		require.Equal(t, int64(1_000_000), c.Last())
		require.Equal(t, int64(1_000_001), c.Now())
	})
	t.Run("past is ignored", func(t *testing.T) {
		c.Update(5)
		c.Update(-7)
		require.Equal(t, int64(1_000_001), c.Last())
		require.Equal(t, int64(1_000_002), c.Now())
	})
	t.Run("equal is ignored", func(t *testing.T) {
		c.Update(c.Last())
		require.Equal(t, int64(1_000_002), c.Last())
		require.Equal(t, int64(1_000_003), c.Now())
	})
	t.Run("wall overtakes", func(t *testing.T) {
		w.set(2_000_000)
		require.Equal(t, int64(2_000_000), c.Now())
	})
}

func TestNilWallUsesTimeNow(t *testing.T) {
	c := New(nil)
	before := time.Now().UnixMicro()
	ts := c.Now()
	after := time.Now().UnixMicro()
	require.GreaterOrEqual(t, ts, before)
	require.LessOrEqual(t, ts, after)
	require.Greater(t, c.Now(), ts)
}

func TestExhaustedPanics(t *testing.T) {
	c := New(func() time.Time { return time.UnixMicro(0) })
	c.Update(math.MaxInt64)
	require.Panics(t, func() { c.Now() })
	require.Equal(t, int64(math.MaxInt64), c.Last())
}

// TestConcurrentNowMonotonic checks, under -race, that concurrent callers get
// strictly increasing timestamps each and unique timestamps overall, with a
// wall clock that stalls and jumps backward while they run.
func TestConcurrentNowMonotonic(t *testing.T) {
	const goroutines = 8
	const perG = 5_000
	var w manualWall
	w.set(1_000_000)
	c := New(w.now)

	results := make([][]int64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]int64, 0, perG)
			for i := range perG {
				switch {
				case g == 0 && i%500 == 0:
					w.set(w.micros.Load() - 300) // jump backward
				case g == 1 && i%700 == 0:
					w.set(w.micros.Load() + 1_000) // jump forward
				}
				ts := c.Now()
				if g == 2 && i%100 == 0 {
					c.Update(ts + 50) // observe something slightly ahead
				}
				out = append(out, ts)
			}
			results[g] = out
		}()
	}
	wg.Wait()

	seen := make(map[int64]struct{}, goroutines*perG)
	var maxTS int64
	for g, out := range results {
		for i, ts := range out {
			if i > 0 {
				require.Greater(t, ts, out[i-1], "goroutine %d went backward at call %d", g, i)
			}
			_, dup := seen[ts]
			require.False(t, dup, "timestamp %d returned twice", ts)
			seen[ts] = struct{}{}
			maxTS = max(maxTS, ts)
		}
	}
	require.GreaterOrEqual(t, c.Last(), maxTS)
	require.Greater(t, c.Now(), maxTS)
}

// TestConcurrentUpdateThenNow checks that a Now that starts after concurrent
// Updates finished exceeds all of them.
func TestConcurrentUpdateThenNow(t *testing.T) {
	c := New(func() time.Time { return time.UnixMicro(1) })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1_000 {
				c.Update(int64(g*1_000_000 + i))
				c.Now()
			}
		}()
	}
	wg.Wait()
	require.GreaterOrEqual(t, c.Last(), int64(7*1_000_000+999))
	require.Greater(t, c.Now(), int64(7*1_000_000+999))
}

func BenchmarkNow(b *testing.B) {
	c := New(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Now()
		}
	})
}
