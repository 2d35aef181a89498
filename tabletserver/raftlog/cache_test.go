package raftlog_test

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/raftlog"
)

// wipeLog deletes the whole raft log from Pebble behind the Storage's back:
// whatever Storage still returns afterwards came from its cache.
func wipeLog(t *testing.T, db *pebble.DB) {
	t.Helper()
	require.NoError(t, db.DeleteRange(keys.RaftLogPrefix(tabletID), keys.PrefixEnd(keys.RaftLogPrefix(tabletID)), pebble.Sync))
}

func requireTerm(t *testing.T, s *raftlog.Storage, i, want uint64) {
	t.Helper()
	term, err := s.Term(i)
	require.NoError(t, err, "term of %d", i)
	require.Equal(t, want, term, "term of %d", i)
}

func TestUnappliedEntriesServedFromCache(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2) // 1..10
	appendEnts(t, db, s, raftpb.HardState{Term: 2, Commit: 10}, ents[:4])
	appendEnts(t, db, s, raftpb.HardState{}, ents[4:])
	wipeLog(t, db)

	got, err := s.Entries(1, 11, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents, got)
	got, err = s.Entries(8, 10, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[7:9], got)
	requireTerm(t, s, 3, 1)
	requireTerm(t, s, 9, 2)

	// The caller owns the slice: appending to it leaves the cache alone.
	got, err = s.Entries(2, 3, math.MaxUint64)
	require.NoError(t, err)
	_ = append(got, raftpb.Entry{Index: 99, Term: 99})
	got, err = s.Entries(2, 4, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[1:3], got)
}

func TestAppliedEntriesLeaveCache(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) // 1..10
	appendEnts(t, db, s, raftpb.HardState{Term: 1, Commit: 10}, ents)
	s.Applied(6)
	wipeLog(t, db)

	got, err := s.Entries(7, 11, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[6:], got)
	// Entry 6 is applied: it comes from Pebble, where it is gone.
	_, err = s.Entries(6, 11, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted)
	_, err = s.Term(6)
	require.ErrorIs(t, err, raft.ErrCompacted)

	// Once everything is applied the cache holds nothing.
	s.Applied(10)
	first, last := s.CachedRange()
	require.Zero(t, first+last)
	_, err = s.Entries(9, 10, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted)
}

func TestCacheConflictingTail(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, mkEnts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)) // 1..10
	repl := mkEnts(6, 2, 2, 2)                                                               // 6..8, new term
	appendEnts(t, db, s, raftpb.HardState{Term: 2}, repl)
	want := append(mkEnts(1, 1, 1, 1, 1, 1), repl...)

	// Pebble (a fresh Storage) and the cache agree, also once Pebble is gone.
	fresh, err := openStorage(t, db).Entries(1, 9, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, want, fresh)
	wipeLog(t, db)
	got, err := s.Entries(1, 9, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, want, got)
	for _, e := range want {
		requireTerm(t, s, e.Index, e.Term)
	}
	_, err = s.Entries(1, 11, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrUnavailable)
	_, err = s.Term(9)
	require.ErrorIs(t, err, raft.ErrUnavailable)

	// Replacing from below the cache's first entry restarts it at the append.
	s.Applied(7)
	appendEnts(t, db, s, raftpb.HardState{Term: 3}, mkEnts(5, 3, 3))
	first, last := s.CachedRange()
	require.Equal(t, []uint64{5, 6}, []uint64{first, last})
	got, err = s.Entries(5, 7, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, mkEnts(5, 3, 3), got)
}

func TestCacheTruncationAndSnapshot(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) // 1..10
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, ents)

	truncate(t, db, s, 4)
	first, last := s.CachedRange()
	require.Equal(t, []uint64{5, 10}, []uint64{first, last})
	wipeLog(t, db)
	got, err := s.Entries(5, 11, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[4:], got)

	// A snapshot replaces the log: nothing cached survives.
	snapTr := raftlog.Truncated{Index: 8, Term: 1}
	b := db.NewBatch()
	v, err := proto.Marshal(&raftcmdpb.TruncatedState{Index: snapTr.Index, Term: snapTr.Term})
	require.NoError(t, err)
	require.NoError(t, b.Set(keys.RaftTruncatedStateKey(tabletID), v, nil))
	require.NoError(t, b.Commit(pebble.Sync))
	b.Close()
	s.SetTruncated(snapTr, true)
	first, last = s.CachedRange()
	require.Zero(t, first+last)

	// The log continues after the snapshot and is cached again.
	appendEnts(t, db, s, raftpb.HardState{Term: 2}, mkEnts(9, 2, 2))
	wipeLog(t, db)
	got, err = s.Entries(9, 11, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, mkEnts(9, 2, 2), got)

	// Truncation past the last index empties it.
	s.SetTruncated(raftlog.Truncated{Index: 12, Term: 2}, false)
	first, last = s.CachedRange()
	require.Zero(t, first+last)
}

