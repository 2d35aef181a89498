// Package metrics holds what every Shale process shares for Prometheus:
// the histogram buckets (chosen once, documented in docs/metrics.md), the
// gRPC server interceptors that time every RPC by method and outcome, and
// the HTTP debug endpoints (/metrics and pprof) each process serves.
//
// Hot paths never build label values per request: the interceptors look a
// method's handles up in a map built when the server is made, and callers
// elsewhere cache WithLabelValues handles at construction.
package metrics
