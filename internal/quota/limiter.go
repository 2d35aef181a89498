package quota

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/pdpb"
)

// Scopes of a quota, in errors and metrics.
const (
	ScopeTable = "table"
	ScopeUser  = "user"
)

// burstWindow: a bucket holds this much of its rate, so a quiet subject
// may burst briefly (HBase's default refill window is one second too).
const burstWindow = time.Second

// minBytesBurst keeps byte buckets from being smaller than a typical
// request; maxChunks bounds the work of charging one huge request to a
// small bucket (a request costs at most maxChunks buckets' worth).
const (
	minBytesBurst = 4 << 10
	maxChunks     = 1024
)

// limit indexes, in Names order.
const (
	iReadRPS = iota
	iWriteRPS
	iReadBytes
	iWriteBytes
	nLimits
)

type key struct {
	table uint64
	user  string
}

// bucket holds one subject's token buckets (nil: no such limit).
type bucket struct {
	scope, name string
	lims        [nLimits]*rate.Limiter
}

// Limiter is a tablet server's quota enforcement: the buckets of the
// quota shares PD sent. Admit is safe for concurrent use and costs two map
// lookups when no quota applies; Update replaces the shares.
type Limiter struct {
	now     func() time.Time
	buckets atomic.Pointer[map[key]*bucket]
	mu      sync.Mutex // serializes Update

	throttled *prometheus.CounterVec
	limit     *prometheus.GaugeVec
}

// NewLimiter returns a Limiter with no quota, registering its metrics on
// reg (nil: none).
func NewLimiter(reg prometheus.Registerer) *Limiter {
	l := &Limiter{
		now: time.Now,
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shale_quota_throttled_total",
			Help: "Requests this store refused with QuotaExceeded, by quota scope (table, user), name and limit.",
		}, []string{"scope", "name", "limit"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shale_quota_limit",
			Help: "This store's share of a quota, per second, by scope (table, user), name and limit.",
		}, []string{"scope", "name", "limit"}),
	}
	if reg != nil {
		reg.MustRegister(l.throttled, l.limit)
	}
	m := map[key]*bucket{}
	l.buckets.Store(&m)
	return l
}

func rates(s *pdpb.QuotaShare) [nLimits]float64 {
	return [nLimits]float64{s.ReadRps, s.WriteRps, s.ReadBytes, s.WriteBytes}
}

func burstOf(i int, r float64) int {
	b := int(math.Ceil(r * burstWindow.Seconds()))
	if i >= iReadBytes {
		b = max(b, minBytesBurst)
	}
	return max(b, 1)
}

// Update installs the shares PD sent, replacing the previous ones. A
// bucket whose limit is unchanged keeps its tokens; subjects absent from
// shares are no longer limited.
func (l *Limiter) Update(shares *pdpb.QuotaShares) {
	if shares == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.buckets.Load()
	next := make(map[key]*bucket, len(shares.Shares))
	for _, s := range shares.Shares {
		k := key{table: s.TableId, user: s.User}
		b := &bucket{scope: ScopeTable, name: s.Name}
		if s.User != "" {
			b.scope = ScopeUser
		}
		prev := old[k]
		for i, r := range rates(s) {
			if r <= 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				continue
			}
			lim := (*rate.Limiter)(nil)
			if prev != nil {
				lim = prev.lims[i]
			}
			if lim == nil {
				lim = rate.NewLimiter(rate.Limit(r), burstOf(i, r))
			} else {
				now := l.now()
				lim.SetLimitAt(now, rate.Limit(r))
				lim.SetBurstAt(now, burstOf(i, r))
			}
			b.lims[i] = lim
		}
		next[k] = b
	}
	l.forgetMetrics(old, next)
	for _, b := range next {
		for i, lim := range b.lims {
			if lim != nil {
				l.limit.WithLabelValues(b.scope, b.name, Names[i]).Set(float64(lim.Limit()))
			}
		}
	}
	l.buckets.Store(&next)
}

// forgetMetrics drops the limit gauges of limits that went away.
func (l *Limiter) forgetMetrics(old, next map[key]*bucket) {
	for k, b := range old {
		nb := next[k]
		for i, lim := range b.lims {
			if lim != nil && (nb == nil || nb.lims[i] == nil || nb.name != b.name) {
				l.limit.DeleteLabelValues(b.scope, b.name, Names[i])
			}
		}
	}
}

