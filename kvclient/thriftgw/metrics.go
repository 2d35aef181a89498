package thriftgw

import (
	"context"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
)

// methodObservers are one Thrift method's latency handles, by outcome.
type methodObservers struct{ ok, failed prometheus.Observer }

// gatewayMetrics time every THBaseService call by method and outcome. The
// handles of every method are created with the gateway, so a call does a
// lookup at connection setup and an Observe per request.
type gatewayMetrics struct {
	byMethod map[string]methodObservers
	// byMethod1 are the Thrift1 service's, labelled "thrift1.<method>".
	byMethod1 map[string]methodObservers
	other     methodObservers
}

func newGatewayMetrics(reg prometheus.Registerer) *gatewayMetrics {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "shale", Subsystem: "thrift", Name: "request_seconds",
		Help:    "Time to handle a Thrift call, by method (Thrift1 methods as thrift1.<name>) and outcome (ok, error).",
		Buckets: metrics.RPCBuckets,
	}, []string{"method", "outcome"})
	reg.MustRegister(h)
	obs := func(m string) methodObservers {
		return methodObservers{ok: h.WithLabelValues(m, "ok"), failed: h.WithLabelValues(m, "error")}
	}
	m := &gatewayMetrics{byMethod: map[string]methodObservers{}, byMethod1: map[string]methodObservers{}, other: obs("other")}
	for name := range hbase.NewTHBaseServiceProcessor(nil).ProcessorMap() {
		m.byMethod[name] = obs(name)
	}
	for name := range hbase1.NewHbaseProcessor(nil).ProcessorMap() {
		m.byMethod1[name] = obs("thrift1." + name)
	}
	return m
}

// middleware1 times a Thrift1 processor function.
func (m *gatewayMetrics) middleware1(name string, next thrift.TProcessorFunction) thrift.TProcessorFunction {
	o, ok := m.byMethod1[name]
	if !ok {
		o = m.other
	}
	return timedProcessor{next: next, obs: o}
}

// middleware times a processor function.
func (m *gatewayMetrics) middleware(name string, next thrift.TProcessorFunction) thrift.TProcessorFunction {
	o, ok := m.byMethod[name]
	if !ok {
		o = m.other
	}
	return timedProcessor{next: next, obs: o}
}

type timedProcessor struct {
	next thrift.TProcessorFunction
	obs  methodObservers
}

func (p timedProcessor) Process(ctx context.Context, seqID int32, in, out thrift.TProtocol) (bool, thrift.TException) {
	if !metrics.Enabled() {
		return p.next.Process(ctx, seqID, in, out)
	}
	start := time.Now()
	ok, err := p.next.Process(ctx, seqID, in, out)
	o := p.obs.ok
	if err != nil {
		o = p.obs.failed
	}
	o.Observe(time.Since(start).Seconds())
	return ok, err
}
