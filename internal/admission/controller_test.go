package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
)

// harness is a controller whose inputs the test sets: a fake clock, a
// scheduling latency and engine stats.
type harness struct {
	c     *Controller
	clock *testingclock.FakeClock
	sched atomic.Int64 // time.Duration
	eng   atomic.Pointer[EngineStats]
	reg   *prometheus.Registry
}

func newHarness(t *testing.T, s Settings) *harness {
	return newSharedHarness(t, s, 0)
}

// newSharedHarness is newHarness for one of sharedBy stores in a process.
func newSharedHarness(t *testing.T, s Settings, sharedBy int) *harness {
	h := &harness{clock: testingclock.NewFakeClock(time.Unix(1e9, 0)), reg: prometheus.NewRegistry()}
	h.eng.Store(&EngineStats{})
	c, err := New(Options{
		Settings: s, Clock: h.clock, Registry: h.reg, Interval: 250 * time.Millisecond, SharedBy: sharedBy,
		SchedLatency: func() time.Duration { return time.Duration(h.sched.Load()) },
		Engine:       func() EngineStats { return *h.eng.Load() },
	})
	require.NoError(t, err)
	h.c = c
	return h
}

func (h *harness) admitN(t *testing.T, n int, writeBytes int64) []Ticket {
	var out []Ticket
	for i := 0; i < n; i++ {
		tk, err := h.c.Admit(context.Background(), writeBytes)
		require.NoError(t, err)
		out = append(out, tk)
	}
	return out
}

// admitAsync admits in a goroutine; the result arrives on the channel.
func (h *harness) admitAsync(ctx context.Context, writeBytes int64) chan error {
	ch := make(chan error, 1)
	go func() {
		tk, err := h.c.Admit(ctx, writeBytes)
		if err == nil {
			tk.Release()
		}
		ch <- err
	}()
	return ch
}

func (h *harness) waitQueued(t *testing.T, n int) {
	testutils.SucceedsSoon(t, func() error {
		if q := h.c.State().Queued; q != n {
			return fmt.Errorf("%d queued, want %d", q, n)
		}
		return nil
	})
}

func requireBusy(t *testing.T, err error) *errorpb.ServerBusy {
	t.Helper()
	sb, ok := errs.As[*errorpb.ServerBusy](err)
	require.True(t, ok, "want ServerBusy, got %v", err)
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.NotZero(t, sb.RetryAfterMs, "a ServerBusy carries a retry-after hint")
	return sb
}

func counter(t *testing.T, h *harness, name string, cl Class) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "shale_admission_"+name {
			continue
		}
		for _, m := range mf.Metric {
			if m.Label[0].GetValue() == cl.String() {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{class=%s}", name, cl)
	return 0
}

// With the slots taken, a request waits in the bounded queue; past the
// queue's bound it gets ServerBusy at once, and a released slot goes to
// the oldest waiter.
func TestForegroundQueueIsBoundedAndRejectsWithServerBusy(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 2, MaxSlots: 2, MaxQueue: 1})
	held := h.admitN(t, 2, 0)
	waiting := h.admitAsync(context.Background(), 0)
	h.waitQueued(t, 1)

	_, err := h.c.Admit(context.Background(), 0)
	sb := requireBusy(t, err)
	require.GreaterOrEqual(t, sb.RetryAfterMs, uint64(100), "a full queue asks for at least MaxQueueWait")
	require.Equal(t, 1.0, counter(t, h, "rejected_total", Foreground))

	held[0].Release()
	require.NoError(t, <-waiting)
	require.Equal(t, 1.0, counter(t, h, "delayed_total", Foreground))
	require.Equal(t, 3.0, counter(t, h, "admitted_total", Foreground))
	held[1].Release()
	require.Zero(t, h.c.State().SlotsUsed)
}

// A waiter gives up after MaxQueueWait with ServerBusy rather than
// queueing until its deadline; with less than a millisecond of deadline
// to spare it is refused at once.
func TestForegroundWaitIsBoundedAndRespectsTheDeadline(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 1, MaxSlots: 1, MaxQueueWait: 50 * time.Millisecond})
	held := h.admitN(t, 1, 0)
	defer held[0].Release()

	waiting := h.admitAsync(context.Background(), 0)
	h.waitQueued(t, 1)
	testutils.SucceedsSoon(t, func() error {
		if !h.clock.HasWaiters() {
			return errors.New("waiter's timer not armed yet")
		}
		return nil
	})
	h.clock.Step(50 * time.Millisecond)
	requireBusy(t, <-waiting)
	require.Zero(t, h.c.State().Queued)

	ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	_, err := h.c.Admit(ctx, 0)
	requireBusy(t, err)
}