// Ticket is an admitted request's charge: Done charges the bytes a read
// returned, or refunds the request if it was refused before running.
type Ticket struct {
	l     *Limiter
	res   []*rate.Reservation
	reads []*rate.Limiter // read-bytes buckets to charge after the read
}

// Admit charges a request of table by user (empty: not a user quota) that
// writes or reads; bytes is a write's size. It returns QuotaExceeded,
// with the time to wait, when a bucket is empty; nothing is charged then.
func (l *Limiter) Admit(table uint64, user string, write bool, bytes int) (Ticket, error) {
	m := *l.buckets.Load()
	if len(m) == 0 {
		return Ticket{}, nil
	}
	var bs [2]*bucket
	n := 0
	if b := m[key{table: table}]; b != nil && table != 0 {
		bs[n], n = b, n+1
	}
	if b := m[key{user: user}]; b != nil && user != "" {
		bs[n], n = b, n+1
	}
	if n == 0 {
		return Ticket{}, nil
	}
	t := Ticket{l: l}
	now := l.now()
	iRPS, iBytes := iReadRPS, iReadBytes
	if write {
		iRPS, iBytes = iWriteRPS, iWriteBytes
	}
	for _, b := range bs[:n] {
		if lim := b.lims[iRPS]; lim != nil {
			// Look before taking: a reservation refused and cancelled
			// gives nothing back when others reserved after it
			// (x/time/rate's CancelAt), so refusals must not reserve.
			if tok := lim.TokensAt(now); tok < 1 {
				return Ticket{}, l.refuse(&t, now, b, iRPS, wait(lim, 1-tok))
			}
			r := lim.ReserveN(now, 1)
			t.res = append(t.res, r)
			if d := r.DelayFrom(now); d > 0 { // lost a race for the last token
				return Ticket{}, l.refuse(&t, now, b, iRPS, d)
			}
		}
		lim := b.lims[iBytes]
		if lim == nil {
			continue
		}
		// Bytes are charged in full, possibly into debt (a request may be
		// larger than the bucket); a bucket in debt refuses until repaid.
		if tok := lim.TokensAt(now); tok < 0 {
			return Ticket{}, l.refuse(&t, now, b, iBytes, wait(lim, -tok))
		}
		if write {
			t.res = append(t.res, charge(lim, now, bytes)...)
		} else {
			t.reads = append(t.reads, lim)
		}
	}
	return t, nil
}

// wait is how long lim takes to refill missing tokens.
func wait(lim *rate.Limiter, missing float64) time.Duration {
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}

// charge takes n tokens from lim at now, in chunks of at most its burst
// (x/time/rate refuses a larger single reservation).
func charge(lim *rate.Limiter, now time.Time, n int) []*rate.Reservation {
	var out []*rate.Reservation
	burst := lim.Burst()
	for i := 0; n > 0 && i < maxChunks; i++ {
		c := min(n, burst)
		out = append(out, lim.ReserveN(now, c))
		n -= c
	}
	return out
}

func (l *Limiter) refuse(t *Ticket, now time.Time, b *bucket, i int, wait time.Duration) error {
	for _, r := range t.res {
		r.CancelAt(now)
	}
	l.throttled.WithLabelValues(b.scope, b.name, Names[i]).Inc()
	return errs.QuotaExceeded(b.scope, b.name, Names[i], max(wait, time.Millisecond))
}

// Done finishes an admitted request: a read's returned bytes are charged;
// a request refused before it ran (refund: nothing was served, e.g. this
// replica was not the leader) gives its tokens back.
func (t Ticket) Done(readBytes int, refund bool) {
	if t.l == nil {
		return
	}
	now := t.l.now()
	if refund {
		for _, r := range t.res {
			r.CancelAt(now)
		}
		return
	}
	for _, lim := range t.reads {
		charge(lim, now, readBytes)
	}
}

// Len reports how many subjects are limited (for tests and status).
func (l *Limiter) Len() int { return len(*l.buckets.Load()) }
