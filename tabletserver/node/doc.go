// Package node wires one tablet server process together: a store
// (tabletserver/store) opened on a data directory, a gRPC server carrying
// both the raft transport and the Tablet API, an HTTP server with /metrics
// and /healthz, and, on request, the bootstrap of the cluster's first
// tablet. It is what `shale tablet` runs; keeping it out of cmd/shale makes
// it testable in-process.
//
// # Lifecycle
//
// Run performs, in order:
//
//  1. validate Options and create DataDir;
//  2. listen on Addr and HTTPAddr (so a port in use fails before the data
//     directory is locked);
//  3. open the store, with a static Resolver built from Peers;
//  4. with Bootstrap, and only if the store holds no tablet yet, bootstrap
//     tablet 1 over the whole key space (one voter per store of Peers,
//     replica id == store id, epoch {1,1}) and put the default raw-KV table
//     schema (table 1 "kv", family "v", max_versions 1). Doing this before
//     the gRPC server accepts raft traffic means a peer's vote request can
//     never create an uninitialized replica of tablet 1 first;
//  5. serve gRPC and HTTP, start the store, report healthy;
//  6. block until ctx is done or a server fails, then shut down: /healthz
//     turns 503, the placement-driver loop (heartbeats, replica GC, PD
//     commands) is stopped and waited for, new Tablet RPCs are refused with
//     Unavailable, in-flight ones get ShutdownTimeout to finish, the store
//     is closed (which also ends the peers' inbound raft streams), and the
//     gRPC server is stopped gracefully, then forcibly if it does not
//     drain in time. The goroutines run under two stop.Stoppers (the PD
//     loop's, then the servers'); one that does not end within
//     ShutdownTimeout is named in Run's error.
//
// Every store of a new cluster must run with Bootstrap and the same Peers:
// BootstrapTablet is deterministic, so all of them write the same initial
// state. Passing Bootstrap to an already bootstrapped store is harmless.
//
// # Usage
//
//	peers, _ := node.ParsePeers("1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003")
//	err := node.Run(ctx, node.Options{
//		StoreID: 1, DataDir: "/var/lib/shale/1",
//		Addr: "127.0.0.1:7001", HTTPAddr: "127.0.0.1:8001",
//		Peers: peers, Bootstrap: true,
//	})
package node
