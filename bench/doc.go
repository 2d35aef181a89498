// Package bench is the YCSB-style benchmark behind `shale bench ycsb`:
// workloads, key distributions, drivers (the Shale client, the Thrift
// gateway, etcd for comparison), latency histograms and reports. Every run
// is seeded so it can be repeated, and it measures only what users get: no
// private shortcuts into the server.
//
// This package glues the parts together (Options, Run: properties from
// the shipped workloads, -P files and -p overrides, the driver, the run,
// the summary, JSON and plot). The parts:
//
//   - bench/ycsb: YCSB's core workload (properties, generators, client
//     loop, HDR-histogram measurements, YCSB's text summary, JSON, the
//     comparison table);
//   - bench/drivers: the shale, thrift and etcd bindings;
//   - bench/workloads: YCSB's workloads A-F as property files;
//   - bench/plot: throughput and p99 over time as HTML/SVG;
//   - bench/etcdtest: a real etcd server for tests;
//   - bench/compare.sh: Shale and etcd side by side on one machine
//     (make bench-compare), results in docs/performance.md.
package bench
