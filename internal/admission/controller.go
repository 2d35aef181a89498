package admission

import (
	"container/list"
	"context"
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"

	"github.com/shaledb/shale/internal/errs"
)

// Retry-after bounds of a ServerBusy answer.
const (
	minRetryAfter = 10 * time.Millisecond
	maxRetryAfter = time.Second
)

// paceBurst is the background limiters' burst: one chunk.
const paceBurst = 1 << 20

// Controller admits one store's work. Safe for concurrent use.
type Controller struct {
	o     Options
	clock clock.WithTicker
	m     *ctlMetrics
	lims  [NumClasses]*rate.Limiter // background classes; paced by Pace

	// logSyncs counts the interval's raft-log syncs, slow ones also in
	// its upper half (ObserveLogSync); logSyncThreshold is
	// LogSyncLatencyThreshold, read without the lock.
	logSyncs         atomic.Uint64
	logSyncThreshold atomic.Int64
	// lastPace is when each background class last paced (unix nanos of
	// the controller's clock; restartIfIdle).
	lastPace [NumClasses]atomic.Int64

	mu struct {
		sync.Mutex
		s           Settings // with defaults, every background class set
		slots       int
		used        int
		peakUsed    int        // most slots in use during the interval
		queue       list.List  // *waiter, FIFO
		queuedReads int        // waiters without write bytes
		write       writeModel // engine samples → write tokens
		writeTokens float64    // +Inf: writes not paced
		l0Score     float64
		sched       time.Duration
		pressured   bool // a foreground request waited or was refused this interval
		// schedLagRun counts the intervals in a row whose scheduling
		// latency was over its target.
		schedLagRun int
		svc         float64 // smoothed foreground service time, seconds
		// slowSyncFrac is the smoothed fraction of raft-log syncs slower
		// than LogSyncLatencyThreshold.
		slowSyncFrac float64
		rates        [NumClasses]float64
		// changed is closed (and replaced) when background waiters
		// should look again.
		changed chan struct{}
	}
}

type waiter struct {
	bytes     int64
	ready     chan struct{}
	granted   bool      // under mu
	grantedAt time.Time // under mu
}

// New returns a controller; the caller runs Tick every o.Interval.
func New(o Options) (*Controller, error) {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.SchedLatency == nil {
		o.SchedLatency = NewSchedSampler().P99
	}
	o.SharedBy = max(o.SharedBy, 1)
	s, err := merge(Settings{Classes: DefaultClassSettings()}, o.Settings)
	if err != nil {
		return nil, err
	}
	c := &Controller{o: o, clock: o.Clock}
	c.mu.s = s
	c.logSyncThreshold.Store(int64(s.LogSyncLatencyThreshold))
	c.mu.slots = s.MinSlots
	c.mu.writeTokens = math.Inf(1)
	c.mu.changed = make(chan struct{})
	for cl := Class(1); cl < NumClasses; cl++ {
		c.mu.rates[cl] = c.ceilingLocked(cl)
		c.lims[cl] = rate.NewLimiter(limitOf(c.mu.rates[cl]), paceBurst)
	}
	c.m = newMetrics(c, o.Registry)
	c.mu.Lock()
	c.m.observeLocked(c)
	c.mu.Unlock()
	return c, nil
}

// merge applies the non-zero fields of upd over cur and fills defaults.
func merge(cur, upd Settings) (Settings, error) {
	classes := maps.Clone(cur.Classes)
	for k, v := range upd.Classes {
		classes[k] = v
	}
	upd.Classes = classes
	upd = upd.withDefaults()
	if err := upd.validate(); err != nil {
		return Settings{}, err
	}
	return upd, nil
}

// Interval is how often the caller should run Tick.
func (c *Controller) Interval() time.Duration { return c.o.Interval }

// Settings returns the current settings.
func (c *Controller) Settings() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mu.s
	s.Classes = maps.Clone(s.Classes)
	return s
}