// admitHold admits in a goroutine and keeps the ticket: the result
// arrives on the channel.
type admitted struct {
	tk  Ticket
	err error
}

func (h *harness) admitHold(ctx context.Context) chan admitted {
	ch := make(chan admitted, 1)
	h.admitInto(ctx, ch)
	return ch
}

// admitInto admits in a goroutine and sends the result to ch.
func (h *harness) admitInto(ctx context.Context, ch chan<- admitted) {
	go func() {
		tk, err := h.c.Admit(ctx, 0)
		ch <- admitted{tk, err}
	}()
}

// setSvc makes d the smoothed service time: one request held for d on
// a controller that has served none yet.
func (h *harness) setSvc(t *testing.T, d time.Duration) {
	t.Helper()
	tk := h.admitN(t, 1, 0)[0]
	h.clock.Step(d)
	tk.Release()
	require.Equal(t, d.Seconds(), h.svc())
}

func (h *harness) svc() float64 {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.c.mu.svc
}

// The queue is bounded by expected wait, not by count: with the slots
// full and a short service time, ten times the old bound (4×MinSlots)
// queue rather than being refused, and all get a slot within
// MaxQueueWait as the slots turn over.
func TestQueueBoundedByExpectedWaitNotCount(t *testing.T) {
	const n = 80 // expected wait of the last: 80/2 × 1ms = 40ms < 100ms
	h := newHarness(t, Settings{MinSlots: 2, MaxSlots: 2})
	require.Equal(t, 128, h.c.Settings().MaxQueue, "default 64×MinSlots, a memory bound")
	h.setSvc(t, time.Millisecond)
	held := h.admitN(t, 2, 0)
	results := make(chan admitted, n)
	for i := 0; i < n; i++ {
		h.admitInto(context.Background(), results)
	}
	testutils.SucceedsSoon(t, func() error {
		if q, r := h.c.State().Queued, counter(t, h, "rejected_total", Foreground); q+int(r) != n {
			return fmt.Errorf("%d queued, %.0f refused, want %d in all", q, r, n)
		}
		return nil
	})
	require.Zero(t, counter(t, h, "rejected_total", Foreground), "the store can serve them all within MaxQueueWait")

	// Each round of slots takes the service time: the queue drains in
	// n/2 ms, before any waiter's 100ms timer fires.
	start := h.clock.Now()
	for round := 0; round < n/2; round++ {
		h.clock.Step(time.Millisecond)
		for _, tk := range held {
			tk.Release()
		}
		held = held[:0]
		for i := 0; i < 2; i++ {
			a := <-results
			require.NoError(t, a.err)
			held = append(held, a.tk)
		}
	}
	require.Less(t, h.clock.Since(start), 100*time.Millisecond)
	h.clock.Step(time.Millisecond)
	for _, tk := range held {
		tk.Release()
	}
	require.Equal(t, float64(n), counter(t, h, "delayed_total", Foreground))
	require.InDelta(t, 0.001, h.svc(), 1e-9, "service time counts from the grant, not the queue wait")
}

// With a long service time, a request whose expected wait exceeds its
// budget is refused at once, told to come back after about that wait,
// while the ones ahead that fit still queue.
func TestRequestBeyondExpectedWaitIsRefusedAtOnce(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 2, MaxSlots: 2})
	h.setSvc(t, 80*time.Millisecond)
	held := h.admitN(t, 2, 0)
	first := h.admitHold(context.Background())  // expects 1/2 × 80ms = 40ms
	second := h.admitHold(context.Background()) // 2/2 × 80ms = 80ms
	h.waitQueued(t, 2)

	third := h.admitAsync(context.Background(), 0) // 3/2 × 80ms = 120ms > 100ms
	var err error
	select {
	case err = <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("a request whose expected wait exceeds MaxQueueWait was queued, not refused")
	}
	sb := requireBusy(t, err)
	require.EqualValues(t, 120, sb.RetryAfterMs, "retry after about the expected wait")
	require.Contains(t, sb.Reason, "expected wait 120ms")
	require.Equal(t, 2, h.c.State().Queued)

	// A deadline halves the budget: with 60ms left (budget 30ms) even the
	// head of the queue would wait too long.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	_, err = h.c.Admit(ctx, 0)
	requireBusy(t, err)

	for _, tk := range held {
		tk.Release()
	}
	for _, ch := range []chan admitted{first, second} {
		a := <-ch
		require.NoError(t, a.err)
		a.tk.Release()
	}
}

