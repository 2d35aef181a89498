package raftlog_test

import (
	"errors"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/raftlog"
)

const tabletID = 42

func openDB(t *testing.T) (*pebble.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, dir
}

func openStorage(t *testing.T, db *pebble.DB) *raftlog.Storage {
	t.Helper()
	s, err := raftlog.Open(db, tabletID, raftpb.ConfState{Voters: []uint64{1, 2, 3}}, nil)
	require.NoError(t, err)
	return s
}

// mkEnts returns entries first, first+1, ... with the given terms.
func mkEnts(first uint64, terms ...uint64) []raftpb.Entry {
	ents := make([]raftpb.Entry, len(terms))
	for i, term := range terms {
		idx := first + uint64(i)
		ents[i] = raftpb.Entry{Index: idx, Term: term, Type: raftpb.EntryNormal, Data: []byte{byte(idx), byte(term), 'x'}}
	}
	return ents
}

func appendEnts(t *testing.T, db *pebble.DB, s *raftlog.Storage, hs raftpb.HardState, ents []raftpb.Entry) {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	require.NoError(t, s.AppendToBatch(b, hs, ents))
	require.NoError(t, b.Commit(pebble.Sync))
	s.Appended(hs, ents)
}

func truncate(t *testing.T, db *pebble.DB, s *raftlog.Storage, index uint64) raftlog.Truncated {
	t.Helper()
	b := db.NewBatch()
	defer b.Close()
	tr, ok, err := s.TruncateToBatch(b, index)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.Commit(pebble.Sync))
	s.SetTruncated(tr, false)
	return tr
}

func bounds(t *testing.T, s *raftlog.Storage) (uint64, uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	require.NoError(t, err)
	last, err := s.LastIndex()
	require.NoError(t, err)
	return first, last
}

func TestOpenEmpty(t *testing.T) {
	db, _ := openDB(t)
	cs := raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	s, err := raftlog.Open(db, tabletID, cs, nil)
	require.NoError(t, err)

	first, last := bounds(t, s)
	require.Equal(t, uint64(1), first)
	require.Equal(t, uint64(0), last)

	hs, gotCS, err := s.InitialState()
	require.NoError(t, err)
	require.True(t, raft.IsEmptyHardState(hs))
	require.Equal(t, cs, gotCS)
	require.Equal(t, raftlog.Truncated{}, s.Truncated())
	require.Equal(t, uint64(0), s.LogSize())

	term, err := s.Term(0)
	require.NoError(t, err)
	require.Equal(t, uint64(0), term)
	_, err = s.Term(1)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	_, err = s.Entries(1, 2, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrUnavailable)
}

func TestAppendAndEntries(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	hs := raftpb.HardState{Term: 3, Vote: 2, Commit: 4}
	ents := mkEnts(1, 1, 1, 2, 3, 3)
	appendEnts(t, db, s, hs, ents)

	first, last := bounds(t, s)
	require.Equal(t, uint64(1), first)
	require.Equal(t, uint64(5), last)
	require.Equal(t, hs, s.HardState())
	gotHS, _, err := s.InitialState()
	require.NoError(t, err)
	require.Equal(t, hs, gotHS)
	require.Equal(t, uint64(5), s.LogSize())

	got, err := s.Entries(1, 6, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents, got)

	got, err = s.Entries(2, 4, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[1:3], got)

	// maxSize 0 still yields one entry.
	got, err = s.Entries(2, 6, 0)
	require.NoError(t, err)
	require.Equal(t, ents[1:2], got)

	// maxSize covering exactly two entries.
	two := uint64(ents[1].Size() + ents[2].Size())
	got, err = s.Entries(2, 6, two)
	require.NoError(t, err)
	require.Equal(t, ents[1:3], got)
	got, err = s.Entries(2, 6, two+uint64(ents[3].Size())-1)
	require.NoError(t, err)
	require.Equal(t, ents[1:3], got)
	got, err = s.Entries(2, 6, two+uint64(ents[3].Size()))
	require.NoError(t, err)
	require.Equal(t, ents[1:4], got)

	// Bounds.
	_, err = s.Entries(0, 3, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted)
	_, err = s.Entries(3, 7, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrUnavailable)
	got, err = s.Entries(5, 6, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[4:], got)

	// Terms.
	for _, e := range ents {
		term, err := s.Term(e.Index)
		require.NoError(t, err)
		require.Equal(t, e.Term, term, "index %d", e.Index)
	}
	term, err := s.Term(0)
	require.NoError(t, err)
	require.Equal(t, uint64(0), term)
	_, err = s.Term(6)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	// Empty hard state in a later append keeps the old one.
	appendEnts(t, db, s, raftpb.HardState{}, mkEnts(6, 3))
	require.Equal(t, hs, s.HardState())
	_, last = bounds(t, s)
	require.Equal(t, uint64(6), last)
}

