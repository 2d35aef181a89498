package store

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/keys"
)

// FlushesForTest returns how many memtable flushes the store's engine has
// run so far.
func (s *Store) FlushesForTest() int64 { return s.db.Metrics().Flush.Count }

// SnapshotStatesForTest counts the snapshot state keys in the engine: the
// raft state of installs whose state has not moved to its tablet yet.
func (s *Store) SnapshotStatesForTest() (int, error) {
	prefix := keys.SnapshotStatePrefix()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n, it.Error()
}