// The cache applies maxSize exactly as the Pebble path does.
func TestCacheMaxSize(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 2, 3, 4, 5, 6)
	ents[2].Data = make([]byte, 100) // uneven sizes
	appendEnts(t, db, s, raftpb.HardState{Term: 6}, ents)
	pebbleOnly := openStorage(t, db)

	// Every range, with maxSize at, just under and just over each prefix's
	// size, and at the extremes.
	type query struct{ lo, hi, max uint64 }
	var queries []query
	for lo := uint64(1); lo <= 6; lo++ {
		for hi := lo + 1; hi <= 7; hi++ {
			maxes := []uint64{0, math.MaxUint64}
			sum := uint64(0)
			for _, e := range ents[lo-1 : hi-1] {
				sum += uint64(e.Size())
				maxes = append(maxes, sum-1, sum, sum+1)
			}
			for _, max := range maxes {
				queries = append(queries, query{lo, hi, max})
			}
		}
	}
	var want [][]raftpb.Entry
	for _, q := range queries {
		w, err := pebbleOnly.Entries(q.lo, q.hi, q.max)
		require.NoError(t, err)
		want = append(want, w)
	}
	// The same answers with Pebble gone: they came from the cache.
	wipeLog(t, db)
	for i, q := range queries {
		got, err := s.Entries(q.lo, q.hi, q.max)
		require.NoError(t, err)
		require.Equal(t, want[i], got, "[%d,%d) max %d", q.lo, q.hi, q.max)
	}
}

func TestCacheCap(t *testing.T) {
	db, _ := openDB(t)
	s := openStorage(t, db)
	ents := mkEnts(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) // 1..10, equal sizes
	s.SetCacheLimit(uint64(3 * ents[0].Size()))
	appendEnts(t, db, s, raftpb.HardState{Term: 1}, ents[:5])
	appendEnts(t, db, s, raftpb.HardState{}, ents[5:])
	first, last := s.CachedRange()
	require.Equal(t, []uint64{8, 10}, []uint64{first, last}, "the newest that fit")

	wipeLog(t, db)
	got, err := s.Entries(8, 11, math.MaxUint64)
	require.NoError(t, err)
	require.Equal(t, ents[7:], got)
	_, err = s.Entries(7, 11, math.MaxUint64)
	require.ErrorIs(t, err, raft.ErrCompacted, "past the cap: Pebble")

	// An entry larger than the cap alone leaves nothing cached.
	big := mkEnts(11, 1)
	big[0].Data = make([]byte, 4*ents[0].Size())
	appendEnts(t, db, s, raftpb.HardState{}, big)
	first, last = s.CachedRange()
	require.Zero(t, first+last)
}

// expectEntries is the Pebble path's answer computed from a model log.
func expectEntries(log []raftpb.Entry, lo, hi, maxSize uint64) []raftpb.Entry {
	var out []raftpb.Entry
	size := uint64(0)
	for _, e := range log {
		if e.Index < lo || e.Index >= hi {
			continue
		}
		size += uint64(e.Size())
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
	}
	return out
}

