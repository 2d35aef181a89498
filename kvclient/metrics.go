package kvclient

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/retry"
)

// clientMetrics are a Client's metrics, registered on Options.Registry
// when it is set. Handles are created once, so counting a retry or a miss
// does not allocate.
type clientMetrics struct {
	retries     [retry.Ambiguous + 1]prometheus.Counter
	cacheMisses prometheus.Counter
	// badCells counts answers whose cells failed their checksums.
	badCells prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "shale", Subsystem: "kvclient", Name: "retries_total",
		Help: "Failed tablet requests the client handled, by the action the error called for (refresh-route, retry-elsewhere, backoff, ambiguous, fail).",
	}, []string{"reason"})
	misses := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "shale", Subsystem: "kvclient", Name: "route_cache_misses_total",
		Help: "Tablet lookups the routing cache could not answer (each asks the placement driver).",
	})
	bad := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "shale", Subsystem: "kvclient", Name: "cell_checksum_mismatches_total",
		Help: "Read answers with a cell that failed its CRC-32C (each is read again from another replica, which has the tablet checked).",
	})
	if reg != nil {
		reg.MustRegister(retries, misses, bad)
	}
	m := &clientMetrics{cacheMisses: misses, badCells: bad}
	for a := range m.retries {
		m.retries[a] = retries.WithLabelValues(retry.Action(a).String())
	}
	return m
}

// badCell counts an answer that failed its cell checksums; nil-safe.
func (m *clientMetrics) badCell() {
	if m != nil {
		m.badCells.Inc()
	}
}

// retried counts a handled failure; nil-safe (tests build bare Clients).
func (m *clientMetrics) retried(a retry.Action) {
	if m != nil && int(a) >= 0 && int(a) < len(m.retries) {
		m.retries[a].Inc()
	}
}
