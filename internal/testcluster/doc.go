// Package testcluster runs a whole Shale cluster in one test process: PD
// members (placementdriver.Run) and tablet servers (node.Run, the same
// code as the `shale pd` and `shale tablet` commands) on loopback ports,
// with fast raft and heartbeat timings. Members and stores can be stopped
// and restarted on the same directories and ports. Options.Secure runs it
// with mutual TLS (a CA, node and client certificates in CertsDir).
package testcluster