// Slots shrink while the scheduler lags behind the target and our own
// requests fill them, and grow while they are all in use and the
// scheduler keeps up; they stay within [MinSlots, MaxSlots].
func TestCPUSlotsFollowSchedulingLatency(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 8, MaxSlots: 16, SchedLatencyTarget: 2 * time.Millisecond})
	tks := h.admitN(t, 8, 0)
	h.sched.Store(int64(time.Millisecond))
	h.c.Tick()
	require.Equal(t, 9, h.c.State().Slots, "saturated and healthy: grow")
	for i := 0; i < 20; i++ {
		tks = append(tks, h.admitN(t, h.c.State().Slots-len(tks), 0)...)
		h.c.Tick()
	}
	require.Equal(t, 16, h.c.State().Slots, "capped at MaxSlots")

	h.sched.Store(int64(10 * time.Millisecond))
	h.c.Tick()
	require.Equal(t, 14, h.c.State().Slots, "lagging: shrink by an eighth")
	for _, tk := range tks {
		tk.Release()
	}
	h.c.Tick() // the interval's peak still counts
	slots := h.c.State().Slots
	h.c.Tick()
	require.Equal(t, slots, h.c.State().Slots, "idle slots are not shrunk: the lag is not ours")
	for i := 0; i < 20; i++ {
		tks = h.admitN(t, h.c.State().Slots, 0)
		for _, tk := range tks {
			tk.Release()
		}
		h.c.Tick()
	}
	require.Equal(t, 8, h.c.State().Slots, "floored at MinSlots")
}

// While L0 is overloaded, writes get the tokens compactions drained out
// of L0 (in request bytes, through the measured amplification); out of
// tokens a write gets ServerBusy naming the write tokens while reads
// still pass. A healthy L0 lifts the pacing.
func TestWriteTokensFollowL0(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 4, MaxSlots: 4, MaxQueue: 1, L0SublevelThreshold: 10})
	h.eng.Store(&EngineStats{L0Sublevels: 2, L0Bytes: 100 << 20, L0AddedBytes: 1000 << 20})
	h.c.Tick()
	require.Equal(t, -1.0, h.c.State().WriteTokens, "healthy L0: writes not paced")
	h.admitN(t, 1, 10<<20)[0].Release() // 10 MiB admitted…
	// …became 20 MiB in L0 (amp 2), and 60 MiB left L0; now 20 sublevels: score 2.
	h.eng.Store(&EngineStats{L0Sublevels: 20, L0Bytes: 60 << 20, L0AddedBytes: 1020 << 20})
	h.c.Tick()
	st := h.c.State()
	require.InDelta(t, 2.0, st.L0OverloadScore, 1e-9)
	require.InDelta(t, float64(60<<20)/2/2, st.WriteTokens, 1, "drained bytes / amp / score")

	h.admitN(t, 1, 20<<20)[0].Release() // overdraws the tokens
	ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
	defer cancel()
	_, err := h.c.Admit(ctx, 100)
	sb := requireBusy(t, err)
	require.Contains(t, sb.Reason, "write tokens")
	require.EqualValues(t, 250, sb.RetryAfterMs, "tokens come back next interval")
	h.admitN(t, 1, 0)[0].Release() // reads are not paced by write tokens

	// The 5 MiB overdrawn are repaid from the next interval's tokens:
	// nothing left L0 this time, so the smoothed drain halves (7.5 MiB).
	h.c.Tick()
	require.InDelta(t, float64(5<<20)/2, h.c.State().WriteTokens, 1)
	h.eng.Store(&EngineStats{L0Sublevels: 3, L0Bytes: 10 << 20, L0AddedBytes: 1020 << 20})
	h.c.Tick()
	require.Equal(t, -1.0, h.c.State().WriteTokens)
	h.admitN(t, 1, 100<<20)[0].Release()
}

