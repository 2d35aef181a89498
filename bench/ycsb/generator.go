package ycsb

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// The generators below are YCSB's (site.ycsb.generator), with the same
// formulas and constants, so a workload draws the same shapes as YCSB.
// They are shared by all client threads: Next takes the caller's own
// random source (one per thread, seeded), so draws need no lock.

// IntGenerator draws integers. Next is safe for concurrent use when each
// caller passes its own r.
type IntGenerator interface {
	Next(r *rand.Rand) int64
}

// Counter hands out consecutive integers from a start value (YCSB's
// CounterGenerator).
type Counter struct{ next atomic.Int64 }

// NewCounter returns a counter whose first value is start.
func NewCounter(start int64) *Counter {
	c := &Counter{}
	c.next.Store(start)
	return c
}

// Next returns the next value.
func (c *Counter) Next(*rand.Rand) int64 { return c.next.Add(1) - 1 }

// Last returns the last value handed out (start-1 before the first).
func (c *Counter) Last() int64 { return c.next.Load() - 1 }

// AcknowledgedCounter is a Counter whose Last is the highest value below
// which every value handed out has been acknowledged (YCSB's
// AcknowledgedCounterGenerator): transactions only choose keys that were
// inserted completely.
type AcknowledgedCounter struct {
	Counter
	limit atomic.Int64
	mu    sync.Mutex
	acked map[int64]bool // acknowledged values above limit
}

// NewAcknowledgedCounter returns a counter whose first value is start.
func NewAcknowledgedCounter(start int64) *AcknowledgedCounter {
	c := &AcknowledgedCounter{acked: map[int64]bool{}}
	c.next.Store(start)
	c.limit.Store(start - 1)
	return c
}

// Last returns the highest value v such that every value up to v has been
// acknowledged.
func (c *AcknowledgedCounter) Last() int64 { return c.limit.Load() }

// Acknowledge marks v (a value returned by Next) as done.
func (c *AcknowledgedCounter) Acknowledge(v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acked[v] = true
	l := c.limit.Load()
	for c.acked[l+1] {
		delete(c.acked, l+1)
		l++
	}
	c.limit.Store(l)
}

// Uniform draws uniformly from [Min, Max] (YCSB's UniformLongGenerator).
type Uniform struct{ Min, Max int64 }

// Next draws a value.
func (u Uniform) Next(r *rand.Rand) int64 {
	if u.Max <= u.Min {
		return u.Min
	}
	return u.Min + r.Int64N(u.Max-u.Min+1)
}

// ZipfianConstant is YCSB's default skew (ZipfianGenerator.ZIPFIAN_CONSTANT).
const ZipfianConstant = 0.99

// Zipfian draws from [min, max] with popularity falling as a power law:
// min is the most popular item, min+1 the next, and so on (YCSB's
// ZipfianGenerator, after Gray et al., "Quickly Generating Billion-Record
// Synthetic Databases", SIGMOD 1994).
type Zipfian struct {
	items int64
	base  int64
	theta float64
	zeta2 float64
	alpha float64
	mu    sync.Mutex // serializes recomputation of state
	state atomic.Pointer[zipfState]
}

// zipfState depends on the item count; it is replaced as a whole when a
// caller asks for a larger count (SkewedLatest does, as inserts land).
type zipfState struct {
	n     int64 // the item count zetan was computed for
	zetan float64
	eta   float64
}

// NewZipfian returns a generator over [min, max] with YCSB's constant.
func NewZipfian(min, max int64) *Zipfian {
	return newZipfian(min, max, ZipfianConstant, zeta(0, max-min+1, ZipfianConstant, 0))
}

func newZipfian(min, max int64, theta, zetan float64) *Zipfian {
	z := &Zipfian{items: max - min + 1, base: min, theta: theta}
	z.zeta2 = zeta(0, 2, theta, 0)
	z.alpha = 1.0 / (1.0 - theta)
	z.state.Store(&zipfState{n: z.items, zetan: zetan, eta: z.eta(zetan)})
	return z
}

// eta uses the generator's construction-time item count, as YCSB does.
func (z *Zipfian) eta(zetan float64) float64 {
	return (1 - math.Pow(2.0/float64(z.items), 1-z.theta)) / (1 - z.zeta2/zetan)
}

// zeta returns initial + sum over i in [st, n) of 1/(i+1)^theta.
func zeta(st, n int64, theta, initial float64) float64 {
	sum := initial
	for i := st; i < n; i++ {
		sum += 1 / math.Pow(float64(i+1), theta)
	}
	return sum
}

// Next draws from the generator's whole range.
func (z *Zipfian) Next(r *rand.Rand) int64 { return z.NextN(r, z.items) }

// NextN draws as if the generator had itemCount items (YCSB's
// nextLong(itemcount)). A larger count extends zeta incrementally; a
// smaller one keeps the larger count's constants, as YCSB does by
// default.
func (z *Zipfian) NextN(r *rand.Rand, itemCount int64) int64 {
	st := z.state.Load()
	if itemCount > st.n {
		z.mu.Lock()
		st = z.state.Load()
		if itemCount > st.n {
			zetan := zeta(st.n, itemCount, z.theta, st.zetan)
			st = &zipfState{n: itemCount, zetan: zetan, eta: z.eta(zetan)}
			z.state.Store(st)
		}
		z.mu.Unlock()
	}
	u := r.Float64()
	uz := u * st.zetan
	if uz < 1.0 {
		return z.base
	}
	if uz < 1.0+math.Pow(0.5, z.theta) {
		return z.base + 1
	}
	return z.base + int64(float64(itemCount)*math.Pow(st.eta*u-st.eta+1, z.alpha))
}

