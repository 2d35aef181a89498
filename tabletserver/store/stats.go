package store

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// loadStats counts a replica's traffic between two reports and samples the
// row keys it serves, for load-based splitting. Cheap on the hot path:
// atomics, and a lock for one request in sampleEvery.
type loadStats struct {
	reads, writes         atomic.Uint64
	readBytes, writeBytes atomic.Uint64
	requests              atomic.Uint64
	mu                    sync.Mutex
	samples               [][]byte // encoded row keys, ring buffer
	// unflushed counts bytes applied to the tablet since the engine's last
	// memtable flush: the part of its size that EstimateDiskUsage (SSTs
	// only) cannot see yet.
	unflushed      atomic.Uint64
	unflushedEpoch atomic.Uint64
	next           int
	lastReport     time.Time
}

const (
	sampleEvery = 8
	maxSamples  = 64
)

func (l *loadStats) record(write bool, rowKey []byte, n int) {
	if write {
		l.writes.Add(1)
		l.writeBytes.Add(uint64(n))
	} else {
		l.reads.Add(1)
		l.readBytes.Add(uint64(n))
	}
	if l.requests.Add(1)%sampleEvery != 0 || rowKey == nil {
		return
	}
	l.mu.Lock()
	if len(l.samples) < maxSamples {
		l.samples = append(l.samples, bytes.Clone(rowKey))
	} else {
		l.samples[l.next] = bytes.Clone(rowKey)
		l.next = (l.next + 1) % maxSamples
	}
	l.mu.Unlock()
}

// take returns per-second rates since the last call and a key that splits
// the sampled load in half (nil if none strictly inside desc).
func (l *loadStats) take(desc *metapb.TabletDescriptor, now time.Time) *pdpb.TabletStats {
	l.mu.Lock()
	elapsed := now.Sub(l.lastReport).Seconds()
	first := l.lastReport.IsZero()
	l.lastReport = now
	samples := l.samples
	l.samples, l.next = nil, 0
	l.mu.Unlock()
	st := &pdpb.TabletStats{}
	r, w := l.reads.Swap(0), l.writes.Swap(0)
	rb, wb := l.readBytes.Swap(0), l.writeBytes.Swap(0)
	if first || elapsed <= 0 {
		return st
	}
	st.ReadQps, st.WriteQps = float64(r)/elapsed, float64(w)/elapsed
	st.ReadBytesPerSec, st.WriteBytesPerSec = float64(rb)/elapsed, float64(wb)/elapsed
	if len(samples) >= 8 {
		sort.Slice(samples, func(i, j int) bool { return bytes.Compare(samples[i], samples[j]) < 0 })
		mid := samples[len(samples)/2]
		if containsKey(desc, mid) && !bytes.Equal(mid, desc.StartKey) {
			st.LoadSplitKey = mid
		}
	}
	return st
}

func (r *replica) record(write bool, tableID uint64, row []byte, n int) {
	r.load.record(write, keys.RowKey(tableID, row), n)
}

// LeaderReports describes every tablet this store leads, for the placement
// driver's tablet heartbeat.
func (s *Store) LeaderReports() []*pdpb.TabletReport {
	reps := s.replicaList()
	now := s.opts.Clock.Now()
	var out []*pdpb.TabletReport
	for _, r := range reps {
		r.mu.Lock()
		desc, lead, destroyed, term := r.mu.desc, r.mu.isLeader, r.mu.destroyed, r.mu.term
		r.mu.Unlock()
		if desc == nil || !lead || destroyed {
			continue
		}
		st := r.load.take(desc, now)
		lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
		if size, err := s.db.EstimateDiskUsage(lo, hi); err == nil {
			st.ApproximateSize = size
		}
		st.ApproximateSize += r.load.unflushedBytes(s.flushEpoch.Load())
		bad, inconsistent := r.healthReport(desc)
		// The term lets PD ignore this report if a newer leader already
		// reported (a quiesced old leader may not know it was deposed).
		out = append(out, &pdpb.TabletReport{Tablet: desc, LeaderStoreId: s.opts.StoreID, Term: term, Stats: st, BadReplicaIds: bad, Inconsistent: inconsistent})
	}
	return out
}