// Update replaces the settings at run time: zero fields take their
// defaults, and classes not named keep theirs.
func (c *Controller) Update(upd Settings) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := merge(c.mu.s, upd)
	if err != nil {
		return err
	}
	c.mu.s = s
	c.logSyncThreshold.Store(int64(s.LogSyncLatencyThreshold))
	c.mu.slots = min(max(c.mu.slots, s.MinSlots), s.MaxSlots)
	if s.Disabled {
		c.mu.writeTokens = math.Inf(1)
	}
	for cl := Class(1); cl < NumClasses; cl++ {
		c.setRateLocked(cl, min(c.mu.rates[cl], c.ceilingLocked(cl)))
	}
	c.grantLocked()
	c.notifyLocked()
	return nil
}

// ceilingLocked is cl's rate while the foreground is healthy (or
// admission is off: +Inf for an unlimited class).
func (c *Controller) ceilingLocked(cl Class) float64 {
	cs := c.mu.s.Classes[cl.String()]
	if c.mu.s.Disabled && cs.MaxBytesPerSec <= 0 {
		return math.Inf(1)
	}
	return cs.ceiling()
}

func (c *Controller) setRateLocked(cl Class, r float64) {
	if c.mu.s.Disabled {
		r = c.ceilingLocked(cl)
	} else {
		cs := c.mu.s.Classes[cl.String()]
		r = min(max(r, cs.floor(c.o.SharedBy)), cs.ceiling())
	}
	c.mu.rates[cl] = r
	c.lims[cl].SetLimit(limitOf(r))
}

func limitOf(r float64) rate.Limit {
	if math.IsInf(r, 1) {
		return rate.Inf
	}
	return rate.Limit(r)
}

// Ticket is an admitted foreground request. Release it when the request
// ends.
type Ticket struct {
	c     *Controller
	start time.Time
}

// Release returns the request's CPU slot.
func (t Ticket) Release() {
	c := t.c
	if c == nil {
		return
	}
	d := c.clock.Since(t.start).Seconds()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.used--
	if c.mu.svc == 0 {
		c.mu.svc = d
	} else {
		c.mu.svc += (d - c.mu.svc) / 16
	}
	c.grantLocked()
}

// Admit admits a foreground request that writes writeBytes (0 for a
// read). Without a free slot it waits in the queue when its expected wait
// fits its budget (MaxQueueWait, and half the time left before ctx's
// deadline), and at most that budget; otherwise, or past the budget, it
// returns errs.ServerBusy with a retry-after hint. On success the caller
// must Release the ticket.
func (c *Controller) Admit(ctx context.Context, writeBytes int64) (Ticket, error) {
	c.mu.Lock()
	if c.mu.s.Disabled || c.fastPathLocked(writeBytes) {
		c.takeLocked(writeBytes)
		c.mu.Unlock()
		c.m.admitted[Foreground].Inc()
		return Ticket{c, c.clock.Now()}, nil
	}
	c.mu.pressured = true
	wait := c.mu.s.MaxQueueWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	if err := c.refuseLocked(writeBytes, wait); err != nil {
		c.mu.Unlock()
		c.m.rejected[Foreground].Inc()
		return Ticket{}, err
	}
	w := &waiter{bytes: writeBytes, ready: make(chan struct{})}
	e := c.mu.queue.PushBack(w)
	if writeBytes == 0 {
		c.mu.queuedReads++
	}
	if c.mu.queue.Len() == 1 {
		c.notifyLocked() // background yields from now on
	}
	c.mu.Unlock()

	t := c.clock.NewTimer(wait)
	defer t.Stop()
	var cause error
	select {
	case <-w.ready:
	case <-t.C():
	case <-ctx.Done():
		cause = ctx.Err()
	}
	c.mu.Lock()
	if w.granted {
		c.mu.Unlock()
		c.m.delayed[Foreground].Inc()
		c.m.admitted[Foreground].Inc()
		// The service time starts at the grant: counting the queue wait
		// would feed the wait back into the estimate that bounds it.
		return Ticket{c, w.grantedAt}, nil
	}
	c.removeLocked(e)
	err := c.busyLocked(writeBytes)
	c.mu.Unlock()
	c.m.rejected[Foreground].Inc()
	if cause != nil {
		return Ticket{}, status.FromContextError(cause).Err()
	}
	return Ticket{}, err
}