// Background rates halve every unhealthy interval (for scheduling lag,
// from the second in a row) down to their floor and climb back by
// Weight×IncreaseFraction of the ceiling per healthy one; a higher weight
// climbs faster.
func TestBackgroundRatesAIMD(t *testing.T) {
	h := newHarness(t, Settings{BackgroundSchedLatencyTarget: time.Millisecond, IncreaseFraction: 0.1, Classes: map[string]ClassSettings{
		"snapshot": {MaxBytesPerSec: 100 << 20, MinBytesPerSec: 1 << 20, Weight: 2},
		"ingest":   {MaxBytesPerSec: 100 << 20, MinBytesPerSec: 1 << 20, Weight: 1},
	}})
	rate := func(c Class) float64 { return h.c.State().Rates[c.String()] }
	require.Equal(t, float64(100<<20), rate(Snapshot), "starts at the ceiling")
	h.sched.Store(int64(5 * time.Millisecond))
	h.c.Tick()
	require.Equal(t, float64(100<<20), rate(Snapshot), "one interval of scheduling lag holds the rate")
	h.c.Tick()
	require.Equal(t, float64(50<<20), rate(Snapshot), "two in a row halve it")
	for i := 0; i < 10; i++ {
		h.c.Tick()
	}
	require.Equal(t, float64(1<<20), rate(Snapshot), "floored")
	require.Equal(t, float64(1<<20), rate(Ingest))

	h.sched.Store(int64(500 * time.Microsecond))
	h.c.Tick()
	require.InDelta(t, float64(1<<20)+0.2*float64(100<<20), rate(Snapshot), 1)
	require.InDelta(t, float64(1<<20)+0.1*float64(100<<20), rate(Ingest), 1)
	for i := 0; i < 10; i++ {
		h.c.Tick()
	}
	require.Equal(t, float64(100<<20), rate(Ingest), "capped at the ceiling")

	// Foreground queueing is unhealthy too, even with a quiet scheduler.
	h2 := newHarness(t, Settings{MinSlots: 1, MaxSlots: 1, SchedLatencyTarget: time.Millisecond})
	tk := h2.admitN(t, 1, 0)
	waiting := h2.admitAsync(context.Background(), 0)
	h2.waitQueued(t, 1)
	before := h2.c.State().Rates["export"]
	h2.c.Tick()
	require.Equal(t, before/2, h2.c.State().Rates["export"])
	tk[0].Release()
	require.NoError(t, <-waiting)
}

// syncs records n raft-log syncs, the first slow of them taking 50ms,
// the rest 1ms.
func (h *harness) syncs(n, slow int) {
	for i := 0; i < n; i++ {
		d := time.Millisecond
		if i < slow {
			d = 50 * time.Millisecond
		}
		h.c.ObserveLogSync(d)
	}
}

func gauge(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "shale_admission_"+name {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Slow raft-log syncs halve the background rates while the scheduler and
// L0 are healthy, and the rates climb back once the syncs are fast again.
// The foreground's slots and write tokens do not follow the disk.
func TestBackgroundRatesFollowSlowLogSyncs(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 4, MaxSlots: 64, SchedLatencyTarget: time.Millisecond, IncreaseFraction: 0.25,
		Classes: map[string]ClassSettings{"ingest": {MaxBytesPerSec: 100 << 20, MinBytesPerSec: 1 << 20, Weight: 1}}})
	rate := func() float64 { return h.c.State().Rates["ingest"] }
	tks := h.admitN(t, 4, 0) // all slots in use, scheduler quiet: slots grow
	defer func() {
		for _, tk := range tks {
			tk.Release()
		}
	}()

	h.syncs(100, 10)
	h.c.Tick()
	st := h.c.State()
	require.InDelta(t, 0.1, st.SlowLogSyncFrac, 1e-9)
	require.InDelta(t, 0.1, gauge(t, h, "slow_log_sync_fraction"), 1e-9)
	require.Equal(t, float64(50<<20), rate(), "10% of syncs slow: halved")
	require.Equal(t, 5, st.Slots, "foreground slots follow the scheduler, not the disk")
	require.Equal(t, -1.0, st.WriteTokens, "write tokens follow L0, not the disk")
	h.syncs(100, 10)
	h.c.Tick()
	require.Equal(t, float64(25<<20), rate())

	h.syncs(100, 0)
	h.c.Tick()
	require.InDelta(t, 0.05, h.c.State().SlowLogSyncFrac, 1e-9, "smoothed")
	require.Equal(t, float64(50<<20), rate(), "fast syncs: climbs back")
	for i := 0; i < 4; i++ {
		h.syncs(100, 0)
		h.c.Tick()
	}
	require.Equal(t, float64(100<<20), rate())
}

