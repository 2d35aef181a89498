package placementdriver

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/pdpb"
)

// pdMetrics are the PD member's metrics. Counters and the round histogram
// are updated by the leader's scheduling loop; the cluster gauges are
// computed when Prometheus scrapes (pdCollector).
type pdMetrics struct {
	round   prometheus.Observer
	created map[schedule.OpKind]prometheus.Counter
	ended   map[schedule.OpKind]map[schedule.OpStatus]prometheus.Counter
}

func newPDMetrics(reg prometheus.Registerer, s *Server) *pdMetrics {
	round := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "shale", Subsystem: "pd", Name: "schedule_round_seconds",
		Help: "Time of one scheduling round on the PD leader (store states, checkers, schedulers).", Buckets: metrics.SchedBuckets,
	})
	created := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "shale", Subsystem: "pd", Name: "operators_created_total",
		Help: "Operators created by the PD leader, by kind.",
	}, []string{"kind"})
	ended := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "shale", Subsystem: "pd", Name: "operators_ended_total",
		Help: "Operators that ended on the PD leader, by kind and result (finished, timed-out, cancelled, stale).",
	}, []string{"kind", "result"})
	reg.MustRegister(round, created, ended, newPDCollector(s))
	m := &pdMetrics{round: round, created: map[schedule.OpKind]prometheus.Counter{}, ended: map[schedule.OpKind]map[schedule.OpStatus]prometheus.Counter{}}
	for _, k := range schedule.Kinds() {
		m.created[k] = created.WithLabelValues(k.String())
		m.ended[k] = map[schedule.OpStatus]prometheus.Counter{}
		for _, st := range schedule.EndStatuses() {
			m.ended[k][st] = ended.WithLabelValues(k.String(), st.String())
		}
	}
	return m
}

// The methods are nil-safe: tests drive a cluster without a running
// server.
func (m *pdMetrics) operatorCreated(op *schedule.Operator) {
	if m == nil {
		return
	}
	if c := m.created[op.Kind]; c != nil {
		c.Inc()
	}
}

func (m *pdMetrics) operatorEnded(op *schedule.Operator) {
	if m == nil {
		return
	}
	if c := m.ended[op.Kind][op.Status()]; c != nil {
		c.Inc()
	}
}

func (m *pdMetrics) observeRound(start time.Time) {
	if m != nil {
		m.round.Observe(time.Since(start).Seconds())
	}
}

// pdCollector reports the leader's view of the cluster at scrape time.
// Followers report only shale_pd_is_leader (0): the cluster gauges come
// from whichever member leads.
type pdCollector struct {
	s                                          *Server
	isLeader, stores, tablets, underReplicated *prometheus.Desc
	storeTablets, storeLeaders, heartbeatAge   *prometheus.Desc
	running                                    *prometheus.Desc
	inconsistent, badReplicas                  *prometheus.Desc
}

func newPDCollector(s *Server) *pdCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shale_pd_"+name, help, labels, nil)
	}
	return &pdCollector{
		s:               s,
		isLeader:        d("is_leader", "1 on the PD member that leads and serves the API, 0 on the others."),
		stores:          d("stores", "Stores known to PD, by state (up, disconnected, down, offline, tombstone).", "state"),
		tablets:         d("tablets", "Tablets known to PD."),
		underReplicated: d("tablets_under_replicated", "Tablets with fewer healthy voters (on up stores, not reported down) than max-replicas."),
		storeTablets:    d("store_tablets", "Tablet replicas per store, as PD sees them.", "store"),
		storeLeaders:    d("store_leaders", "Tablet leaders per store, as PD sees them.", "store"),
		heartbeatAge:    d("store_heartbeat_age_seconds", "Time since each store's last heartbeat reached PD.", "store"),
		running:         d("operators_running", "Operators in flight, by kind.", "kind"),
		inconsistent:    d("tablets_inconsistent", "Tablets whose last consistency check found no majority among their replicas: nothing is replaced; a person decides."),
		badReplicas:     d("replicas_bad", "Replicas their leaders report bad (corrupt, or outvoted by a consistency check), waiting to be replaced."),
	}
}

func (c *pdCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.isLeader, c.stores, c.tablets, c.underReplicated, c.storeTablets, c.storeLeaders, c.heartbeatAge, c.running, c.inconsistent, c.badReplicas} {
		ch <- d
	}
}

func (c *pdCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	cl, err := c.s.leader()
	if err != nil {
		gauge(c.isLeader, 0)
		return
	}
	gauge(c.isLeader, 1)
	now := time.Now()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	byState := map[pdpb.StoreState]int{}
	up := map[uint64]bool{}
	for id, si := range cl.stores {
		byState[si.State]++
		up[id] = si.State == pdpb.StoreState_UP
		if si.State == pdpb.StoreState_TOMBSTONE {
			continue
		}
		l := strconv.FormatUint(id, 10)
		gauge(c.storeTablets, float64(cl.view.StoreTabletCount(id)), l)
		gauge(c.storeLeaders, float64(cl.view.StoreLeaderCount(id)), l)
		if t, ok := cl.lastHeartbeat[id]; ok {
			gauge(c.heartbeatAge, now.Sub(t).Seconds(), l)
		}
	}
	for st, name := range pdpb.StoreState_name {
		gauge(c.stores, float64(byState[pdpb.StoreState(st)]), strings.ToLower(name))
	}
	gauge(c.tablets, float64(cl.view.TabletCount()))
	gauge(c.underReplicated, float64(underReplicated(cl.view.Tablets(), up, cl.config.MaxReplicas)))
	inconsistent, bad := 0, 0
	for _, t := range cl.view.Tablets() {
		if t.Inconsistent {
			inconsistent++
		}
		bad += len(t.BadReplicas)
	}
	gauge(c.inconsistent, float64(inconsistent))
	gauge(c.badReplicas, float64(bad))
	runningByKind := map[schedule.OpKind]int{}
	for _, op := range cl.coord.Controller.Operators() {
		runningByKind[op.Kind]++
	}
	for _, k := range schedule.Kinds() {
		gauge(c.running, float64(runningByKind[k]), k.String())
	}
}

// underReplicated counts tablets with fewer than want voters on up
// stores that their leader does not report down.
func underReplicated(tablets []*schedule.Tablet, up map[uint64]bool, want int) int {
	n := 0
	for _, t := range tablets {
		healthy := 0
		for _, r := range t.Replicas {
			if !r.Learner && up[r.StoreID] && !containsID(t.DownReplicas, r.ID) {
				healthy++
			}
		}
		if healthy < want {
			n++
		}
	}
	return n
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