// Scrambled zipfian constants (YCSB's ScrambledZipfianGenerator): a
// zipfian over 10^10 items whose zeta is precomputed, hashed onto the
// actual range so popular items are spread over the key space.
const (
	scrambledItemCount = 10_000_000_000
	scrambledZetan     = 26.46902820178302
)

// ScrambledZipfian draws from [Min, Max] with zipfian popularity, but the
// popular items are scattered over the range rather than clustered at its
// start (YCSB's ScrambledZipfianGenerator, used for
// requestdistribution=zipfian).
type ScrambledZipfian struct {
	min, count int64
	gen        *Zipfian
}

// NewScrambledZipfian returns a generator over [min, max].
func NewScrambledZipfian(min, max int64) *ScrambledZipfian {
	return &ScrambledZipfian{min: min, count: max - min + 1,
		gen: newZipfian(0, scrambledItemCount, ZipfianConstant, scrambledZetan)}
}

// Next draws a value.
func (s *ScrambledZipfian) Next(r *rand.Rand) int64 {
	h := FNVHash64(s.gen.Next(r)) % s.count
	if h < 0 { // FNVHash64(x) == MinInt64 only
		h += s.count
	}
	return s.min + h
}

// SkewedLatest favours the most recently inserted items: the newest is the
// most popular, the one before it next, and so on (YCSB's
// SkewedLatestGenerator, used for requestdistribution=latest).
type SkewedLatest struct {
	basis *AcknowledgedCounter
	zipf  *Zipfian
}

// NewSkewedLatest returns a generator over [0, basis.Last()], following
// basis as it grows.
func NewSkewedLatest(basis *AcknowledgedCounter) *SkewedLatest {
	n := basis.Last()
	if n < 1 {
		n = 1
	}
	return &SkewedLatest{basis: basis, zipf: NewZipfian(0, n-1)}
}

// Next draws a value.
func (s *SkewedLatest) Next(r *rand.Rand) int64 {
	max := s.basis.Last()
	if max <= 0 {
		return 0
	}
	v := max - s.zipf.NextN(r, max)
	if v < 0 {
		v = 0
	}
	return v
}

// Hotspot draws from [lower, upper] so that a fraction hotOpn of draws
// fall uniformly in the first hotSet fraction of the range and the rest
// uniformly in the remainder (YCSB's HotspotIntegerGenerator, used for
// requestdistribution=hotspot).
type Hotspot struct {
	lower            int64
	hotInterval      int64
	coldInterval     int64
	hotOpnFraction   float64
	HotSetUpperBound int64 // last value of the hot set (for tests)
}

// NewHotspot returns a hotspot generator.
func NewHotspot(lower, upper int64, hotSetFraction, hotOpnFraction float64) *Hotspot {
	interval := upper - lower + 1
	hot := int64(float64(interval) * hotSetFraction)
	return &Hotspot{lower: lower, hotInterval: hot, coldInterval: interval - hot,
		hotOpnFraction: hotOpnFraction, HotSetUpperBound: lower + hot - 1}
}

// Next draws a value.
func (h *Hotspot) Next(r *rand.Rand) int64 {
	hot := r.Float64() < h.hotOpnFraction
	if h.hotInterval == 0 {
		hot = false
	} else if h.coldInterval == 0 {
		hot = true
	}
	if hot {
		return h.lower + r.Int64N(h.hotInterval)
	}
	return h.lower + h.hotInterval + r.Int64N(h.coldInterval)
}

// Discrete picks one of a few weighted choices (YCSB's DiscreteGenerator).
// Weights need not sum to 1.
type Discrete struct {
	choices []discreteChoice
	sum     float64
}

type discreteChoice struct {
	weight float64
	value  string
}

// Add adds a choice; a zero weight is never chosen.
func (d *Discrete) Add(weight float64, value string) {
	if weight <= 0 {
		return
	}
	d.choices = append(d.choices, discreteChoice{weight, value})
	d.sum += weight
}

// Next picks a choice ("" when there is none).
func (d *Discrete) Next(r *rand.Rand) string {
	v := r.Float64() * d.sum
	for _, c := range d.choices {
		if v < c.weight {
			return c.value
		}
		v -= c.weight
	}
	if len(d.choices) == 0 {
		return ""
	}
	return d.choices[len(d.choices)-1].value
}

// Constant always returns its value.
type Constant int64

// Next returns the constant.
func (c Constant) Next(*rand.Rand) int64 { return int64(c) }

// FNV 64-bit parameters (YCSB's Utils.fnvhash64).
const (
	fnvOffsetBasis64 = int64(-3750763034362895579) // 0xCBF29CE484222325
	fnvPrime64       = int64(1099511628211)
)

// FNVHash64 is YCSB's Utils.fnvhash64: FNV-1a over the 8 little-endian
// bytes of v, made non-negative with Java's Math.abs (which leaves
// MinInt64 negative).
func FNVHash64(v int64) int64 {
	h := fnvOffsetBasis64
	for i := 0; i < 8; i++ {
		octet := v & 0xff
		v >>= 8
		h ^= octet
		h *= fnvPrime64
	}
	if h < 0 {
		h = -h
	}
	return h
}
