package ycsb

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Status names, as YCSB's site.ycsb.Status prints them after "Return=".
const (
	StatusOK              = "OK"
	StatusError           = "ERROR"
	StatusNotFound        = "NOT_FOUND"
	StatusUnexpectedState = "UNEXPECTED_STATE"
)

// Operation names as they appear in the summary.
const (
	OpInsert          = "INSERT"
	OpRead            = "READ"
	OpUpdate          = "UPDATE"
	OpScan            = "SCAN"
	OpReadModifyWrite = "READ-MODIFY-WRITE"
	OpVerify          = "VERIFY"
)

// maxLatencyUs is the largest latency a histogram tracks (one minute);
// longer operations are recorded as one minute.
const maxLatencyUs = int64(time.Minute / time.Microsecond)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxLatencyUs, 3) }

// Measurements collects latencies per operation in HDR histograms, counts
// return statuses, and keeps a once-per-Tick time series for plots. Record
// is safe for concurrent use; Tick and the readers are called by one
// goroutine (the runner's ticker).
type Measurements struct {
	mu  sync.RWMutex // guards ops (the map, not the entries)
	ops map[string]*opMeasure

	// Owned by the ticking goroutine.
	start    time.Time
	lastTick time.Time
	series   []Point
}

// opMeasure is one operation's (or one "OP-FAILED" latency series')
// measurements.
type opMeasure struct {
	mu     sync.Mutex // guards cur and status
	cur    *hdrhistogram.Histogram
	status map[string]int64
	// firstErr is the first error seen, for the report.
	firstErr string

	// Owned by the ticking goroutine.
	spare    *hdrhistogram.Histogram
	total    *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram
}

// NewMeasurements starts measuring at start.
func NewMeasurements(start time.Time) *Measurements {
	return &Measurements{ops: map[string]*opMeasure{}, start: start, lastTick: start}
}

func (m *Measurements) op(name string) *opMeasure {
	m.mu.RLock()
	o := m.ops[name]
	m.mu.RUnlock()
	if o != nil {
		return o
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o = m.ops[name]; o == nil {
		o = &opMeasure{cur: newHist(), spare: newHist(), total: newHist(), interval: newHist(), status: map[string]int64{}}
		m.ops[name] = o
	}
	return o
}

// Measure records one operation: its latency under op (or op+"-FAILED"
// when the status is not OK, as YCSB does) and its status under op.
func (m *Measurements) Measure(op string, latency time.Duration, status string, err error) {
	us := latency.Microseconds()
	if us > maxLatencyUs {
		us = maxLatencyUs
	}
	if us < 0 {
		us = 0
	}
	name := op
	if status != StatusOK {
		name = op + "-FAILED"
	}
	lat := m.op(name)
	lat.mu.Lock()
	_ = lat.cur.RecordValue(us) // in range by construction
	lat.mu.Unlock()
	st := m.op(op)
	st.mu.Lock()
	st.status[status]++
	if err != nil && st.firstErr == "" {
		st.firstErr = err.Error()
	}
	st.mu.Unlock()
}

// Point is one interval of the time series.
type Point struct {
	// T is the end of the interval, in seconds since the start; Dt its
	// length (one second but for the last one).
	T  float64 `json:"t"`
	Dt float64 `json:"dt"`
	// Ops is the number of operations completed in the interval (VERIFY
	// excluded), Throughput the same per second.
	Ops        int64   `json:"ops"`
	Throughput float64 `json:"throughput"`
	// P99Us is the 99th percentile latency of every operation of the
	// interval, in microseconds.
	P99Us int64 `json:"p99_us"`
	// PerOp has the count and p99 of each operation name.
	PerOp map[string]OpPoint `json:"per_op,omitempty"`
}

// OpPoint is one operation's figures in one interval.
type OpPoint struct {
	Ops   int64 `json:"ops"`
	P99Us int64 `json:"p99_us"`
}

// Tick closes the current interval at now: it folds what was recorded
// since the last Tick into the totals and the status interval, and
// appends a Point to the series.
func (m *Measurements) Tick(now time.Time) Point {
	m.mu.RLock()
	names := make([]string, 0, len(m.ops))
	for n := range m.ops {
		names = append(names, n)
	}
	m.mu.RUnlock()
	sort.Strings(names)
	all := newHist()
	p := Point{T: now.Sub(m.start).Seconds(), PerOp: map[string]OpPoint{}}
	for _, n := range names {
		o := m.op(n)
		o.mu.Lock()
		o.cur, o.spare = o.spare, o.cur
		o.mu.Unlock()
		h := o.spare
		if h.TotalCount() == 0 {
			continue
		}
		o.total.Merge(h)
		o.interval.Merge(h)
		if !strings.HasPrefix(n, OpVerify) {
			all.Merge(h)
			p.Ops += h.TotalCount()
		}
		p.PerOp[n] = OpPoint{Ops: h.TotalCount(), P99Us: h.ValueAtPercentile(99)}
		h.Reset()
	}
	if p.Dt = now.Sub(m.lastTick).Seconds(); p.Dt > 0 {
		p.Throughput = float64(p.Ops) / p.Dt
	}
	p.P99Us = all.ValueAtPercentile(99)
	m.lastTick = now
	m.series = append(m.series, p)
	return p
}

// Series returns the points so far.
func (m *Measurements) Series() []Point { return append([]Point(nil), m.series...) }

// IntervalSummary formats the operations of the status interval as YCSB's
// status line does ("[READ: Count=..., Max=..., Min=..., Avg=..., 90=...,
// 99=..., 99.9=..., 99.99=...]"), then starts a new interval.
func (m *Measurements) IntervalSummary() string {
	m.mu.RLock()
	names := make([]string, 0, len(m.ops))
	for n := range m.ops {
		names = append(names, n)
	}
	m.mu.RUnlock()
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		h := m.op(n).interval
		if h.TotalCount() == 0 {
			continue
		}
		fmt.Fprintf(&b, " [%s: Count=%d, Max=%d, Min=%d, Avg=%s, 90=%d, 99=%d, 99.9=%d, 99.99=%d]",
			n, h.TotalCount(), h.Max(), h.Min(), formatDecimal(h.Mean()),
			h.ValueAtPercentile(90), h.ValueAtPercentile(99), h.ValueAtPercentile(99.9), h.ValueAtPercentile(99.99))
		h.Reset()
	}
	return b.String()
}

