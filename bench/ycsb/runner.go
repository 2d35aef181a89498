package ycsb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Phase is what a run does: load the records, or run the operation mix.
type Phase string

// The two phases of YCSB (-load and -t).
const (
	PhaseLoad Phase = "load"
	PhaseRun  Phase = "run"
)

// RunOptions describe one benchmark run. Threads, target rate, operation
// count and maximum execution time come from the Workload's properties
// (threadcount, target, operationcount or insertcount, maxexecutiontime).
type RunOptions struct {
	Phase    Phase
	Workload *Workload
	Driver   Driver
	// Seed seeds every thread's random source (thread i: Seed, i).
	Seed uint64
	// Status receives a status line every status.interval; nil: none.
	Status io.Writer
	// Labels recorded in the result: the target store and the workload's
	// name.
	Target, WorkloadName string
	// Properties are recorded in the result.
	Properties map[string]string
}

// Result is a run's outcome: YCSB's summary plus the time series.
type Result struct {
	Phase      Phase     `json:"phase"`
	Target     string    `json:"target"`
	Workload   string    `json:"workload"`
	Threads    int       `json:"threads"`
	TargetOps  float64   `json:"target_ops,omitempty"`
	Seed       uint64    `json:"seed"`
	Start      time.Time `json:"start"`
	RunTimeMs  int64     `json:"runtime_ms"`
	Operations int64     `json:"operations"`
	// Throughput is operations per second over the whole run.
	Throughput float64 `json:"throughput"`
	// P99Us is the 99th percentile latency over all operations.
	P99Us      int64             `json:"p99_us"`
	Ops        []OpResult        `json:"ops"`
	Series     []Point           `json:"series"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Op returns the named operation's result, or nil.
func (r *Result) Op(name string) *OpResult {
	for i := range r.Ops {
		if r.Ops[i].Name == name {
			return &r.Ops[i]
		}
	}
	return nil
}

// ErrNoSession is returned when a thread's DB session cannot be opened.
var ErrNoSession = errors.New("ycsb: cannot open a DB session")

// Run runs one phase with the workload's thread count until its
// operation count is reached, its maximum execution time has passed, or
// ctx is done (then the result covers what ran). Operation failures are
// counted, not returned; Run fails only when it cannot start.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	w := o.Workload
	if w == nil || o.Driver == nil {
		return nil, errors.New("ycsb: RunOptions need a Workload and a Driver")
	}
	opCount := w.OperationCount
	if o.Phase == PhaseLoad {
		opCount = w.InsertCount
	} else if o.Phase != PhaseRun {
		return nil, fmt.Errorf("ycsb: unknown phase %q (want load or run)", o.Phase)
	}
	dbs := make([]DB, w.Threads)
	for i := range dbs {
		db, err := o.Driver.Session(ctx)
		if err != nil {
			for _, d := range dbs[:i] {
				d.Close()
			}
			return nil, fmt.Errorf("%w (thread %d): %w", ErrNoSession, i, err)
		}
		dbs[i] = db
	}

	start := time.Now()
	m := NewMeasurements(start)
	var stop atomic.Bool
	var issued, done atomic.Int64
	var deadline <-chan time.Time
	if w.MaxExecution > 0 {
		t := time.NewTimer(w.MaxExecution)
		defer t.Stop()
		deadline = t.C
	}

	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &thread{w: w, db: db, m: m, r: rand.New(rand.NewPCG(o.Seed, uint64(i)))}
			tick, first := throttle(w.TargetOps, w.Threads, i, start)
			for n := int64(0); ; n++ {
				if stop.Load() || ctx.Err() != nil {
					return
				}
				if opCount > 0 && issued.Add(1) > opCount {
					return
				}
				if tick > 0 {
					if d := time.Until(first.Add(time.Duration(n) * tick)); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return
						}
					}
				}
				if o.Phase == PhaseLoad {
					t.doInsert(ctx)
				} else {
					t.doTransaction(ctx)
				}
				done.Add(1)
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	every := int(w.StatusInterval / time.Second)
	lastOps, lastStatus := int64(0), start
	status := func(now time.Time) {
		ops := done.Load()
		if o.Status != nil {
			rate := float64(ops-lastOps) / now.Sub(lastStatus).Seconds()
			fmt.Fprintf(o.Status, "%s %d sec: %d operations; %s current ops/sec;%s%s\n",
				now.Format("2006-01-02 15:04:05")+fmt.Sprintf(":%03d", now.Nanosecond()/1e6), int64(now.Sub(start).Seconds()), ops,
				formatDecimal(rate), estimate(opCount, ops, rate, w.MaxExecution, now.Sub(start)), m.IntervalSummary())
		} else {
			m.IntervalSummary()
		}
		lastOps, lastStatus = ops, now
	}
	for ticks := 1; ; ticks++ {
		select {
		case now := <-ticker.C:
			m.Tick(now)
			if ticks%every == 0 {
				status(now)
			}
			continue
		case <-deadline:
			stop.Store(true)
			deadline = nil
			continue
		case <-finished:
		}
		break
	}
	end := time.Now()
	m.Tick(end)
	status(end)
	for _, db := range dbs {
		db.Close()
	}

	res := &Result{Phase: o.Phase, Target: o.Target, Workload: o.WorkloadName, Threads: w.Threads,
		TargetOps: w.TargetOps, Seed: o.Seed, Start: start, RunTimeMs: end.Sub(start).Milliseconds(),
		Operations: done.Load(), Series: m.Series(), Properties: o.Properties}
	if secs := end.Sub(start).Seconds(); secs > 0 {
		res.Throughput = float64(res.Operations) / secs
	}
	res.Ops, res.P99Us = m.Results(w.Percentiles)
	return res, nil
}

// estimate is YCSB's "est completion in ..." part of a status line.
func estimate(opCount, done int64, rate float64, maxExec, elapsed time.Duration) string {
	var left time.Duration = -1
	if opCount > 0 && rate > 0 {
		left = time.Duration(float64(opCount-done) / rate * float64(time.Second))
	}
	if maxExec > 0 && (left < 0 || maxExec-elapsed < left) {
		left = maxExec - elapsed
	}
	if left < 0 {
		return ""
	}
	secs := int64(left.Seconds())
	var s string
	if h := secs / 3600; h > 0 {
		s = fmt.Sprintf("%d %s ", h, plural(h, "hour"))
		secs -= h * 3600
		if mins := secs / 60; mins > 0 {
			s += fmt.Sprintf("%d %s", mins, plural(mins, "minute"))
		}
	} else {
		if mins := secs / 60; mins > 0 {
			s = fmt.Sprintf("%d %s ", mins, plural(mins, "minute"))
			secs -= mins * 60
		}
		s += fmt.Sprintf("%d %s", secs, plural(secs, "second"))
	}
	return " est completion in " + s
}

func plural(n int64, unit string) string {
	if n == 1 {
		return unit
	}
	return unit + "s"
}

// throttle is the pacing of thread i of threads for a target rate, as
// YCSB's throttle: op n of the thread starts no earlier than first +
// n*tick. The threads' schedules are staggered by tick/threads (YCSB
// spreads them with a random first sleep): started together, every
// thread would fire at the same instants, and the bursts of `threads`
// concurrent requests would measure queueing the target rate does not
// cause. tick is 0 when unthrottled.
func throttle(targetOps float64, threads, i int, start time.Time) (tick time.Duration, first time.Time) {
	if targetOps <= 0 {
		return 0, start
	}
	tick = time.Duration(float64(time.Second) * float64(threads) / targetOps)
	return tick, start.Add(tick * time.Duration(i) / time.Duration(threads))
}