func TestHardStateOnlyAppend(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	hs := raftpb.HardState{Term: 1, Vote: 1}
	appendEnts(t, db, s, hs, nil)
	require.Equal(t, hs, s.HardState())
	_, last := bounds(t, s)
	require.Equal(t, uint64(0), last)

	s2 := openStorage(t, db)
	require.Equal(t, hs, s2.HardState())
}

func TestAppendedNotVisibleBeforeCall(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 1)
	b := db.NewBatch()
	defer b.Close()
	require.NoError(t, s.AppendToBatch(b, raftpb.HardState{Term: 1}, ents))
	require.NoError(t, b.Commit(pebble.Sync))
	// Bounds only move with Appended.
	_, last := bounds(t, s)
	require.Equal(t, uint64(0), last)
	_, err := s.Entries(1, 2, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrUnavailable)
	s.Appended(raftpb.HardState{Term: 1}, ents)
	got, err := s.Entries(1, 3, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents, got)
}

func TestConflictingTailReplaced(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1, 1))
	appendEnts(t, db, s, raftpb.HardState{Term: 2}, mkEnts(5, 2, 2, 2, 2, 2, 2)) // 5..10
	_, last := bounds(t, s)
	require.Equal(t, uint64(10), last)

	repl := mkEnts(8, 3, 3) // 8..9 with a new term
	appendEnts(t, db, s, raftpb.HardState{Term: 3}, repl)

	first, last := bounds(t, s)
	require.Equal(t, uint64(1), first)
	require.Equal(t, uint64(9), last)
	term, err := s.Term(9)
	require.NoError(t, err)
	require.Equal(t, uint64(3), term)
	term, err = s.Term(8)
	require.NoError(t, err)
	require.Equal(t, uint64(3), term)
	term, err = s.Term(7)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	_, err = s.Term(10)
	require.ErrorIs(t, err, raft.ErrUnavailable)
	_, err = s.Entries(5, 11, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	got, err := s.Entries(5, 10, math.MaxUint64)
	require.NoError(t, err)
	want := append(mkEnts(5, 2, 2, 2), repl...)
	require.Equal(t, want, got)

	// Entry 10 is physically gone from Pebble.
	_, closer, err := db.Get(keys.RaftLogKey(tabletID, 10))
	require.ErrorIs(t, err, pebble.ErrNotFound)
	if closer != nil {
		closer.Close()
	}

	// And a reopened storage agrees.
	s2 := openStorage(t, db)
	_, last = bounds(t, s2)
	require.Equal(t, uint64(9), last)
	term, err = s2.Term(9)
	require.NoError(t, err)
	require.Equal(t, uint64(3), term)
}

