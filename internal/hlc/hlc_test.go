package hlc

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// manualWall is a wall clock that tests move by hand.
type manualWall struct{ micros atomic.Int64 }

func (m *manualWall) now() time.Time { return time.UnixMicro(m.micros.Load()) }
func (m *manualWall) set(us int64)   { m.micros.Store(us) }

// now calls c.Now, failing the test on an error.
func now(t testing.TB, c *Clock) int64 {
	t.Helper()
	ts, err := c.Now()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestNowFollowsWall(t *testing.T) {
	var w manualWall
	w.set(1_000)
	c := New(w.now, 0)
	require.Equal(t, int64(0), c.Last())
	require.Equal(t, int64(1_000), now(t, c))
	require.Equal(t, int64(1_000), c.Last())

	// Wall does not advance: the logical part ticks by one.
	require.Equal(t, int64(1_001), now(t, c))
	require.Equal(t, int64(1_002), now(t, c))

	// Wall jumps ahead of the logical part: follow it.
	w.set(5_000)
	require.Equal(t, int64(5_000), now(t, c))
}

func TestWallJumpsBackward(t *testing.T) {
	var w manualWall
	w.set(10_000)
	c := New(w.now, 0)
	require.Equal(t, int64(10_000), now(t, c))

	w.set(2_000) // e.g. an NTP step backwards
	prev := int64(10_000)
	for range 100 {
		ts := now(t, c)
		require.Greater(t, ts, prev)
		require.Equal(t, prev+1, ts)
		prev = ts
	}
	require.Equal(t, prev, c.Last())

	// When the wall clock catches up and passes the clock, it is used again.
	w.set(20_000)
	require.Equal(t, int64(20_000), now(t, c))
}

func TestUpdate(t *testing.T) {
	var w manualWall
	w.set(1_000)
	c := New(w.now, 0)

	t.Run("future within the offset", func(t *testing.T) {
		require.NoError(t, c.Update(400_000)) // a peer's clock ahead
		require.Equal(t, int64(400_000), c.Last())
		require.Equal(t, int64(400_001), now(t, c))
	})
	t.Run("past is ignored", func(t *testing.T) {
		require.NoError(t, c.Update(5))
		require.Equal(t, int64(400_001), c.Last())
		require.Equal(t, int64(400_002), now(t, c))
	})
	t.Run("equal is ignored", func(t *testing.T) {
		require.NoError(t, c.Update(c.Last()))
		require.Equal(t, int64(400_002), c.Last())
		require.Equal(t, int64(400_003), now(t, c))
	})
	t.Run("wall overtakes", func(t *testing.T) {
		w.set(2_000_000)
		require.Equal(t, int64(2_000_000), now(t, c))
		require.Equal(t, int64(2_000_000+500_000), c.Limit())
	})
}

func TestNilWallUsesTimeNow(t *testing.T) {
	c := New(nil, 0)
	before := time.Now().UnixMicro()
	ts := now(t, c)
	after := time.Now().UnixMicro()
	require.GreaterOrEqual(t, ts, before)
	require.LessOrEqual(t, ts, after)
	require.Greater(t, now(t, c), ts)
}

// TestUpdateRefusesBeyondOffset: a timestamp beyond the wall clock plus
// the maximum offset, or a negative one, is refused with InvalidArgument
// and leaves the clock where it was.
func TestUpdateRefusesBeyondOffset(t *testing.T) {
	var w manualWall
	w.set(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	c := New(w.now, 500*time.Millisecond)
	before := now(t, c)
	for _, ts := range []int64{
		w.micros.Load() + 500_001,                  // just past the offset
		w.micros.Load() + time.Hour.Microseconds(), // an hour ahead
		math.MaxInt64,
		math.MaxInt64 - 1,
		-1,
		math.MinInt64,
	} {
		err := c.Update(ts)
		require.Error(t, err, "Update(%d)", ts)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "Update(%d): %v", ts, err)
		require.Equal(t, before, c.Last(), "Update(%d) moved the clock", ts)
	}
	require.Equal(t, before+1, now(t, c))
	// Exactly at the offset is accepted.
	require.NoError(t, c.Update(c.Limit()))
	require.Equal(t, w.micros.Load()+500_000, c.Last())
}

// TestNowNeverPanics: a clock whose wall reads the end of time reports
// exhaustion instead of panicking or wrapping around.
func TestNowNeverPanics(t *testing.T) {
	c := New(func() time.Time { return time.UnixMicro(math.MaxInt64) }, 0)
	require.Equal(t, int64(math.MaxInt64), c.Limit()) // saturates
	require.NotPanics(t, func() {
		ts, err := c.Now()
		require.NoError(t, err)
		require.Equal(t, int64(math.MaxInt64), ts)
		_, err = c.Now()
		require.ErrorIs(t, err, ErrExhausted)
	})
	require.Equal(t, int64(math.MaxInt64), c.Last())
	require.NoError(t, c.Update(math.MaxInt64)) // at or below Last: ignored
	require.Equal(t, int64(math.MaxInt64), LimitFrom(math.MaxInt64-10, time.Second))
}

// TestConcurrentNowMonotonic checks, under -race, that concurrent callers get
// strictly increasing timestamps each and unique timestamps overall, with a
// wall clock that stalls and jumps backward while they run.
func TestConcurrentNowMonotonic(t *testing.T) {
	const goroutines = 8
	const perG = 5_000
	var w manualWall
	w.set(1_000_000)
	c := New(w.now, 0)

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
				ts, err := c.Now()
				if err != nil {
					t.Error(err)
					return
				}
				if g == 2 && i%100 == 0 {
					_ = c.Update(ts + 50) // observe something slightly ahead
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
	require.Greater(t, now(t, c), maxTS)
}

// TestConcurrentUpdateThenNow checks that a Now that starts after concurrent
// Updates finished exceeds all of them.
func TestConcurrentUpdateThenNow(t *testing.T) {
	c := New(func() time.Time { return time.UnixMicro(1) }, time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1_000 {
				if err := c.Update(int64(g*1_000_000 + i)); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Now(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.GreaterOrEqual(t, c.Last(), int64(7*1_000_000+999))
	require.Greater(t, now(t, c), int64(7*1_000_000+999))
}

func BenchmarkNow(b *testing.B) {
	c := New(nil, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Now(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
