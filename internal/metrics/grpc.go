package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// numCodes is the number of gRPC status codes (OK .. Unauthenticated).
const numCodes = int(codes.Unauthenticated) + 1

// GRPCServer times the RPCs of a set of gRPC services by method and status
// code in shale_grpc_server_handling_seconds. Methods of other services
// (the raft transport's long-lived streams) pass through untimed.
type GRPCServer struct {
	vec      *prometheus.HistogramVec
	byMethod map[string]*methodObservers // read-only after construction
}

// methodObservers holds one method's handles by status code, each made
// on the method's first request with that code: creating every (method,
// code) series up front would export thousands of empty histograms.
type methodObservers struct {
	method string
	byCode [numCodes]atomic.Pointer[prometheus.Observer]
}

func (m *methodObservers) get(vec *prometheus.HistogramVec, c codes.Code) prometheus.Observer {
	if o := m.byCode[c].Load(); o != nil {
		return *o
	}
	o := vec.WithLabelValues(m.method, c.String())
	m.byCode[c].Store(&o)
	return o
}

// NewGRPCServer registers the histogram on reg and builds the method
// table of services, so that a request does a map lookup, an atomic load
// and an Observe.
func NewGRPCServer(reg prometheus.Registerer, services ...*grpc.ServiceDesc) *GRPCServer {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "shale", Subsystem: "grpc_server", Name: "handling_seconds",
		Help:    "Time to handle a gRPC request, by full method name and status code.",
		Buckets: RPCBuckets,
	}, []string{"method", "code"})
	reg.MustRegister(h)
	g := &GRPCServer{vec: h, byMethod: map[string]*methodObservers{}}
	add := func(svc, method string) {
		full := "/" + svc + "/" + method
		g.byMethod[full] = &methodObservers{method: full}
	}
	for _, sd := range services {
		for _, m := range sd.Methods {
			add(sd.ServiceName, m.MethodName)
		}
		for _, s := range sd.Streams {
			add(sd.ServiceName, s.StreamName)
		}
	}
	return g
}

func (g *GRPCServer) observe(obs *methodObservers, start time.Time, err error) {
	c := status.Code(err)
	if int(c) >= numCodes {
		c = codes.Unknown
	}
	obs.get(g.vec, c).Observe(time.Since(start).Seconds())
}

// Unary is the unary server interceptor.
func (g *GRPCServer) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	obs := g.byMethod[info.FullMethod]
	if obs == nil || !Enabled() {
		return h(ctx, req)
	}
	start := time.Now()
	resp, err := h(ctx, req)
	g.observe(obs, start, err)
	return resp, err
}

// Stream is the stream server interceptor; a stream is timed from open to
// close.
func (g *GRPCServer) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	obs := g.byMethod[info.FullMethod]
	if obs == nil || !Enabled() {
		return h(srv, ss)
	}
	start := time.Now()
	err := h(srv, ss)
	g.observe(obs, start, err)
	return err
}

// ServerOptions returns the interceptors as server options.
func (g *GRPCServer) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream)}
}