// A couple of slow syncs among few do not cut the rates, even though
// their fraction is over the setting; three do. The threshold changes at
// run time.
func TestFewSlowLogSyncsDoNotCutRates(t *testing.T) {
	h := newHarness(t, Settings{Classes: map[string]ClassSettings{"gc": {MaxBytesPerSec: 100 << 20}}})
	rate := func() float64 { return h.c.State().Rates["gc"] }
	h.syncs(10, 1)
	h.c.Tick()
	require.InDelta(t, 0.1, h.c.State().SlowLogSyncFrac, 1e-9)
	require.Equal(t, float64(100<<20), rate(), "1 slow sync in 10")
	h.syncs(10, 2)
	h.c.Tick()
	require.Equal(t, float64(100<<20), rate(), "2 slow syncs in 10")
	h.syncs(10, 3)
	h.c.Tick()
	require.Equal(t, float64(50<<20), rate(), "3 slow syncs in 10")

	require.NoError(t, h.c.Update(Settings{LogSyncLatencyThreshold: 100 * time.Millisecond}))
	h.syncs(10, 10) // 50ms: not slow any more
	h.c.Tick()
	require.Equal(t, float64(50<<20)+float64(100<<20)/64, rate(), "one healthy step: the default increase_fraction")
}

// Background work yields first: Pace waits while foreground requests
// queue, goes on once they drain, and never waits longer than
// MaxBackgroundWait, so it still finishes.
func TestBackgroundYieldsToQueuedForeground(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 1, MaxSlots: 1, MaxQueueWait: time.Hour, MaxBackgroundWait: time.Minute})
	tk := h.admitN(t, 1, 0)
	waiting := h.admitAsync(context.Background(), 0)
	h.waitQueued(t, 1)

	paced := make(chan error, 1)
	go func() { paced <- h.c.Pace(context.Background(), Export, 1024) }()
	testutils.SucceedsSoon(t, func() error {
		if h.clock.Waiters() < 2 { // the foreground waiter's and Pace's timers
			return errors.New("pace not waiting yet")
		}
		return nil
	})
	select {
	case err := <-paced:
		t.Fatalf("background ran while the foreground queued: %v", err)
	default:
	}
	tk[0].Release() // the waiter gets the slot; the queue is empty
	require.NoError(t, <-waiting)
	require.NoError(t, <-paced)
	require.Equal(t, 1.0, counter(t, h, "delayed_total", Export))
	require.Equal(t, 1024.0, counter(t, h, "background_bytes_total", Export))

	// Foreground queued for good: background goes on after MaxBackgroundWait.
	tk = h.admitN(t, 1, 0)
	defer tk[0].Release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stuck := h.admitAsync(ctx, 0)
	h.waitQueued(t, 1)
	go func() { paced <- h.c.Pace(context.Background(), GC, 10) }()
	testutils.SucceedsSoon(t, func() error {
		if h.clock.Waiters() < 2 { // the foreground waiter's and Pace's timers
			return errors.New("pace not waiting yet")
		}
		return nil
	})
	h.clock.Step(time.Minute)
	require.NoError(t, <-paced)
	cancel()
	require.Error(t, <-stuck)
}

// Background writers also yield while L0 is overloaded; readers do not.
func TestBackgroundWritersYieldToL0Overload(t *testing.T) {
	h := newHarness(t, Settings{L0SublevelThreshold: 4, MaxBackgroundWait: time.Minute})
	h.eng.Store(&EngineStats{L0Sublevels: 8})
	h.c.Tick()
	require.NoError(t, h.c.Pace(context.Background(), Consistency, 10), "readers go on")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.c.Pace(ctx, Ingest, 10) }()
	testutils.SucceedsSoon(t, func() error {
		if !h.clock.HasWaiters() {
			return errors.New("ingest not waiting yet")
		}
		return nil
	})
	h.eng.Store(&EngineStats{L0Sublevels: 1})
	h.c.Tick()
	require.NoError(t, <-done)
	cancel()
}

// Off, the controller admits everything and paces background classes at
// their fixed ceilings (unlimited ones not at all): the old behaviour.
func TestDisabledAdmitsEverything(t *testing.T) {
	h := newHarness(t, Settings{Disabled: true, MinSlots: 1, MaxSlots: 1, MaxQueue: 1,
		Classes: map[string]ClassSettings{"gc": {MaxBytesPerSec: -1}}})
	tks := h.admitN(t, 10, 1<<20)
	h.eng.Store(&EngineStats{L0Sublevels: 100})
	h.sched.Store(int64(time.Second))
	h.c.Tick()
	h.c.Tick()
	st := h.c.State()
	require.Equal(t, -1.0, st.WriteTokens)
	require.Equal(t, float64(256<<20), st.Rates["ingest"])
	require.Equal(t, -1.0, st.Rates["gc"], "unlimited")
	h.admitN(t, 1, 1<<20)[0].Release()
	for _, tk := range tks {
		tk.Release()
	}

	// Turned on at run time, the limits apply; off again, queued
	// requests are let in.
	require.NoError(t, h.c.Update(Settings{MinSlots: 1, MaxSlots: 1, MaxQueue: 1}))
	tk := h.admitN(t, 1, 0)
	waiting := h.admitAsync(context.Background(), 0)
	h.waitQueued(t, 1)
	require.NoError(t, h.c.Update(Settings{Disabled: true}))
	require.NoError(t, <-waiting)
	tk[0].Release()
}

