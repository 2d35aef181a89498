package importer

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// phases are the values of Progress.Phase, each a series of
// shale_import_phase.
var phases = []string{"start", "parse", "split", "ingest", "verify", "done"}

// ProgressMetrics exports a running job's Progress to Prometheus: pass
// its Update as (or from) Options.Progress and register it. Values are
// the last snapshot given, read at scrape time.
type ProgressMetrics struct {
	mu sync.Mutex
	p  Progress

	inputBytes, inputTotal, inputRows, rejected *prometheus.Desc
	sorted, ingestedBytes, ingestedRows, ssts   *prometheus.Desc
	elapsed, phase                              *prometheus.Desc
}

// NewProgressMetrics returns a collector with no progress yet (phase
// "start", every count 0).
func NewProgressMetrics() *ProgressMetrics {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shale_import_"+name, help, labels, nil)
	}
	return &ProgressMetrics{
		p:             Progress{Phase: "start"},
		inputBytes:    d("input_bytes", "Input bytes read so far."),
		inputTotal:    d("input_total_bytes", "Size of all inputs (0 when unknown, as for stdin)."),
		inputRows:     d("input_rows", "Input records parsed so far."),
		rejected:      d("rejected_rows", "Malformed records skipped so far."),
		sorted:        d("sorted_bytes", "Bytes of sorted runs written."),
		ingestedBytes: d("ingested_bytes", "Cell bytes the tablets have ingested."),
		ingestedRows:  d("ingested_rows", "Rows the tablets have ingested."),
		ssts:          d("ssts", "SSTs ingested."),
		elapsed:       d("elapsed_seconds", "Time since the job started."),
		phase:         d("phase", "1 for the job's current phase (start, parse, split, ingest, verify, done), 0 for the others.", "phase"),
	}
}

// Update records a progress snapshot.
func (m *ProgressMetrics) Update(p Progress) {
	m.mu.Lock()
	m.p = p
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *ProgressMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.inputBytes, m.inputTotal, m.inputRows, m.rejected, m.sorted,
		m.ingestedBytes, m.ingestedRows, m.ssts, m.elapsed, m.phase} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *ProgressMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	p := m.p
	m.mu.Unlock()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(m.inputBytes, float64(p.InputBytes))
	g(m.inputTotal, float64(p.InputTotal))
	g(m.inputRows, float64(p.InputRows))
	g(m.rejected, float64(p.Rejected))
	g(m.sorted, float64(p.SortedBytes))
	g(m.ingestedBytes, float64(p.IngestedBytes))
	g(m.ingestedRows, float64(p.IngestedRows))
	g(m.ssts, float64(p.SSTs))
	g(m.elapsed, p.Elapsed.Seconds())
	for _, ph := range phases {
		v := 0.0
		if ph == p.Phase {
			v = 1
		}
		g(m.phase, v, ph)
	}
}
