// Package raftlog keeps one tablet replica's raft state in the store's Pebble
// instance and serves it to etcd raft through the raft.Storage interface.
//
// Layout (see internal/keys): log entries at RaftLogKey(tablet, index), the
// HardState at RaftHardStateKey and the TruncatedState (the index and term of
// the entry just before the first retained one) at RaftTruncatedStateKey.
//
// Raft only reads through Storage. The store writes, always into a Pebble
// batch that it commits (and syncs) itself: AppendToBatch and TruncateToBatch
// add the records to the batch, and once the batch is durable the store tells
// Storage what changed (Appended, SetTruncated; SetHardState, SetTruncated and
// SetConfState after a snapshot or a membership change). The in-memory bounds
// move only then, so a Storage read never sees a state that a crash could take
// away.
//
// Entries appended but not yet applied are also kept in a small per-replica
// cache (cache.go), so raft reading an entry back when it commits does not
// go to Pebble. The store reports applied indexes (Applied), which empties
// it; anything not cached (older entries, after a restart, past the 4 MiB
// cap) is read from Pebble.
//
// Storage is driven by the store's raft worker, but its bounds and hard state
// are also read concurrently (status reports, log-size accounting for
// truncation), so they sit behind a mutex.
package raftlog
