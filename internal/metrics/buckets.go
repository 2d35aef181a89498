package metrics

import "github.com/prometheus/client_golang/prometheus"

// The histogram buckets, in seconds. docs/metrics.md ("Buckets") says why.
var (
	// RPCBuckets time requests end to end: 100 µs (a lease read served
	// from the block cache) to ~26 s (a request that waited out retries
	// and a proposal timeout), doubling, 19 buckets.
	RPCBuckets = prometheus.ExponentialBuckets(100e-6, 2, 19)
	// DiskBuckets time fsyncs and Ready passes: 50 µs (a battery-backed
	// or tmpfs fsync) to ~3.3 s (a stalling disk; stores treat 20 s as
	// dead), doubling, 17 buckets.
	DiskBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)
	// SchedBuckets time PD scheduling rounds and heartbeat lag: 1 ms to
	// ~16 s, doubling, 15 buckets.
	SchedBuckets = prometheus.ExponentialBuckets(1e-3, 2, 15)
)
