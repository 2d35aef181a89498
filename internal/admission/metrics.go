package admission

import (
	"math"

	"github.com/prometheus/client_golang/prometheus"
)

// ctlMetrics are a controller's metrics; the per-class handles are made
// once, so admitting a request does a counter increment.
type ctlMetrics struct {
	admitted, delayed, rejected [NumClasses]prometheus.Counter
	bytes                       [NumClasses]prometheus.Counter
	tokens, rate                *prometheus.GaugeVec
	sched, l0Score, slowSync    prometheus.Gauge
}

func newMetrics(c *Controller, reg prometheus.Registerer) *ctlMetrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shale", Subsystem: "admission", Name: name, Help: help}, []string{"class"})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "shale", Subsystem: "admission", Name: name, Help: help})
	}
	gaugeFunc := func(name, help string, f func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shale", Subsystem: "admission", Name: name, Help: help}, f)
	}
	locked := func(f func() int) func() float64 {
		return func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return float64(f())
		}
	}
	admitted := counter("admitted_total", "Work admitted, by class: foreground requests, background chunks (Pace calls).")
	delayed := counter("delayed_total", "Admitted work that waited first: a foreground request queued for a CPU slot or write tokens, a background chunk that yielded to the foreground or waited for its rate.")
	rejected := counter("rejected_total", "Foreground requests refused with ServerBusy (the expected wait for a slot exceeds the request's budget, the queue is at its memory bound, or no slot came within the budget). Background work is never refused.")
	bytes := counter("background_bytes_total", "Bytes background work processed through Pace, by class.")
	m := &ctlMetrics{
		tokens: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "shale", Subsystem: "admission", Name: "tokens",
			Help: "Tokens available at the last adjustment, by class: foreground write tokens in request bytes (+Inf while L0 is healthy), a background class's rate-limiter bytes."}, []string{"class"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "shale", Subsystem: "admission", Name: "background_rate_bytes_per_second",
			Help: "Current adaptive rate of a background class (+Inf: unlimited with admission off)."}, []string{"class"}),
		sched:    gauge("sched_latency_p99_seconds", "p99 Go scheduling latency over the last adjustment interval (the CPU overload signal)."),
		l0Score:  gauge("l0_overload_score", "Pebble L0 overload: the largest of sublevels, files and compaction debt over their thresholds; at 1 or more writes are paced by tokens."),
		slowSync: gauge("slow_log_sync_fraction", "Smoothed fraction of raft-log syncs slower than log_sync_latency_threshold; above max_slow_log_sync_fraction (with at least 3 slow syncs in the interval) the background rates are cut."),
	}
	for cl := Class(0); cl < NumClasses; cl++ {
		m.admitted[cl] = admitted.WithLabelValues(cl.String())
		m.delayed[cl] = delayed.WithLabelValues(cl.String())
		m.rejected[cl] = rejected.WithLabelValues(cl.String())
		m.bytes[cl] = bytes.WithLabelValues(cl.String())
	}
	m.tokens.WithLabelValues(Foreground.String()).Set(math.Inf(1))
	if reg != nil {
		reg.MustRegister(admitted, delayed, rejected, bytes, m.tokens, m.rate, m.sched, m.l0Score, m.slowSync,
			gaugeFunc("cpu_slots", "Foreground CPU slots (concurrent requests) the store admits now.", locked(func() int { return c.mu.slots })),
			gaugeFunc("cpu_slots_used", "Foreground CPU slots in use.", locked(func() int { return c.mu.used })),
			gaugeFunc("queue_length", "Foreground requests waiting for a slot or write tokens.", locked(func() int { return c.mu.queue.Len() })),
		)
	}
	return m
}

// observeLocked records the state after a Tick.
func (m *ctlMetrics) observeLocked(c *Controller) {
	m.sched.Set(c.mu.sched.Seconds())
	m.l0Score.Set(c.mu.l0Score)
	m.slowSync.Set(c.mu.slowSyncFrac)
	m.tokens.WithLabelValues(Foreground.String()).Set(c.mu.writeTokens)
	for cl := Class(1); cl < NumClasses; cl++ {
		m.rate.WithLabelValues(cl.String()).Set(c.mu.rates[cl])
		m.tokens.WithLabelValues(cl.String()).Set(c.lims[cl].Tokens())
	}
}