func TestTruncate(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4) // 1..10
	appendEnts(t, db, s, raftpb.HardState{Term: 4, Commit: 10}, ents)

	// Nothing to do: at/below current truncated index, or beyond the last.
	for _, idx := range []uint64{0, 11} {
		b := db.NewBatch()
		_, ok, err := s.TruncateToBatch(b, idx)
		require.NoError(t, err)
		require.False(t, ok, "index %d", idx)
		require.True(t, b.Empty())
		b.Close()
	}

	tr := truncate(t, db, s, 5)
	require.Equal(t, raftlog.Truncated{Index: 5, Term: 3}, tr)
	require.Equal(t, tr, s.Truncated())
	first, last := bounds(t, s)
	require.Equal(t, uint64(6), first)
	require.Equal(t, uint64(10), last)
	require.Equal(t, uint64(5), s.LogSize())

	// Term at the truncated index still answers; below is compacted.
	term, err := s.Term(5)
	require.NoError(t, err)
	require.Equal(t, uint64(3), term)
	_, err = s.Term(4)
	require.ErrorIs(t, err, raft.ErrCompacted)
	_, err = s.Term(1)
	require.ErrorIs(t, err, raft.ErrCompacted)
	term, err = s.Term(6)
	require.NoError(t, err)
	require.Equal(t, uint64(3), term)

	_, err = s.Entries(5, 7, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted)
	got, err := s.Entries(6, 11, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[5:], got)

	// Entries ≤ 5 are gone from Pebble.
	for i := uint64(1); i <= 5; i++ {
		_, closer, err := db.Get(keys.RaftLogKey(tabletID, i))
		require.ErrorIs(t, err, pebble.ErrNotFound, "index %d", i)
		if closer != nil {
			closer.Close()
		}
	}

	// Truncating again at the same index is a no-op.
	b := db.NewBatch()
	_, ok, err := s.TruncateToBatch(b, 5)
	require.NoError(t, err)
	require.False(t, ok)
	b.Close()

	// Truncate the whole log: last index stays, log is empty.
	tr = truncate(t, db, s, 10)
	require.Equal(t, raftlog.Truncated{Index: 10, Term: 4}, tr)
	first, last = bounds(t, s)
	require.Equal(t, uint64(11), first)
	require.Equal(t, uint64(10), last)
	require.Equal(t, uint64(0), s.LogSize())
	term, err = s.Term(10)
	require.NoError(t, err)
	require.Equal(t, uint64(4), term)
	_, err = s.Entries(10, 11, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted)

	// Reopen: bounds come back from the truncated state alone.
	s2 := openStorage(t, db)
	require.Equal(t, tr, s2.Truncated())
	first, last = bounds(t, s2)
	require.Equal(t, uint64(11), first)
	require.Equal(t, uint64(10), last)
	term, err = s2.Term(10)
	require.NoError(t, err)
	require.Equal(t, uint64(4), term)

	// Appending after a full truncation continues the log.
	appendEnts(t, db, s2, raftpb.HardState{}, mkEnts(11, 5))
	got, err = s2.Entries(11, 12, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, mkEnts(11, 5), got)
}

func TestSetTruncatedSnapshot(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 2, Commit: 5}, mkEnts(1, 1, 1, 2, 2, 2))

	// A snapshot behind the current last index still resets the log.
	s.SetTruncated(raftlog.Truncated{Index: 3, Term: 2}, true)
	first, last := bounds(t, s)
	require.Equal(t, uint64(4), first)
	require.Equal(t, uint64(3), last)
	term, err := s.Term(3)
	require.NoError(t, err)
	require.Equal(t, uint64(2), term)
	_, err = s.Term(4)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	// Non-snapshot truncation beyond last also moves last.
	s.SetTruncated(raftlog.Truncated{Index: 7, Term: 3}, false)
	first, last = bounds(t, s)
	require.Equal(t, uint64(8), first)
	require.Equal(t, uint64(7), last)

	// Apply a snapshot the way the store would: one batch clears the log and
	// records the truncated state and hard state.
	snapTr := raftlog.Truncated{Index: 20, Term: 6}
	hs := raftpb.HardState{Term: 6, Vote: 3, Commit: 20}
	b := db.NewBatch()
	require.NoError(t, b.DeleteRange(keys.RaftLogPrefix(tabletID), keys.PrefixEnd(keys.RaftLogPrefix(tabletID)), nil))
	v, err := proto.Marshal(&raftcmdpb.TruncatedState{Index: snapTr.Index, Term: snapTr.Term})
	require.NoError(t, err)
	require.NoError(t, b.Set(keys.RaftTruncatedStateKey(tabletID), v, nil))
	hsb, err := hs.Marshal()
	require.NoError(t, err)
	require.NoError(t, b.Set(keys.RaftHardStateKey(tabletID), hsb, nil))
	require.NoError(t, b.Commit(pebble.Sync))
	b.Close()
	s.SetTruncated(snapTr, true)
	s.SetHardState(hs)
	newCS := raftpb.ConfState{Voters: []uint64{1, 2, 4}}
	s.SetConfState(newCS)

	first, last = bounds(t, s)
	require.Equal(t, uint64(21), first)
	require.Equal(t, uint64(20), last)
	require.Equal(t, hs, s.HardState())
	gotHS, gotCS, err := s.InitialState()
	require.NoError(t, err)
	require.Equal(t, hs, gotHS)
	require.Equal(t, newCS, gotCS)

	s2, err := raftlog.Open(db, tabletID, newCS, nil)
	require.NoError(t, err)
	require.Equal(t, snapTr, s2.Truncated())
	first, last = bounds(t, s2)
	require.Equal(t, uint64(21), first)
	require.Equal(t, uint64(20), last)
	require.Equal(t, hs, s2.HardState())
}

