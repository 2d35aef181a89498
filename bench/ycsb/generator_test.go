package ycsb

import (
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/stretchr/testify/require"
)

// testRand returns a source seeded by testutils.Seed (SHALE_TEST_SEED
// replays it).
func testRand(t *testing.T) *rand.Rand {
	t.Helper()
	return testutils.Rand(t, 0x5ca1e)
}

// counts draws n values and counts each.
func counts(r *rand.Rand, g IntGenerator, n int) map[int64]int {
	c := map[int64]int{}
	for range n {
		c[g.Next(r)]++
	}
	return c
}

// zipfP is the probability of rank k (0-based) among n items with skew
// theta.
func zipfP(k, n int64, theta float64) float64 {
	return 1 / math.Pow(float64(k+1), theta) / zeta(0, n, theta, 0)
}

// YCSB's keys are FNV hashes of the record number: record 0 is the
// well-known "user6284781860667377211".
func TestFNVHash64MatchesYCSB(t *testing.T) {
	require.Equal(t, int64(6284781860667377211), FNVHash64(0))
	require.Equal(t, int64(8517097267634966620), FNVHash64(1))
	for i := int64(0); i < 10000; i++ {
		require.GreaterOrEqual(t, FNVHash64(i), int64(0))
	}
}

func TestUniformShape(t *testing.T) {
	r := testRand(t)
	const n, lo, hi = 200_000, 10, 29
	c := counts(r, Uniform{lo, hi}, n)
	require.Len(t, c, hi-lo+1, "every value in [lo, hi] drawn, nothing else")
	want := float64(n) / (hi - lo + 1)
	for v, got := range c {
		require.True(t, v >= lo && v <= hi, "value %d out of range", v)
		require.InDelta(t, want, float64(got), 0.05*want, "value %d", v)
	}
}

func TestZipfianShape(t *testing.T) {
	r := testRand(t)
	const n, items = 400_000, 1000
	c := counts(r, NewZipfian(0, items-1), n)
	// Ranks 0 and 1 are exact zipfian (1/(k+1)^0.99 / zeta(n): item 0
	// about 13%); later ranks follow Gray et al.'s approximation, as in
	// YCSB; each rank is more popular than the next.
	for k := int64(0); k < 8; k++ {
		want := grayP(k, items) * n
		require.InDelta(t, want, float64(c[k]), 0.05*want, "rank %d", k)
		require.Greater(t, c[k], c[k+1], "rank %d more popular than rank %d", k, k+1)
	}
	require.InDelta(t, zipfP(0, items, ZipfianConstant), grayP(0, items), 1e-12)
	require.InDelta(t, zipfP(1, items, ZipfianConstant), grayP(1, items), 1e-12)
	for v := range c {
		require.True(t, v >= 0 && v < items, "value %d out of range", v)
	}
	// The top 10% of items get most of the draws.
	top := 0
	var wantTop float64
	for k := int64(0); k < items/10; k++ {
		top += c[k]
		wantTop += grayP(k, items)
	}
	require.InDelta(t, wantTop, float64(top)/n, 0.01, "share of the top 10%%")
	require.Greater(t, float64(top)/n, 0.6)
}

// grayP is the probability that YCSB's ZipfianGenerator over [0, n)
// returns k: ranks 0 and 1 by the exact zipfian probability, rank k >= 2
// when n*(eta*u-eta+1)^alpha falls in [k, k+1) for u uniform in [0, 1).
func grayP(k, n int64) float64 {
	theta := ZipfianConstant
	zetan := zeta(0, n, theta, 0)
	if k < 2 {
		return zipfP(k, n, theta)
	}
	alpha := 1 / (1 - theta)
	eta := (1 - math.Pow(2.0/float64(n), 1-theta)) / (1 - zeta(0, 2, theta, 0)/zetan)
	uMin := (1 + math.Pow(0.5, theta)) / zetan // below it, ranks 0 and 1
	u := func(x float64) float64 {
		v := (math.Pow(x/float64(n), 1/alpha) - 1 + eta) / eta
		return math.Min(1, math.Max(uMin, v))
	}
	return u(float64(k+1)) - u(float64(k))
}

func TestScrambledZipfianShape(t *testing.T) {
	r := testRand(t)
	const n, items = 200_000, 10_000
	const lo = 500
	g := NewScrambledZipfian(lo, lo+items-1)
	c := counts(r, g, n)
	type kv struct {
		v int64
		n int
	}
	var byCount []kv
	for v, k := range c {
		require.True(t, v >= lo && v < lo+items, "value %d out of range", v)
		byCount = append(byCount, kv{v, k})
	}
	sort.Slice(byCount, func(i, j int) bool { return byCount[i].n > byCount[j].n })
	// The popular items are where the hash puts zipfian ranks 0 and 1, not
	// at the start of the range.
	require.Equal(t, lo+FNVHash64(0)%items, byCount[0].v)
	require.Equal(t, lo+FNVHash64(1)%items, byCount[1].v)
	// Rank 0 of YCSB's 10^10-item zipfian: 1/zetan of the draws.
	require.InDelta(t, 1/scrambledZetan, float64(byCount[0].n)/n, 0.1/scrambledZetan)
	// Still skewed: the 1% most drawn items get far more than 1%.
	top := 0
	for _, e := range byCount[:items/100] {
		top += e.n
	}
	require.Greater(t, float64(top)/n, 0.2)
}