// refuseLocked returns the ServerBusy answer for a request that cannot
// take a slot now and should not queue for one with budget wait: the
// queue is at its memory bound, the budget is under a millisecond, or all
// slots are busy and the expected wait exceeds the budget. A request
// refused for its expected wait is told to come back after about that
// wait: the store could serve it then. nil: queue it.
func (c *Controller) refuseLocked(b int64, wait time.Duration) error {
	if c.mu.queue.Len() >= c.mu.s.MaxQueue || wait < time.Millisecond {
		return c.busyLocked(b)
	}
	if exp := c.expectedWaitLocked(); c.mu.used >= c.mu.slots && exp > wait {
		after := min(max(exp, minRetryAfter), maxRetryAfter)
		return errs.ServerBusy(fmt.Sprintf("store overloaded: %d CPU slots busy, %d requests queued, expected wait %v exceeds the request's budget %v",
			c.mu.used, c.mu.queue.Len(), exp.Round(time.Millisecond), wait.Round(time.Millisecond)), uint64(after.Milliseconds()))
	}
	return nil
}

// expectedWaitLocked is how long a request queued now would wait for a
// slot: its position in rounds of slots times the smoothed service time
// (one slot frees every svc/slots on average). 0 while svc is unknown.
func (c *Controller) expectedWaitLocked() time.Duration {
	rounds := float64(c.mu.queue.Len()+1) / float64(max(c.mu.slots, 1))
	return time.Duration(rounds * c.mu.svc * float64(time.Second))
}

// fastPathLocked: a slot is free, no one that could use it waits, and a
// write finds tokens.
func (c *Controller) fastPathLocked(b int64) bool {
	if c.mu.used >= c.mu.slots {
		return false
	}
	if b == 0 {
		return c.mu.queuedReads == 0
	}
	return c.mu.queue.Len() == 0 && c.mu.writeTokens > 0
}

func (c *Controller) fitsLocked(b int64) bool {
	return c.mu.s.Disabled || (c.mu.used < c.mu.slots && (b == 0 || c.mu.writeTokens > 0))
}

func (c *Controller) takeLocked(b int64) {
	c.mu.used++
	c.mu.peakUsed = max(c.mu.peakUsed, c.mu.used)
	if b > 0 {
		c.mu.writeTokens -= float64(b) // +Inf stays +Inf
		c.mu.write.admitted += b
	}
}

func (c *Controller) removeLocked(e *list.Element) {
	w := c.mu.queue.Remove(e).(*waiter)
	if w.bytes == 0 {
		c.mu.queuedReads--
	}
	if c.mu.queue.Len() == 0 {
		c.notifyLocked()
	}
}

// grantLocked admits waiters, oldest first, while slots are free; a
// write without tokens does not hold up the reads behind it. The queue
// is bounded (by expected wait, and MaxQueue), and the scan stops when
// the slots run out.
func (c *Controller) grantLocked() {
	for e := c.mu.queue.Front(); e != nil; {
		if !c.mu.s.Disabled && c.mu.used >= c.mu.slots {
			return
		}
		next := e.Next()
		if w := e.Value.(*waiter); c.fitsLocked(w.bytes) {
			c.removeLocked(e)
			c.takeLocked(w.bytes)
			w.granted = true
			w.grantedAt = c.clock.Now()
			close(w.ready)
		}
		e = next
	}
}

// busyLocked builds the ServerBusy answer, with a retry-after of about
// the time the queue ahead needs (twice the smoothed service time per
// slot-round), at least MaxQueueWait when the queue is full (clients that
// found it full should not come back before it turned over: refusing
// costs CPU too), or one interval when write tokens ran out.
func (c *Controller) busyLocked(b int64) error {
	if b > 0 && c.mu.used < c.mu.slots && c.mu.writeTokens <= 0 {
		return errs.ServerBusy(fmt.Sprintf("store overloaded: write tokens exhausted (Pebble L0 overload score %.2f)", c.mu.l0Score),
			uint64(c.o.Interval.Milliseconds()))
	}
	rounds := float64(c.mu.queue.Len()+1) / float64(max(c.mu.slots, 1))
	after := time.Duration(2 * c.mu.svc * max(rounds, 1) * float64(time.Second))
	if c.mu.queue.Len() >= c.mu.s.MaxQueue {
		after = max(after, c.mu.s.MaxQueueWait)
	}
	after = min(max(after, minRetryAfter), maxRetryAfter)
	return errs.ServerBusy(fmt.Sprintf("store overloaded: %d CPU slots busy, %d requests queued", c.mu.used, c.mu.queue.Len()),
		uint64(after.Milliseconds()))
}

