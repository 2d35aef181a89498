// Package store is a tablet server's data plane: one Pebble instance holding
// every replica's data and raft state, one etcd-raft RawNode per replica, and
// a single raft worker goroutine that drives them all.
//
// # The Ready loop
//
// Request goroutines never touch a RawNode. They put proposals, read-index
// requests and admin closures into the replica's inbox (under replica.mu) and
// mark the replica ready. The worker wakes on that, or on a tick, and for
// every replica with work:
//
//  1. drains the inbox into the RawNode (Propose, Step, ReadIndex, ...);
//  2. collects Ready from every replica that has one;
//  3. installs snapshots (SST ingest, atomic with the replica state), then
//     writes all entries and hard states of all replicas into ONE Pebble
//     batch and commits it with ONE fsync (group commit);
//  4. sends all outgoing messages, batched per destination store;
//  5. applies committed entries of all replicas in one batch (data and the
//     applied index together, no fsync: the log is durable and apply is
//     deterministic, so a crash re-applies);
//  6. delivers results to waiting callers and calls Advance.
//
// Commands are evaluated at apply time, in log order, identically on every
// replica; that is what makes CheckAndMutate and ReadModifyWrite atomic
// without row latches, and what lets a tablet assign commit timestamps that
// strictly increase in log order (max(proposer clock, last applied + 1)),
// even across leader changes and wall-clock jumps.
//
// # Idle tablets
//
// There is no goroutine per tablet. A leader whose followers have everything
// stops ticking ("quiesces") after QuiesceAfterTicks and tells its followers
// to stop too; only awake replicas are ticked. Any proposal or message wakes
// a replica; a check that only looks at one (checkOnWorker) does not, or
// two followers woken together would elect a new leader. Stores ping each other once per heartbeat interval; when a store
// goes silent for an election timeout, replicas that were quiesced under a
// leader on it wake up and elect a new one.
//
// # Goroutines
//
// Every goroutine the store starts is a task of its stop.Stopper: the raft
// worker ("store.raft-worker"), the periodic loops (liveness pings,
// version GC, merge recovery, the consistency-check queue and the
// bad-replica reports; ticked by Options.Clock), the fixed pool of
// checksum workers (consistency.go) and one task per outgoing snapshot. Close stops the Stopper, cancelling the tasks'
// contexts, and waits up to Options.CloseTimeout; past it Close returns a
// stop.StuckError naming the tasks still running.
//
// # Integrity
//
// A consistency check is a raft command: the apply batch ends right after
// it and the engine is snapshotted there, so every replica hashes the same
// state (consistency.go). A replica outvoted by a majority, or whose data
// fails a checksum (corruption.go), is marked bad through raft: it serves
// nothing, hands leadership away, and PD replaces it.
//
// # Lock order
//
// replica.installMu < Store.applyMu < Store.mu < replica.mu. The worker
// holds applyMu (write) while it commits an apply batch and publishes the
// new descriptors, and a replica's installMu (write) while it installs a
// snapshot of that replica; a reader holds its replica's installMu and
// applyMu (read), so it sees data and descriptor from the same instant.
package store