// Update validates and merges: unnamed classes keep their settings.
func TestUpdateValidatesAndMerges(t *testing.T) {
	h := newHarness(t, Settings{})
	require.ErrorContains(t, h.c.Update(Settings{Classes: map[string]ClassSettings{"nope": {}}}), "unknown work class")
	require.ErrorContains(t, h.c.Update(Settings{Classes: map[string]ClassSettings{"foreground": {}}}), "no rate settings")
	require.ErrorContains(t, h.c.Update(Settings{MinSlots: 10, MaxSlots: 5}), "min_slots")
	require.ErrorContains(t, h.c.Update(Settings{Classes: map[string]ClassSettings{"ingest": {MaxBytesPerSec: 10, MinBytesPerSec: 20}}}), "above")
	require.ErrorContains(t, h.c.Update(Settings{MaxSlowLogSyncFraction: 1.5}), "max_slow_log_sync_fraction")
	require.ErrorContains(t, h.c.Update(Settings{MaxSlowLogSyncFraction: -0.1}), "max_slow_log_sync_fraction")
	_, err := New(Options{Settings: Settings{MaxSlowLogSyncFraction: 2}})
	require.ErrorContains(t, err, "outside (0, 1]")
	require.NoError(t, h.c.Update(Settings{MaxSlowLogSyncFraction: 1}))
	require.NoError(t, h.c.Update(Settings{}))
	require.Equal(t, 0.02, h.c.Settings().MaxSlowLogSyncFraction, "0: the default")
	require.Equal(t, 10*time.Millisecond, h.c.Settings().LogSyncLatencyThreshold)

	require.NoError(t, h.c.Update(Settings{Classes: map[string]ClassSettings{"export": {MaxBytesPerSec: 4 << 20}}}))
	st := h.c.State()
	require.Equal(t, float64(4<<20), st.Rates["export"], "a lower ceiling applies at once")
	require.Equal(t, int64(256<<20), st.Settings.Classes["ingest"].MaxBytesPerSec, "other classes unchanged")
}

func TestQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.002, 0.004, math.Inf(1)}
	require.Equal(t, time.Duration(0), quantile([]uint64{0, 0, 0, 0}, buckets, 0.99))
	require.Equal(t, time.Millisecond, quantile([]uint64{100, 0, 0, 0}, buckets, 0.99))
	require.Equal(t, 2*time.Millisecond, quantile([]uint64{90, 10, 0, 0}, buckets, 0.99))
	require.Equal(t, 4*time.Millisecond, quantile([]uint64{90, 5, 4, 1}, buckets, 0.99), "the +Inf bucket answers its lower bound")
	s := NewSchedSampler()
	require.Zero(t, s.P99(), "first call has no interval")
	require.GreaterOrEqual(t, s.P99(), time.Duration(0))
}

func TestMetricsRegistered(t *testing.T) {
	h := newHarness(t, Settings{})
	h.c.Tick()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	n := map[string]int{}
	for _, mf := range mfs {
		n[mf.GetName()] = len(mf.Metric)
	}
	require.Equal(t, int(NumClasses)-1, n["shale_admission_background_rate_bytes_per_second"])
	require.Equal(t, int(NumClasses), n["shale_admission_tokens"])
	require.Equal(t, 1, n["shale_admission_cpu_slots"])
}