// notifyLocked wakes the background waiters to look again.
func (c *Controller) notifyLocked() {
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// Pace lets a background class process n more bytes: it yields while
// the foreground is overloaded (at most MaxBackgroundWait), then waits
// for the class's adaptive rate. It returns ctx's error if ctx ends.
func (c *Controller) Pace(ctx context.Context, cl Class, n int) error {
	if cl <= Foreground || cl >= NumClasses {
		return fmt.Errorf("admission: Pace needs a background class, got %v", cl)
	}
	delayed, err := c.yield(ctx, cl)
	if err != nil {
		return err
	}
	c.restartIfIdle(cl)
	lim := c.lims[cl]
	if lim.Limit() != rate.Inf && lim.TokensAt(time.Now()) < float64(min(n, lim.Burst())) {
		delayed = true
	}
	for rest := n; rest > 0; {
		step := min(rest, lim.Burst())
		if err := lim.WaitN(ctx, step); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err // the wait would outlast ctx's deadline
		}
		rest -= step
	}
	c.m.admitted[cl].Inc()
	if delayed {
		c.m.delayed[cl].Inc()
	}
	c.m.bytes[cl].Add(float64(n))
	return nil
}

// idleRestart is how long a background class may go without pacing
// before its next chunk restarts it from its floor rate. While a class
// sends nothing its rate still climbs on every healthy interval, but that
// health says nothing about what the class's own work will do to the
// foreground: a job that started at a ceiling reached while idle ran at
// full speed for the intervals it took the signals to cut it (a drain
// moved 9 replicas in 9 s while the read p99 went from 6.6 to 32 ms).
// TCP restarts its congestion window after an idle period for the same
// reason (RFC 5681 section 4.1, RFC 7661).
const idleRestart = 2 * time.Second

// restartIfIdle drops cl's rate to its floor when cl has not paced for
// idleRestart (or ever): the rate then climbs again while the foreground
// stays healthy.
func (c *Controller) restartIfIdle(cl Class) {
	now := c.clock.Now().UnixNano()
	if now-c.lastPace[cl].Swap(now) <= int64(idleRestart) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setRateLocked(cl, 0) // clamped to the floor (the ceiling when admission is off)
}

