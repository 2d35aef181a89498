// Package placementdriver is the control plane (PD): it keeps the cluster's
// metadata (stores, tablets, tables, the ID counter and timestamp window) in
// its own Raft group, serves routing, IDs, timestamps and the table catalog
// over gRPC, and turns store and tablet heartbeats into operators (add or
// remove replica, transfer leader, split, merge) chosen by its checkers and
// schedulers. Creating a table (and SplitTablets) splits the tablets in the
// way at once, one batch split per tablet asked of its leader directly, and
// stores report every tablet a split made right away (ReportSplit). It also
// serves the JSON HTTP API and the web console with its key heat map
// (console.go; packages console and keyviz). It is never
// on the data path: reads and writes do not ask PD for permission.
package placementdriver
