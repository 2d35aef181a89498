package raftlog

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// ErrCorrupt is returned when a stored raft record cannot be decoded.
var ErrCorrupt = errors.New("raftlog: corrupt raft state")

// SnapshotFunc produces the raft snapshot the leader sends to a follower that
// is too far behind. It is owned by the replica because only it knows how to
// pin engine state consistent with the snapshot's index.
type SnapshotFunc func() (raftpb.Snapshot, error)

// Storage implements raft.Storage for one tablet replica.
type Storage struct {
	db       *pebble.DB
	tabletID uint64
	snapshot SnapshotFunc

	mu struct {
		sync.Mutex
		hardState raftpb.HardState
		confState raftpb.ConfState
		truncated Truncated
		lastIndex uint64
		lastTerm  uint64
		cache     entryCache
	}
}

var _ raft.Storage = (*Storage)(nil)

// Open loads the raft state of tabletID. confState comes from the tablet
// descriptor, which the caller persists and reads.
func Open(db *pebble.DB, tabletID uint64, confState raftpb.ConfState, snap SnapshotFunc) (*Storage, error) {
	s := &Storage{db: db, tabletID: tabletID, snapshot: snap}
	s.mu.confState = confState
	s.mu.cache.limit = defaultCacheBytes
	// Read every record from one engine snapshot: a concurrent batch (a
	// split creating this tablet's state) must be seen whole or not at all.
	view := db.NewSnapshot()
	defer view.Close()
	var tr raftcmdpb.TruncatedState
	if err := getProto(view, keys.RaftTruncatedStateKey(tabletID), &tr); err != nil {
		return nil, err
	}
	s.mu.truncated = Truncated{Index: tr.Index, Term: tr.Term}
	v, closer, err := view.Get(keys.RaftHardStateKey(tabletID))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		err = s.mu.hardState.Unmarshal(v)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: hard state of tablet %d: %v", ErrCorrupt, tabletID, err)
		}
	}
	s.mu.lastIndex, s.mu.lastTerm = s.mu.truncated.Index, s.mu.truncated.Term
	iter, err := view.NewIter(&pebble.IterOptions{
		LowerBound: keys.RaftLogPrefix(tabletID),
		UpperBound: keys.PrefixEnd(keys.RaftLogPrefix(tabletID)),
	})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	if iter.Last() {
		var e raftpb.Entry
		if err := e.Unmarshal(iter.Value()); err != nil {
			return nil, fmt.Errorf("%w: last entry of tablet %d: %v", ErrCorrupt, tabletID, err)
		}
		s.mu.lastIndex, s.mu.lastTerm = e.Index, e.Term
	}
	return s, iter.Error()
}

func getProto(db pebble.Reader, key []byte, m proto.Message) error {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, m); err != nil {
		return fmt.Errorf("%w: %x: %v", ErrCorrupt, key, err)
	}
	return nil
}

// InitialState implements raft.Storage.
func (s *Storage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.hardState, s.mu.confState, nil
}

// SetConfState records the membership after a conf change or snapshot, for
// the next InitialState (used when the RawNode is rebuilt).
func (s *Storage) SetConfState(cs raftpb.ConfState) {
	s.mu.Lock()
	s.mu.confState = cs
	s.mu.Unlock()
}

// Entries implements raft.Storage. The unapplied tail comes from the entry
// cache, anything else from Pebble.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	s.mu.Lock()
	first, last := s.mu.truncated.Index+1, s.mu.lastIndex
	if lo < first {
		s.mu.Unlock()
		return nil, raft.ErrCompacted
	}
	if hi > last+1 {
		s.mu.Unlock()
		return nil, raft.ErrUnavailable
	}
	ents, ok := s.mu.cache.get(lo, hi, maxSize)
	s.mu.Unlock()
	if ok {
		return ents, nil
	}
	return s.pebbleEntries(lo, hi, maxSize)
}

// pebbleEntries reads [lo, hi) from Pebble; the bounds are already checked.
func (s *Storage) pebbleEntries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	iter, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: keys.RaftLogKey(s.tabletID, lo),
		UpperBound: keys.RaftLogKey(s.tabletID, hi),
	})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	var (
		ents []raftpb.Entry
		size uint64
		want = lo
	)
	for iter.First(); iter.Valid(); iter.Next() {
		var e raftpb.Entry
		if err := e.Unmarshal(iter.Value()); err != nil {
			return nil, fmt.Errorf("%w: entry of tablet %d: %v", ErrCorrupt, s.tabletID, err)
		}
		if e.Index != want {
			return nil, fmt.Errorf("%w: tablet %d: log gap, want index %d found %d", ErrCorrupt, s.tabletID, want, e.Index)
		}
		want++
		size += uint64(e.Size())
		// Always return at least one entry, as raft requires.
		if len(ents) > 0 && size > maxSize {
			break
		}
		ents = append(ents, e)
	}
	if err := iter.Error(); err != nil {
		return nil, err
	}
	if len(ents) == 0 || (ents[len(ents)-1].Index+1 < hi && size <= maxSize) {
		// A concurrent truncation removed what we were reading.
		return nil, raft.ErrCompacted
	}
	return ents, nil
}