func TestSkewedLatestFollowsInserts(t *testing.T) {
	r := testRand(t)
	basis := NewAcknowledgedCounter(1000) // records 0..999 exist
	g := NewSkewedLatest(basis)
	require.Equal(t, int64(999), basis.Last())
	const n = 100_000
	c := counts(r, g, n)
	for v := range c {
		require.True(t, v >= 0 && v <= 999, "value %d beyond the last record", v)
	}
	// The newest record is the most popular, then the one before it.
	require.InDelta(t, zipfP(0, 999, ZipfianConstant), float64(c[999])/n, 0.1*zipfP(0, 999, ZipfianConstant))
	require.Greater(t, c[999], c[998])
	require.Greater(t, c[998], c[997])
	require.Greater(t, c[997], c[500]+c[100])

	// Insert 100 more: the popularity moves to the new end.
	for range 100 {
		basis.Acknowledge(basis.Next(nil))
	}
	require.Equal(t, int64(1099), basis.Last())
	c = counts(r, g, n)
	require.Greater(t, c[1099], c[1098])
	require.Greater(t, c[1098], c[999])
	require.Zero(t, c[1100])
}

func TestHotspotShape(t *testing.T) {
	r := testRand(t)
	const n = 200_000
	g := NewHotspot(0, 999, 0.2, 0.8)
	require.Equal(t, int64(199), g.HotSetUpperBound)
	c := counts(r, g, n)
	hot := 0
	for v, k := range c {
		require.True(t, v >= 0 && v <= 999, "value %d out of range", v)
		if v <= 199 {
			hot += k
		}
	}
	require.InDelta(t, 0.8, float64(hot)/n, 0.01, "share of the hot set")
	// Uniform inside each set: each half of the hot set gets 40%, each
	// half of the cold set 10%.
	share := func(lo, hi int64) float64 {
		k := 0
		for v := lo; v <= hi; v++ {
			k += c[v]
		}
		return float64(k) / n
	}
	require.InDelta(t, 0.4, share(0, 99), 0.01)
	require.InDelta(t, 0.4, share(100, 199), 0.01)
	require.InDelta(t, 0.1, share(200, 599), 0.01)
	require.InDelta(t, 0.1, share(600, 999), 0.01)

	// Degenerate fractions do not divide by zero.
	all := NewHotspot(0, 9, 1, 0.5)
	none := NewHotspot(0, 9, 0, 0.5)
	for range 1000 {
		require.LessOrEqual(t, all.Next(r), int64(9))
		require.LessOrEqual(t, none.Next(r), int64(9))
	}
}

func TestDiscreteProportions(t *testing.T) {
	r := testRand(t)
	var d Discrete
	d.Add(0.5, OpRead)
	d.Add(0.0, OpScan) // never chosen
	d.Add(0.3, OpUpdate)
	d.Add(0.2, OpInsert)
	got := map[string]int{}
	const n = 100_000
	for range n {
		got[d.Next(r)]++
	}
	require.Zero(t, got[OpScan])
	require.InDelta(t, 0.5, float64(got[OpRead])/n, 0.01)
	require.InDelta(t, 0.3, float64(got[OpUpdate])/n, 0.01)
	require.InDelta(t, 0.2, float64(got[OpInsert])/n, 0.01)
}

func TestAcknowledgedCounter(t *testing.T) {
	c := NewAcknowledgedCounter(10)
	require.Equal(t, int64(9), c.Last())
	a, b, d := c.Next(nil), c.Next(nil), c.Next(nil)
	require.Equal(t, []int64{10, 11, 12}, []int64{a, b, d})
	c.Acknowledge(12)
	c.Acknowledge(11)
	require.Equal(t, int64(9), c.Last(), "10 is not acknowledged yet")
	c.Acknowledge(10)
	require.Equal(t, int64(12), c.Last())

	// Concurrent inserts: every value acknowledged, so Last reaches the end.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Acknowledge(c.Next(nil))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(12+8000), c.Last())
}

func TestDeterministicValue(t *testing.T) {
	require.Equal(t, int32(99162322), javaStringHash("hello"))
	v := DeterministicValue("user1", "field0", 40)
	require.Equal(t, "user1:field0:1621652138:-344534249:-1466", v)
	require.Len(t, DeterministicValue("user6284781860667377211", "field9", 100), 100)
	require.Equal(t, "user1", DeterministicValue("user1", "field0", 5))
}
