// Package raftlog keeps one tablet replica's raft state in the store's Pebble
// instance and serves it to etcd raft through the raft.Storage interface.
//
// Layout (see internal/keys): log entries at RaftLogKey(tablet, index), the
// HardState at RaftHardStateKey and the TruncatedState (the index and term of
// the entry just before the first retained one) at RaftTruncatedStateKey.
//
// Raft only reads through Storage; the store's Ready loop writes, always in a
// Pebble batch that it commits (and syncs) itself, and then tells Storage what
// changed (Appended, Truncated, SnapshotApplied). The in-memory bounds are
// only moved after the batch is durable, so a Storage read never sees a state
// that a crash could take away.
//
// Storage is driven by a single goroutine (the store's raft worker) but its
// bounds may be read concurrently for status reports, so they are behind a
// mutex.
package raftlog