// Term implements raft.Storage.
func (s *Storage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	tr, last, lastTerm := s.mu.truncated, s.mu.lastIndex, s.mu.lastTerm
	cached, inCache := s.mu.cache.term(i)
	s.mu.Unlock()
	switch {
	case i == tr.Index:
		return tr.Term, nil
	case i < tr.Index:
		return 0, raft.ErrCompacted
	case i > last:
		return 0, raft.ErrUnavailable
	case i == last:
		return lastTerm, nil
	case inCache:
		return cached, nil
	}
	v, closer, err := s.db.Get(keys.RaftLogKey(s.tabletID, i))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, raft.ErrCompacted
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	var e raftpb.Entry
	if err := e.Unmarshal(v); err != nil {
		return 0, fmt.Errorf("%w: entry %d of tablet %d: %v", ErrCorrupt, i, s.tabletID, err)
	}
	return e.Term, nil
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.lastIndex, nil
}

// FirstIndex implements raft.Storage.
func (s *Storage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.truncated.Index + 1, nil
}

// Truncated is the index and term of the entry just before the log's first.
type Truncated struct{ Index, Term uint64 }

// Truncated returns the truncated state: the log starts after it.
func (s *Storage) Truncated() Truncated {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.truncated
}

// Snapshot implements raft.Storage.
func (s *Storage) Snapshot() (raftpb.Snapshot, error) {
	if s.snapshot == nil {
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	return s.snapshot()
}

// AppendToBatch adds entries and, when non-empty, the hard state to b. Any
// previously stored entries after the last new one are removed (raft may
// replace a conflicting tail). Call Appended once b is committed.
func (s *Storage) AppendToBatch(b *pebble.Batch, hs raftpb.HardState, ents []raftpb.Entry) error {
	if !raft.IsEmptyHardState(hs) {
		v, err := hs.Marshal()
		if err != nil {
			return err
		}
		if err := b.Set(keys.RaftHardStateKey(s.tabletID), v, nil); err != nil {
			return err
		}
	}
	if len(ents) == 0 {
		return nil
	}
	var buf []byte
	for i := range ents {
		n := ents[i].Size()
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := ents[i].MarshalTo(buf); err != nil {
			return err
		}
		if err := b.Set(keys.RaftLogKey(s.tabletID, ents[i].Index), buf, nil); err != nil {
			return err
		}
	}
	s.mu.Lock()
	last := s.mu.lastIndex
	s.mu.Unlock()
	if newLast := ents[len(ents)-1].Index; newLast < last {
		return b.DeleteRange(keys.RaftLogKey(s.tabletID, newLast+1), keys.RaftLogKey(s.tabletID, last+1), nil)
	}
	return nil
}

// Appended moves the in-memory bounds after a committed AppendToBatch and
// caches the entries until Applied reports them applied. The cache shares
// the entries' Data, which raft never mutates.
func (s *Storage) Appended(hs raftpb.HardState, ents []raftpb.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !raft.IsEmptyHardState(hs) {
		s.mu.hardState = hs
	}
	if len(ents) > 0 {
		e := ents[len(ents)-1]
		s.mu.lastIndex, s.mu.lastTerm = e.Index, e.Term
	}
	s.mu.cache.add(ents)
}

// Applied drops the cached entries up to and including index: once applied
// they are read again only by slow followers and restarts, from Pebble.
func (s *Storage) Applied(index uint64) {
	s.mu.Lock()
	s.mu.cache.dropTo(index)
	s.mu.Unlock()
}

// TruncateToBatch removes entries up to and including index from the log
// and records the new truncated state in b. It returns false when there is
// nothing to do. Call Truncated once b is committed.
func (s *Storage) TruncateToBatch(b *pebble.Batch, index uint64) (Truncated, bool, error) {
	s.mu.Lock()
	tr, last := s.mu.truncated, s.mu.lastIndex
	s.mu.Unlock()
	if index <= tr.Index || index > last {
		return Truncated{}, false, nil
	}
	term, err := s.Term(index)
	if err != nil {
		return Truncated{}, false, err
	}
	next := Truncated{Index: index, Term: term}
	if err := b.DeleteRange(keys.RaftLogKey(s.tabletID, tr.Index+1), keys.RaftLogKey(s.tabletID, index+1), nil); err != nil {
		return next, false, err
	}
	v, err := proto.Marshal(&raftcmdpb.TruncatedState{Index: next.Index, Term: next.Term})
	if err != nil {
		return next, false, err
	}
	return next, true, b.Set(keys.RaftTruncatedStateKey(s.tabletID), v, nil)
}

// SetTruncated installs a truncated state after the batch that wrote it
// committed (log truncation or an applied snapshot). For a snapshot the log
// is empty afterwards, so last index and term move to the snapshot's.
func (s *Storage) SetTruncated(tr Truncated, snapshot bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.truncated = tr
	s.mu.cache.dropTo(tr.Index)
	if snapshot {
		s.mu.cache.clear() // the log was replaced wholesale
	}
	if snapshot || s.mu.lastIndex < tr.Index {
		s.mu.lastIndex, s.mu.lastTerm = tr.Index, tr.Term
	}
}

// SetHardState records a hard state written outside AppendToBatch (an
// applied snapshot).
func (s *Storage) SetHardState(hs raftpb.HardState) {
	s.mu.Lock()
	s.mu.hardState = hs
	s.mu.Unlock()
}

// HardState returns the last persisted hard state.
func (s *Storage) HardState() raftpb.HardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.hardState
}

// CachedBytes returns the encoded size of the cached unapplied entries.
func (s *Storage) CachedBytes() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.cache.bytes
}

// LogSize returns the number of entries in the log.
func (s *Storage) LogSize() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.lastIndex - s.mu.truncated.Index
}