// Settings travel as JSON with readable durations; unknown fields fail.
func TestSettingsJSON(t *testing.T) {
	s := Settings{MaxQueueWait: 50 * time.Millisecond, MinSlots: 3, LogSyncLatencyThreshold: 20 * time.Millisecond,
		Classes: map[string]ClassSettings{"gc": {Weight: 2}}}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(b), `"log_sync_latency_threshold":"20ms"`)
	require.Contains(t, string(b), `"max_queue_wait":"50ms"`)
	require.Contains(t, string(b), `"min_slots":3`)
	var back Settings
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, s, back)

	require.NoError(t, json.Unmarshal([]byte(`{"sched_latency_target": 2000000, "background_sched_latency_target": "1ms", "max_background_wait": "2s"}`), &back))
	require.Equal(t, 2*time.Millisecond, back.SchedLatencyTarget)
	require.Equal(t, time.Millisecond, back.BackgroundSchedLatencyTarget)
	require.Equal(t, 2*time.Second, back.MaxBackgroundWait)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"max_queue_wiat": "1s"}`), &back), "unknown field")
	require.Error(t, json.Unmarshal([]byte(`{"max_queue_wait": "soon"}`), &back))
}

// With the default settings, a class cut by trouble settles at a
// sixty-fourth of its ceiling and climbs back over many healthy intervals:
// on a small machine a floor of a sixteenth (16 MiB/s of ingest per
// store) and a climb to the ceiling within two seconds took a third of
// the CPU from the foreground during an import (docs/decisions.md,
// "Background work starts low and climbs slowly").
func TestDefaultRatesFloorLowAndClimbSlowly(t *testing.T) {
	h := newHarness(t, Settings{Classes: map[string]ClassSettings{"ingest": {MaxBytesPerSec: 256 << 20, Weight: 2}}})
	rate := func() float64 { return h.c.State().Rates[Ingest.String()] }
	h.sched.Store(int64(50 * time.Millisecond)) // CPU overloaded
	for i := 0; i < 20; i++ {
		h.c.Tick()
	}
	require.Equal(t, float64(4<<20), rate(), "the floor is a sixty-fourth of the ceiling")
	h.sched.Store(int64(time.Millisecond)) // healthy again
	h.c.Tick()
	require.Equal(t, float64(4<<20+8<<20), rate(), "one healthy interval adds weight × ceiling/64")
	for i := 0; i < 8; i++ {
		h.c.Tick()
	}
	require.Less(t, rate(), float64(128<<20), "still below half the ceiling after two more seconds")
	for i := 0; i < 32; i++ {
		h.c.Tick()
	}
	require.Equal(t, float64(256<<20), rate(), "back at the ceiling after about ten healthy seconds")
}

// Four stores in one process read one scheduling latency, so they cut and
// climb together: each takes a quarter of the additive step and of the
// default floor, and together they move as one store alone does. The
// 1 MiB/s minimum and an operator's explicit floor stay per store.
func TestStoresSharingAProcessClimbAsOne(t *testing.T) {
	classes := map[string]ClassSettings{
		"ingest":   {MaxBytesPerSec: 256 << 20, Weight: 2},
		"snapshot": {MaxBytesPerSec: 32 << 20, Weight: 4},
		"export":   {MaxBytesPerSec: 256 << 20, MinBytesPerSec: 8 << 20, Weight: 1},
	}
	alone, shared := newHarness(t, Settings{Classes: classes}), newSharedHarness(t, Settings{Classes: classes}, 4)
	require.Equal(t, 4, shared.c.State().SharedBy)
	require.Equal(t, 1, alone.c.State().SharedBy)
	rate := func(h *harness, cl Class) float64 { return h.c.State().Rates[cl.String()] }
	for _, h := range []*harness{alone, shared} {
		h.sched.Store(int64(50 * time.Millisecond)) // CPU overloaded
		for i := 0; i < 20; i++ {
			h.c.Tick()
		}
	}
	require.Equal(t, float64(4<<20), rate(alone, Ingest))
	require.Equal(t, float64(1<<20), rate(shared, Ingest), "a quarter of the default floor")
	require.Equal(t, float64(1<<20), rate(shared, Snapshot), "never below 1 MiB/s")
	require.Equal(t, float64(8<<20), rate(shared, Export), "an explicit floor is the operator's, per store")
	for _, h := range []*harness{alone, shared} {
		h.sched.Store(int64(time.Millisecond)) // healthy again
		h.c.Tick()
	}
	require.Equal(t, float64(4<<20+8<<20), rate(alone, Ingest), "weight × ceiling/64")
	require.Equal(t, float64(1<<20+2<<20), rate(shared, Ingest), "a quarter of the step")
	for i := 0; i < 200; i++ {
		shared.c.Tick()
	}
	require.Equal(t, float64(256<<20), rate(shared, Ingest), "the ceiling stays per store")
}

// Background work is elastic: its rates are cut at a lower scheduling
// latency than the one that shrinks the foreground's slots. Between the
// two targets the foreground keeps its slots while the background yields.
func TestBackgroundYieldsBeforeForegroundShrinks(t *testing.T) {
	h := newHarness(t, Settings{MinSlots: 4, MaxSlots: 64, Classes: map[string]ClassSettings{
		"snapshot": {MaxBytesPerSec: 100 << 20, MinBytesPerSec: 1 << 20, Weight: 1},
	}})
	st := h.c.State()
	require.Equal(t, 5*time.Millisecond, st.Settings.SchedLatencyTarget)
	require.Equal(t, 2*time.Millisecond, st.Settings.BackgroundSchedLatencyTarget)
	slots := st.Slots
	tks := h.admitN(t, slots, 0) // our own requests fill the slots
	defer func() {
		for _, tk := range tks {
			tk.Release()
		}
	}()
	h.sched.Store(int64(3 * time.Millisecond))
	h.c.Tick()
	h.c.Tick()
	st = h.c.State()
	require.Equal(t, float64(50<<20), st.Rates["snapshot"], "3ms for two intervals: over the background target, the rate halves")
	require.GreaterOrEqual(t, st.Slots, slots, "under the foreground target: the slots do not shrink")

	h.sched.Store(int64(6 * time.Millisecond))
	h.c.Tick()
	require.Less(t, h.c.State().Slots, st.Slots, "over both targets: the slots shrink too")
}

// Scheduling lag in single intervals, as a busy machine shows it without
// any background work, does not cut the rates: they hold through each
// lagging interval and grow in the others. Lag that persists cuts them.
// (Foreground queueing cuts them in its first interval:
// TestBackgroundRatesAIMD.)
func TestSchedulingLagMustPersistToCutRates(t *testing.T) {
	h := newHarness(t, Settings{BackgroundSchedLatencyTarget: time.Millisecond, IncreaseFraction: 0.1, Classes: map[string]ClassSettings{
		"export": {MaxBytesPerSec: 100 << 20, MinBytesPerSec: 1 << 20, Weight: 1},
	}})
	rate := func() float64 { return h.c.State().Rates["export"] }
	lag := func(on bool) {
		d := 500 * time.Microsecond
		if on {
			d = 5 * time.Millisecond
		}
		h.sched.Store(int64(d))
		h.c.Tick()
	}
	lag(true)
	lag(true)
	require.Equal(t, float64(50<<20), rate(), "two lagging intervals in a row halve the rate")
	for i := 0; i < 3; i++ {
		lag(true)
		lag(false)
	}
	require.InDelta(t, float64(50<<20)/2+0.3*float64(100<<20), rate(), 1,
		"the lag persisted into the first interval after the cut; then only alternating lag: held in lagging intervals, grown in the others")
	before := rate()
	lag(true)
	require.Equal(t, before, rate(), "a single lagging interval holds")
	lag(true)
	require.Equal(t, before/2, rate())
}

// A background class that has not paced for idleRestart restarts from its
// floor: the rate it reached while idle says nothing about what its own
// work does to the foreground. Admission off keeps the fixed ceiling.
func TestBackgroundRateRestartsAfterIdle(t *testing.T) {
	ctx := context.Background()
	classes := map[string]ClassSettings{"export": {MaxBytesPerSec: 100 << 20, MinBytesPerSec: 1 << 20, Weight: 1}}
	h := newHarness(t, Settings{BackgroundSchedLatencyTarget: time.Millisecond, IncreaseFraction: 0.1, Classes: classes})
	rate := func() float64 { return h.c.State().Rates["export"] }
	require.Equal(t, float64(100<<20), rate(), "an unused class sits at its ceiling")
	require.NoError(t, h.c.Pace(ctx, Export, 1024))
	require.Equal(t, float64(1<<20), rate(), "its first chunk starts it from the floor")

	h.sched.Store(int64(500 * time.Microsecond))
	h.c.Tick()
	h.c.Tick()
	grown := float64(1<<20) + 0.2*float64(100<<20)
	require.InDelta(t, grown, rate(), 1, "then it climbs while the foreground is healthy")
	h.clock.Step(time.Second)
	require.NoError(t, h.c.Pace(ctx, Export, 1024))
	require.InDelta(t, grown, rate(), 1, "paced again within idleRestart: it goes on")
	h.clock.Step(idleRestart + time.Millisecond)
	require.NoError(t, h.c.Pace(ctx, Export, 1024))
	require.Equal(t, float64(1<<20), rate(), "after an idle period it starts over")

	off := newHarness(t, Settings{Disabled: true, Classes: classes})
	require.NoError(t, off.c.Pace(ctx, Export, 1024))
	require.Equal(t, float64(100<<20), off.c.State().Rates["export"], "admission off: the fixed ceiling")
}