// OpResult is one operation's summary.
type OpResult struct {
	Name       string  `json:"name"`
	Operations int64   `json:"operations"`
	AverageUs  float64 `json:"average_us"`
	MinUs      int64   `json:"min_us"`
	MaxUs      int64   `json:"max_us"`
	// Percentiles in the order of hdrhistogram.percentiles.
	Percentiles []Percentile `json:"percentiles"`
	// Returns counts statuses (OK first, then by name).
	Returns []StatusCount `json:"returns,omitempty"`
	// FirstError is the first error an operation returned, if any.
	FirstError string `json:"first_error,omitempty"`
}

// Percentile is one latency percentile.
type Percentile struct {
	P  float64 `json:"p"`
	Us int64   `json:"us"`
}

// StatusCount is how often an operation returned a status.
type StatusCount struct {
	Status string `json:"status"`
	Count  int64  `json:"count"`
}

// Results summarizes every operation (sorted by name) at the given
// percentiles, and the p99 over all operations but VERIFY. Call it after
// the final Tick.
func (m *Measurements) Results(percentiles []float64) ([]OpResult, int64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	names := make([]string, 0, len(m.ops))
	for n := range m.ops {
		names = append(names, n)
	}
	sort.Strings(names)
	all := newHist()
	out := make([]OpResult, 0, len(names))
	for _, n := range names {
		o := m.ops[n]
		h := o.total
		r := OpResult{Name: n, Operations: h.TotalCount()}
		if h.TotalCount() > 0 {
			r.AverageUs, r.MinUs, r.MaxUs = h.Mean(), h.Min(), h.Max()
		}
		for _, p := range percentiles {
			r.Percentiles = append(r.Percentiles, Percentile{P: p, Us: h.ValueAtPercentile(p)})
		}
		o.mu.Lock()
		for s, c := range o.status {
			r.Returns = append(r.Returns, StatusCount{s, c})
		}
		r.FirstError = o.firstErr
		o.mu.Unlock()
		sort.Slice(r.Returns, func(i, j int) bool {
			a, b := r.Returns[i].Status, r.Returns[j].Status
			if (a == StatusOK) != (b == StatusOK) {
				return a == StatusOK
			}
			return a < b
		})
		if !strings.HasPrefix(n, OpVerify) {
			all.Merge(h)
		}
		out = append(out, r)
	}
	return out, all.ValueAtPercentile(99)
}