// TestCacheRandomized drives Storage through random appends, conflicting
// appends, truncations, snapshots and applied reports, with a small cap, and
// checks every read against a model and against a fresh Storage (Pebble only).
func TestCacheRandomized(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	for round := 0; round < 20; round++ {
		db, _ := openDB(t)
		s := openStorage(t, db)
		s.SetCacheLimit(uint64(rng.Intn(600)))
		var (
			log     []raftpb.Entry // the model: entries after tr
			tr      raftlog.Truncated
			applied uint64
			term    uint64 = 1
		)
		last := func() uint64 { return tr.Index + uint64(len(log)) }
		for step := 0; step < 60; step++ {
			switch op := rng.Intn(10); {
			case op < 5: // append, possibly replacing a tail past applied
				at := applied + 1 + uint64(rng.Intn(int(last()-applied)+1))
				if at <= last() {
					term++
				}
				n := 1 + rng.Intn(5)
				ents := make([]raftpb.Entry, n)
				for i := range ents {
					ents[i] = raftpb.Entry{Index: at + uint64(i), Term: term, Data: make([]byte, rng.Intn(80))}
					rng.Read(ents[i].Data)
				}
				appendEnts(t, db, s, raftpb.HardState{Term: term}, ents)
				log = append(log[:at-tr.Index-1], ents...)
			case op < 8: // apply some
				applied += uint64(rng.Intn(int(last()-applied) + 1))
				s.Applied(applied)
			case op < 9: // truncate applied entries
				if applied > tr.Index {
					idx := tr.Index + 1 + uint64(rng.Intn(int(applied-tr.Index)))
					log = log[idx-tr.Index:]
					tr = truncate(t, db, s, idx)
				}
			default: // snapshot at or past applied
				snap := raftlog.Truncated{Index: applied + uint64(rng.Intn(int(last()-applied)+3)), Term: term}
				b := db.NewBatch()
				require.NoError(t, b.DeleteRange(keys.RaftLogPrefix(tabletID), keys.PrefixEnd(keys.RaftLogPrefix(tabletID)), nil))
				v, err := proto.Marshal(&raftcmdpb.TruncatedState{Index: snap.Index, Term: snap.Term})
				require.NoError(t, err)
				require.NoError(t, b.Set(keys.RaftTruncatedStateKey(tabletID), v, nil))
				require.NoError(t, b.Commit(pebble.Sync))
				b.Close()
				s.SetTruncated(snap, true)
				tr, log, applied = snap, nil, snap.Index
			}
			checkAgainstModel(t, db, s, tr, log, rng)
		}
	}
}

func checkAgainstModel(t *testing.T, db *pebble.DB, s *raftlog.Storage, tr raftlog.Truncated, log []raftpb.Entry, rng *rand.Rand) {
	t.Helper()
	fresh := openStorage(t, db)
	first, last := bounds(t, s)
	require.Equal(t, tr.Index+1, first)
	require.Equal(t, tr.Index+uint64(len(log)), last)
	requireTerm(t, s, tr.Index, tr.Term)
	for _, e := range log {
		requireTerm(t, s, e.Index, e.Term)
		requireTerm(t, fresh, e.Index, e.Term)
	}
	if len(log) == 0 {
		return
	}
	for k := 0; k < 10; k++ {
		lo := first + uint64(rng.Intn(len(log)))
		hi := lo + 1 + uint64(rng.Intn(int(last-lo)+1))
		max := uint64(math.MaxUint64)
		if rng.Intn(2) == 0 {
			max = uint64(rng.Intn(300))
		}
		want := expectEntries(log, lo, hi, max)
		got, err := s.Entries(lo, hi, max)
		require.NoError(t, err)
		require.Equal(t, want, got, "[%d,%d) max %d", lo, hi, max)
		got, err = fresh.Entries(lo, hi, max)
		require.NoError(t, err)
		require.Equal(t, want, got, "pebble [%d,%d) max %d", lo, hi, max)
	}
}

// BenchmarkEntriesUnapplied reads the last few entries, as raft does when
// they commit, with them cached (unapplied) and not (applied: Pebble).
func BenchmarkEntriesUnapplied(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{})
			require.NoError(b, err)
			defer db.Close()
			s, err := raftlog.Open(db, tabletID, raftpb.ConfState{Voters: []uint64{1}}, nil)
			require.NoError(b, err)
			for i := uint64(0); i < 100; i++ {
				ents := make([]raftpb.Entry, 10)
				for j := range ents {
					ents[j] = raftpb.Entry{Index: i*10 + uint64(j) + 1, Term: 1, Data: make([]byte, 256)}
				}
				batch := db.NewBatch()
				require.NoError(b, s.AppendToBatch(batch, raftpb.HardState{Term: 1}, ents))
				require.NoError(b, batch.Commit(pebble.NoSync))
				batch.Close()
				s.Appended(raftpb.HardState{Term: 1}, ents)
			}
			if !cached {
				s.Applied(1000)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ents, err := s.Entries(997, 1001, math.MaxUint64)
				if err != nil || len(ents) != 4 {
					b.Fatal(err, len(ents))
				}
			}
		})
	}
}