func TestReopenRecoversState(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1, Vote: 1, Commit: 3}, mkEnts(1, 1, 1, 1, 1))
	appendEnts(t, db, s, raftpb.HardState{Term: 2, Vote: 2, Commit: 6}, mkEnts(5, 2, 2, 2, 2, 2, 2)) // 5..10
	appendEnts(t, db, s, raftpb.HardState{Term: 3, Vote: 3, Commit: 7}, mkEnts(8, 3, 3))             // 8..9
	truncate(t, db, s, 4)

	wantHS := s.HardState()
	wantTr := s.Truncated()
	wantFirst, wantLast := bounds(t, s)
	wantEnts, err := s.Entries(wantFirst, wantLast+1, math.MaxUint64)
	require.NoError(t, err)
	require.Len(t, wantEnts, 5)
	require.Equal(t, raftlog.Truncated{Index: 4, Term: 1}, wantTr)
	require.Equal(t, uint64(5), wantFirst)
	require.Equal(t, uint64(9), wantLast)

	check := func(t *testing.T, s2 *raftlog.Storage) {
		t.Helper()
		hs, cs, err := s2.InitialState()
		require.NoError(t, err)
		require.Equal(t, wantHS, hs)
		require.Equal(t, []uint64{1, 2, 3}, cs.Voters)
		require.Equal(t, wantTr, s2.Truncated())
		first, last := bounds(t, s2)
		require.Equal(t, wantFirst, first)
		require.Equal(t, wantLast, last)
		got, err := s2.Entries(first, last+1, math.MaxUint64)
		require.NoError(t, err)
		require.Equal(t, wantEnts, got)
		for i := wantTr.Index; i <= last; i++ {
			a, err := s.Term(i)
			require.NoError(t, err)
			b, err := s2.Term(i)
			require.NoError(t, err)
			require.Equal(t, a, b, "term at %d", i)
		}
	}

	// Same DB handle.
	check(t, openStorage(t, db))

	// After closing and reopening the Pebble DB itself.
	require.NoError(t, db.Close())
	db2, err := pebble.Open(dir, &pebble.Options{})
	require.NoError(t, err)
	defer db2.Close()
	s2, err := raftlog.Open(db2, tabletID, raftpb.ConfState{Voters: []uint64{1, 2, 3}}, nil)
	require.NoError(t, err)
	// s still refers to the closed db; compare using the recorded values only.
	hs, _, err := s2.InitialState()
	require.NoError(t, err)
	require.Equal(t, wantHS, hs)
	require.Equal(t, wantTr, s2.Truncated())
	first, last := bounds(t, s2)
	require.Equal(t, wantFirst, first)
	require.Equal(t, wantLast, last)
	got, err := s2.Entries(first, last+1, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, wantEnts, got)
}

