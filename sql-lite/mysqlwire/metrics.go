package mysqlwire

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/metrics"
)

// statementKinds are the values of the statement label: a query's first
// keyword when it is one of these, else "other". Prepared statements
// executed (COM_STMT_EXECUTE) are "execute".
var statementKinds = []string{"select", "insert", "update", "delete", "replace", "create", "drop", "alter",
	"show", "describe", "set", "begin", "start", "commit", "rollback", "use", "other", "execute"}

// sqlMetrics time statements by kind and outcome. The handles are made
// with the server, so a statement costs a keyword match and an Observe.
type sqlMetrics struct {
	ok, failed map[string]prometheus.Observer
}

func newSQLMetrics(reg prometheus.Registerer) *sqlMetrics {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "shale", Subsystem: "sql", Name: "statement_seconds",
		Help:    "Time to run a statement received over the MySQL protocol, by kind (its first keyword) and outcome (ok, error).",
		Buckets: metrics.RPCBuckets,
	}, []string{"statement", "outcome"})
	if reg != nil {
		reg.MustRegister(h)
	}
	m := &sqlMetrics{ok: map[string]prometheus.Observer{}, failed: map[string]prometheus.Observer{}}
	for _, k := range statementKinds {
		m.ok[k] = h.WithLabelValues(k, "ok")
		m.failed[k] = h.WithLabelValues(k, "error")
	}
	return m
}

// observe records one statement of kind that started at start.
func (m *sqlMetrics) observe(kind string, start time.Time, err error) {
	if !metrics.Enabled() {
		return
	}
	o := m.ok[kind]
	if err != nil {
		o = m.failed[kind]
	}
	o.Observe(time.Since(start).Seconds())
}

// statementKind returns the statementKinds entry of query's first keyword,
// without allocating.
func statementKind(query string) string {
	q := strings.TrimLeft(query, " \t\r\n(")
	end := strings.IndexAny(q, " \t\r\n(;")
	if end < 0 {
		end = len(q)
	}
	word := q[:end]
	for _, k := range statementKinds[:len(statementKinds)-2] {
		if strings.EqualFold(word, k) {
			return k
		}
	}
	if strings.EqualFold(word, "desc") || strings.EqualFold(word, "explain") {
		return "describe"
	}
	return "other"
}
