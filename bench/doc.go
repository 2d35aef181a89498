// Package bench is the YCSB-style benchmark: workloads, key distributions,
// drivers (the Shale client, the Thrift gateway, etcd for comparison),
// latency histograms and reports. Every run is seeded so it can be
// repeated, and it measures only what users get: no private shortcuts into
// the server.
package bench