func TestTabletsIsolated(t *testing.T) {
	db, _ := openDB(t)
	a := openStorage(t, db)
	b, err := raftlog.Open(db, tabletID+1, raftpb.ConfState{}, nil)
	require.NoError(t, err)
	appendEnts(t, db, a, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1))
	appendEnts(t, db, b, raftpb.HardState{Term: 7}, mkEnts(1, 7))
	truncate(t, db, b, 1)

	b2, err := raftlog.Open(db, tabletID+1, raftpb.ConfState{}, nil)
	require.NoError(t, err)
	first, last := bounds(t, b2)
	require.Equal(t, uint64(2), first)
	require.Equal(t, uint64(1), last)
	require.Equal(t, raftpb.HardState{Term: 7}, b2.HardState())

	a2 := openStorage(t, db)
	first, last = bounds(t, a2)
	require.Equal(t, uint64(1), first)
	require.Equal(t, uint64(3), last)
	got, err := a2.Entries(1, 4, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, mkEnts(1, 1, 1, 1), got)
}

var garbage = []byte{0xff, 0xff, 0xff, 0xff, 0xff}

func TestCorruptLastEntryOnOpen(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1))
	require.NoError(t, db.Set(keys.RaftLogKey(tabletID, 3), garbage, pebble.Sync))
	_, err := raftlog.Open(db, tabletID, raftpb.ConfState{}, nil)
	require.Error(t, err)
	require.True(t, errors.Is(err, raftlog.ErrCorrupt), "err = %v", err)
}

func TestCorruptMiddleEntry(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1))
	require.NoError(t, db.Set(keys.RaftLogKey(tabletID, 2), garbage, pebble.Sync))

	s2, err := raftlog.Open(db, tabletID, raftpb.ConfState{}, nil)
	require.NoError(t, err) // only the last entry is read at open
	_, err = s2.Entries(1, 4, math.MaxUint64)
	require.ErrorIs(t, err, raftlog.ErrCorrupt)
	_, err = s2.Term(2)
	require.ErrorIs(t, err, raftlog.ErrCorrupt)
	// Entries not touching the bad one still work.
	got, err := s2.Entries(3, 4, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, mkEnts(3, 1), got)
}

func TestEntryAtWrongIndex(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1))
	s.Applied(3) // applied entries are read from Pebble
	// A well-formed entry stored under the wrong key.
	e := raftpb.Entry{Index: 7, Term: 1}
	v, err := e.Marshal()
	require.NoError(t, err)
	require.NoError(t, db.Set(keys.RaftLogKey(tabletID, 2), v, pebble.Sync))
	_, err = s.Entries(1, 4, math.MaxUint64)
	require.ErrorIs(t, err, raftlog.ErrCorrupt)
}

func TestMissingEntryIsGap(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1, 1))
	s.Applied(5) // applied entries are read from Pebble
	require.NoError(t, db.Delete(keys.RaftLogKey(tabletID, 3), pebble.Sync))
	_, err := s.Entries(1, 5, math.MaxUint64)
	require.ErrorIs(t, err, raftlog.ErrCorrupt)
	_, err = s.Term(3)
	require.ErrorIs(t, err, raft.ErrCompacted)
}

func TestCorruptHardStateAndTruncatedState(t *testing.T) {
	t.Run("hardstate", func(t *testing.T) {
		db, _ := openDB(t)
		require.NoError(t, db.Set(keys.RaftHardStateKey(tabletID), garbage, pebble.Sync))
		_, err := raftlog.Open(db, tabletID, raftpb.ConfState{}, nil)
		require.ErrorIs(t, err, raftlog.ErrCorrupt)
	})
	t.Run("truncated", func(t *testing.T) {
		db, _ := openDB(t)
		require.NoError(t, db.Set(keys.RaftTruncatedStateKey(tabletID), garbage, pebble.Sync))
		_, err := raftlog.Open(db, tabletID, raftpb.ConfState{}, nil)
		require.ErrorIs(t, err, raftlog.ErrCorrupt)
	})
}

func TestSnapshotDelegation(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	_, err := s.Snapshot()
	require.ErrorIs(t, err, raft.ErrSnapshotTemporarilyUnavailable)

	want := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 9, Term: 4, ConfState: raftpb.ConfState{Voters: []uint64{1}}}, Data: []byte("snap")}
	calls := 0
	s2, err := raftlog.Open(db, tabletID, raftpb.ConfState{}, func() (raftpb.Snapshot, error) {
		calls++
		return want, nil
	})
	require.NoError(t, err)
	got, err := s2.Snapshot()
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, 1, calls)

	boom := errors.New("boom")
	s3, err := raftlog.Open(db, tabletID, raftpb.ConfState{}, func() (raftpb.Snapshot, error) {
		return raftpb.Snapshot{}, boom
	})
	require.NoError(t, err)
	_, err = s3.Snapshot()
	require.ErrorIs(t, err, boom)
}