// StoreStats describes the store for the placement driver.
func (s *Store) StoreStats() *pdpb.StoreStats {
	st := &pdpb.StoreStats{}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.opts.Dir, &fs); err == nil {
		st.CapacityBytes = fs.Blocks * uint64(fs.Bsize)
		st.AvailableBytes = fs.Bavail * uint64(fs.Bsize)
	}
	st.DiskFull = s.disk.full.Load()
	if !s.disk.failed.Load() { // a failed engine may hang
		st.UsedBytes = s.db.Metrics().DiskSpaceUsage()
	}
	s.mu.RLock()
	for _, r := range s.mu.replicas {
		r.mu.Lock()
		if r.mu.desc != nil {
			st.TabletCount++
			if r.mu.isLeader {
				st.LeaderCount++
			}
		}
		r.mu.Unlock()
	}
	s.mu.RUnlock()
	return st
}

// MiddleKey returns a row key near the middle of the tablet's data, or nil
// when the tablet holds fewer than two rows.
func (s *Store) MiddleKey(tabletID uint64) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return nil, err
	}
	snap, desc, err := s.pinnedRead(r, nil, 0)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
	total, err := s.db.EstimateDiskUsage(lo, hi)
	if err != nil {
		return nil, err
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	// Walk keys until half the (estimated) bytes are behind us. For an
	// estimate of 0 (all in the memtable) count key/value bytes instead:
	// first pass totals them.
	// The walk holds off Close (enter) and has no context: it stops
	// when the store shuts down.
	check := s.newScanCheck(context.Background())
	if total == 0 {
		for it.First(); it.Valid(); it.Next() {
			if err := check.err(); err != nil {
				return nil, err
			}
			total += uint64(len(it.Key()) + len(it.Value()))
		}
	}
	var seen uint64
	for it.First(); it.Valid(); it.Next() {
		if err := check.err(); err != nil {
			return nil, err
		}
		seen += uint64(len(it.Key()) + len(it.Value()))
		if seen < total/2 {
			continue
		}
		ck, err := keys.StripDataKey(it.Key())
		if err != nil {
			return nil, err
		}
		row, err := keys.RowPrefix(ck)
		if err != nil {
			return nil, err
		}
		if bytes.Compare(row, desc.StartKey) > 0 {
			return bytes.Clone(row), nil
		}
	}
	return nil, it.Error()
}

// DropTable deletes a dropped table's data in every tablet this store
// leads (through raft, so every replica deletes it) and forgets its schema.
func (s *Store) DropTable(ctx context.Context, tableID uint64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	start := keys.TablePrefix(tableID)
	end := keys.PrefixEnd(start)
	reps := s.replicaList()
	for _, r := range reps {
		r.mu.Lock()
		desc, lead := r.mu.desc, r.mu.isLeader
		r.mu.Unlock()
		if desc == nil || !lead || !rangesOverlap(desc.StartKey, desc.EndKey, start, end) {
			continue
		}
		if _, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_ClearRange{ClearRange: &raftcmdpb.ClearRangeCommand{Start: start, End: end}}}); err != nil {
			return err
		}
	}
	return nil
}

// RemoveTableSchema forgets a dropped table: requests for it then fail
// with TableNotFound.
func (s *Store) RemoveTableSchema(tableID uint64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.mu.schemas[tableID]; !ok {
		return nil
	}
	if err := s.guardEngine(func() error { return s.db.Delete(keys.TableSchemaKey(tableID), pebble.Sync) }); err != nil {
		return err
	}
	delete(s.mu.schemas, tableID)
	return nil
}

// addUnflushed counts bytes applied since the flush of epoch e.
func (l *loadStats) addUnflushed(e, n uint64) {
	if l.unflushedEpoch.Load() != e {
		l.unflushed.Store(0)
		l.unflushedEpoch.Store(e)
	}
	l.unflushed.Add(n)
}

// unflushedBytes returns the bytes applied since the flush of epoch e.
func (l *loadStats) unflushedBytes(e uint64) uint64 {
	if l.unflushedEpoch.Load() != e {
		return 0
	}
	return l.unflushed.Load()
}

// onFlush is Pebble's FlushEnd listener. Pebble calls it with its own
// locks held, so it must not take any lock (that would deadlock with a
// goroutine holding s.mu while reading the engine): it only starts a new
// flush epoch, and each tablet's unflushed count resets lazily.
func (s *Store) onFlush() { s.flushEpoch.Add(1) }
