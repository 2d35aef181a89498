package metrics

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var testService = &grpc.ServiceDesc{
	ServiceName: "test.Svc",
	Methods:     []grpc.MethodDesc{{MethodName: "Get"}},
	Streams:     []grpc.StreamDesc{{StreamName: "Watch"}},
}

func sampleCounts(t *testing.T, reg *prometheus.Registry) map[[2]string]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[[2]string]uint64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var k [2]string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "method":
					k[0] = l.GetValue()
				case "code":
					k[1] = l.GetValue()
				}
			}
			out[k] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

// TestGRPCServerTimesByMethodAndCode: requests of the given services are
// timed by method and status code; other methods (the raft transport)
// are not.
func TestGRPCServerTimesByMethodAndCode(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := NewGRPCServer(reg, testService)
	ok := func(context.Context, any) (any, error) { return "r", nil }
	busy := func(context.Context, any) (any, error) { return nil, status.Error(codes.Unavailable, "busy") }
	ctx := context.Background()
	for range 3 {
		_, err := g.Unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/test.Svc/Get"}, ok)
		require.NoError(t, err)
	}
	_, err := g.Unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/test.Svc/Get"}, busy)
	require.Equal(t, codes.Unavailable, status.Code(err))
	_, err = g.Unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/other.Svc/Raft"}, ok)
	require.NoError(t, err)
	require.NoError(t, g.Stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/test.Svc/Watch"}, func(any, grpc.ServerStream) error { return nil }))

	require.Equal(t, map[[2]string]uint64{
		{"/test.Svc/Get", "OK"}:          3,
		{"/test.Svc/Get", "Unavailable"}: 1,
		{"/test.Svc/Watch", "OK"}:        1,
	}, sampleCounts(t, reg))

	// Collection off: nothing is recorded.
	SetEnabled(false)
	defer SetEnabled(true)
	_, _ = g.Unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/test.Svc/Get"}, ok)
	require.Equal(t, uint64(3), sampleCounts(t, reg)[[2]string{"/test.Svc/Get", "OK"}])
}

// TestGRPCServerDoesNotAllocate: once a (method, code) was seen, timing a
// request allocates nothing.
func TestGRPCServerDoesNotAllocate(t *testing.T) {
	g := NewGRPCServer(prometheus.NewRegistry(), testService)
	info := &grpc.UnaryServerInfo{FullMethod: "/test.Svc/Get"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	_, _ = g.Unary(ctx, nil, info, h)
	allocs := testing.AllocsPerRun(1000, func() { _, _ = g.Unary(ctx, nil, info, h) })
	require.Zero(t, allocs)
}

// BenchmarkGRPCServerUnary is what the interceptor adds to a request, with
// collection on and off (docs/performance.md, "Metrics").
func BenchmarkGRPCServerUnary(b *testing.B) {
	g := NewGRPCServer(prometheus.NewRegistry(), testService)
	info := &grpc.UnaryServerInfo{FullMethod: "/test.Svc/Get"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	for _, on := range []bool{true, false} {
		b.Run(map[bool]string{true: "on", false: "off"}[on], func(b *testing.B) {
			SetEnabled(on)
			defer SetEnabled(true)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = g.Unary(ctx, nil, info, h)
			}
		})
	}
}