// etcdLayout builds the equivalent of etcd's MemoryStorage{ents: index(3).terms(3, 4, 5, ...)}:
// truncated at (3, 3) and entries 4.. with the remaining terms.
func etcdLayout(t *testing.T, terms ...uint64) (*raftlog.Storage, []raftpb.Entry) {
	t.Helper()
	db, _ := openDB(t)
	s := openStorage(t, db)
	all := mkEnts(3, terms...)
	appendEnts(t, db, s, raftpb.HardState{Term: terms[len(terms)-1]}, all)
	truncate(t, db, s, 3)
	return s, all
}

// The expectations of etcd raft's own MemoryStorage tests.
func TestEtcdStorageTerm(t *testing.T) {
	s, _ := etcdLayout(t, 3, 4, 5)
	for _, tt := range []struct {
		i     uint64
		werr  error
		wterm uint64
	}{
		{2, raft.ErrCompacted, 0},
		{3, nil, 3},
		{4, nil, 4},
		{5, nil, 5},
		{6, raft.ErrUnavailable, 0},
	} {
		term, err := s.Term(tt.i)
		require.Equal(t, tt.werr, err, "i=%d", tt.i)
		require.Equal(t, tt.wterm, term, "i=%d", tt.i)
	}
}

func TestEtcdStorageEntries(t *testing.T) {
	s, ents := etcdLayout(t, 3, 4, 5, 6)
	sz := func(i int) uint64 { return uint64(ents[i].Size()) }
	for _, tt := range []struct {
		lo, hi, maxsize uint64
		werr            error
		wentries        []raftpb.Entry
	}{
		{2, 6, math.MaxUint64, raft.ErrCompacted, nil},
		{3, 4, math.MaxUint64, raft.ErrCompacted, nil},
		{4, 5, math.MaxUint64, nil, ents[1:2]},
		{4, 6, math.MaxUint64, nil, ents[1:3]},
		{4, 7, math.MaxUint64, nil, ents[1:4]},
		{4, 7, 0, nil, ents[1:2]},
		{4, 7, sz(1) + sz(2), nil, ents[1:3]},
		{4, 7, sz(1) + sz(2) + sz(3)/2, nil, ents[1:3]},
		{4, 7, sz(1) + sz(2) + sz(3) - 1, nil, ents[1:3]},
		{4, 7, sz(1) + sz(2) + sz(3), nil, ents[1:4]},
		{4, 8, math.MaxUint64, raft.ErrUnavailable, nil},
	} {
		got, err := s.Entries(tt.lo, tt.hi, tt.maxsize)
		require.Equal(t, tt.werr, err, "%d..%d max %d", tt.lo, tt.hi, tt.maxsize)
		require.Equal(t, tt.wentries, got, "%d..%d max %d", tt.lo, tt.hi, tt.maxsize)
	}
}

func TestEtcdStorageLastAndFirstIndex(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 5}, mkEnts(3, 3, 4, 5))
	truncate(t, db, s, 3)
	first, last := bounds(t, s)
	require.Equal(t, uint64(4), first)
	require.Equal(t, uint64(5), last)

	appendEnts(t, db, s, raftpb.HardState{}, mkEnts(6, 5))
	_, last = bounds(t, s)
	require.Equal(t, uint64(6), last)

	truncate(t, db, s, 4)
	first, _ = bounds(t, s)
	require.Equal(t, uint64(5), first)
}