// yield waits while cl must give way to the foreground.
func (c *Controller) yield(ctx context.Context, cl Class) (delayed bool, err error) {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		if !c.blockedLocked(cl) {
			c.mu.Unlock()
			return delayed, nil
		}
		ch, maxWait := c.mu.changed, c.mu.s.MaxBackgroundWait
		c.mu.Unlock()
		if timeout == nil {
			t := c.clock.NewTimer(maxWait)
			defer t.Stop()
			timeout = t.C()
		}
		delayed = true
		select {
		case <-ch:
		case <-timeout:
			return true, nil // go on at the class's rate: background work finishes
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// blockedLocked: foreground requests are queueing, or cl writes and L0
// is overloaded.
func (c *Controller) blockedLocked(cl Class) bool {
	if c.mu.s.Disabled {
		return false
	}
	return c.mu.queue.Len() > 0 || (cl.writes() && c.mu.l0Score >= 1)
}

// Tick adjusts the CPU slots, the write tokens and the background rates
// from the last interval's measurements. The store runs it every
// Interval; tests call it directly.
func (c *Controller) Tick() {
	sched := c.o.SchedLatency()
	var eng EngineStats
	if c.o.Engine != nil {
		eng = c.o.Engine()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mu.s
	c.mu.sched = sched
	c.adjustSlotsLocked(sched)
	if c.o.Engine != nil {
		tokens, sc := c.mu.write.sample(eng, s)
		c.mu.l0Score = sc
		switch {
		case s.Disabled:
			c.mu.writeTokens = math.Inf(1)
		case math.IsInf(tokens, 1):
			c.mu.writeTokens = tokens
		case c.mu.writeTokens < 0:
			c.mu.writeTokens += tokens // repay what large writes overdrew
		default:
			c.mu.writeTokens = tokens // no saving up beyond one interval
		}
	}
	slowDisk := c.sampleLogSyncsLocked()
	c.adjustRatesLocked(sched, slowDisk)
	c.mu.pressured = c.mu.queue.Len() > 0
	c.mu.peakUsed = c.mu.used
	c.grantLocked()
	c.notifyLocked()
	c.m.observeLocked(c)
}

// schedLagCutAfter is how many intervals in a row the scheduling latency
// must be over its background target before it cuts the background rates. One
// interval's p99 is a noisy signal: on a busy 2-core machine it was over
// 5ms in 30% of the quiet intervals, and halving on each of them held the
// rates near their floors with no foreground gain (docs/performance.md,
// "QoS: the rate law"). Foreground queueing, L0 and the disk are measured
// over the whole interval, or smoothed, and cut at once.
const schedLagCutAfter = 2

// adjustRatesLocked is the background classes' AIMD step: the rates halve
// when the foreground suffers, hold for a single interval of scheduling
// lag, and otherwise grow by Weight×IncreaseFraction of their ceiling
// (divided among the stores sharing the process: Options.SharedBy).
func (c *Controller) adjustRatesLocked(sched time.Duration, slowDisk bool) {
	s := c.mu.s
	if sched > s.BackgroundSchedLatencyTarget {
		c.mu.schedLagRun++
	} else {
		c.mu.schedLagRun = 0
	}
	cut := c.mu.pressured || c.mu.l0Score >= 1 || slowDisk || c.mu.schedLagRun >= schedLagCutAfter
	for cl := Class(1); cl < NumClasses; cl++ {
		cs := s.Classes[cl.String()]
		r := c.mu.rates[cl]
		switch {
		case cut:
			r /= 2
		case c.mu.schedLagRun == 0:
			r += cs.ceiling() * s.IncreaseFraction * cs.weight() / float64(c.o.SharedBy)
		}
		c.setRateLocked(cl, r)
	}
}

// adjustSlotsLocked shrinks the slots by an eighth while the scheduler
// lags and our own requests fill at least half of them (shrinking
// otherwise would not help), and grows them by a sixteenth while they
// all were in use and the scheduler kept up.
func (c *Controller) adjustSlotsLocked(sched time.Duration) {
	s := c.mu.s
	switch {
	case sched > s.SchedLatencyTarget && c.mu.peakUsed*2 >= c.mu.slots:
		c.mu.slots -= max(1, c.mu.slots/8)
	case sched <= s.SchedLatencyTarget && c.mu.peakUsed >= c.mu.slots:
		c.mu.slots += max(1, c.mu.slots/16)
	}
	c.mu.slots = min(max(c.mu.slots, s.MinSlots), s.MaxSlots)
}

// State is a snapshot of the controller for operators (GET /admission).
// Unlimited values are -1 (JSON has no infinity).
type State struct {
	Settings        Settings           `json:"settings"`
	Slots           int                `json:"cpu_slots"`
	SlotsUsed       int                `json:"cpu_slots_used"`
	Queued          int                `json:"queued"`
	WriteTokens     float64            `json:"write_tokens"`
	L0OverloadScore float64            `json:"l0_overload_score"`
	SlowLogSyncFrac float64            `json:"slow_log_sync_fraction"`
	SchedLatencyP99 string             `json:"sched_latency_p99"`
	Rates           map[string]float64 `json:"background_bytes_per_sec"`
	// SharedBy is Options.SharedBy: the stores sharing the process's CPU.
	SharedBy int `json:"shared_by"`
}

// State returns the controller's state.
func (c *Controller) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := State{
		Settings: c.mu.s, Slots: c.mu.slots, SlotsUsed: c.mu.used, Queued: c.mu.queue.Len(),
		WriteTokens: finite(c.mu.writeTokens), L0OverloadScore: c.mu.l0Score, SlowLogSyncFrac: c.mu.slowSyncFrac, SchedLatencyP99: c.mu.sched.String(),
		Rates: map[string]float64{}, SharedBy: c.o.SharedBy,
	}
	st.Settings.Classes = maps.Clone(st.Settings.Classes)
	for cl := Class(1); cl < NumClasses; cl++ {
		st.Rates[cl.String()] = finite(c.mu.rates[cl])
	}
	return st
}

func finite(v float64) float64 {
	if math.IsInf(v, 1) {
		return -1
	}
	return v
}