// TestEtcdStorageAppend mirrors etcd's TestStorageAppend cases that are in
// Storage's contract (raft never appends at or below the first index).
func TestEtcdStorageAppend(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ents    []raftpb.Entry
		wterms  []uint64 // terms of entries 4.. after the append
		wlast   uint64
		wlastTm uint64
	}{
		{"overwrite-same", mkEnts(4, 4, 5), []uint64{4, 5}, 5, 5},
		{"truncate-tail", mkEnts(4, 6, 6), []uint64{6, 6}, 5, 6},
		{"extend-with-overwrite", mkEnts(4, 4, 5, 5), []uint64{4, 5, 5}, 6, 5},
		{"overwrite-at-5", mkEnts(5, 6), []uint64{4, 6}, 5, 6},
		{"direct-append", mkEnts(6, 5), []uint64{4, 5, 5}, 6, 5},
		{"shorter-overwrite", mkEnts(4, 7), []uint64{7}, 4, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openDB(t)
			s := openStorage(t, db)
			appendEnts(t, db, s, raftpb.HardState{Term: 5}, mkEnts(3, 3, 4, 5))
			truncate(t, db, s, 3)
			appendEnts(t, db, s, raftpb.HardState{}, tt.ents)

			first, last := bounds(t, s)
			require.Equal(t, uint64(4), first)
			require.Equal(t, tt.wlast, last)
			term, err := s.Term(last)
			require.NoError(t, err)
			require.Equal(t, tt.wlastTm, term)
			got, err := s.Entries(4, last+1, math.MaxUint64)
			require.NoError(t, err)
			var terms []uint64
			for i, e := range got {
				require.Equal(t, uint64(4+i), e.Index)
				terms = append(terms, e.Term)
			}
			require.Equal(t, tt.wterms, terms)

			// The same picture after a reopen.
			s2 := openStorage(t, db)
			_, last2 := bounds(t, s2)
			require.Equal(t, last, last2)
			got2, err := s2.Entries(4, last2+1, math.MaxUint64)
			require.NoError(t, err)
			require.Equal(t, got, got2)
		})
	}
}

// TestRawNodeOverStorage drives a single-voter etcd RawNode over Storage,
// persisting each Ready the way the store does, and checks it commits.
func TestRawNodeOverStorage(t *testing.T) {
	db, _ := openDB(t)
	s, err := raftlog.Open(db, tabletID, raftpb.ConfState{Voters: []uint64{1}}, nil)
	require.NoError(t, err)
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s,
		MaxSizePerMsg: math.MaxUint64, MaxInflightMsgs: 256,
	})
	require.NoError(t, err)
	require.NoError(t, rn.Campaign())

	var applied [][]byte
	proposed := false
	for i := 0; i < 50 && len(applied) < 3; i++ {
		if !rn.HasReady() {
			if rn.Status().RaftState == raft.StateLeader && !proposed {
				for _, p := range []string{"a", "b", "c"} {
					require.NoError(t, rn.Propose([]byte(p)))
				}
				proposed = true
				continue
			}
			rn.Tick()
			continue
		}
		rd := rn.Ready()
		appendEnts(t, db, s, rd.HardState, rd.Entries)
		for _, e := range rd.CommittedEntries {
			if e.Type == raftpb.EntryNormal && len(e.Data) > 0 {
				applied = append(applied, e.Data)
			}
		}
		rn.Advance(rd)
	}
	require.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, applied)

	// Reopening and restarting raft keeps the log.
	s2, err := raftlog.Open(db, tabletID, raftpb.ConfState{Voters: []uint64{1}}, nil)
	require.NoError(t, err)
	hs := s2.HardState()
	_, last := bounds(t, s2)
	require.Equal(t, hs.Commit, last)
	_, err = raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s2, MaxInflightMsgs: 256})
	require.NoError(t, err)
}

// Bounds may be read concurrently with the raft worker's writes.
func TestConcurrentBoundsReads(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = s.FirstIndex()
			_, _ = s.LastIndex()
			_ = s.Truncated()
			_ = s.LogSize()
			_ = s.HardState()
			_, _, _ = s.InitialState()
		}
	}()
	for i := uint64(1); i <= 20; i++ {
		appendEnts(t, db, s, raftpb.HardState{Term: 1, Commit: i}, mkEnts(i, 1))
		if i%5 == 0 {
			truncate(t, db, s, i-2)
		}
	}
	close(stop)
	<-done
	first, last := bounds(t, s)
	require.Equal(t, uint64(19), first)
	require.Equal(t, uint64(20), last)
}
