package store

import (
	"context"
	"fmt"
	"io"

	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/raftlog"
)

// makeSnapshot is the replica's raft.Storage Snapshot: it pins an engine
// snapshot and describes it; the data is streamed when raft sends MsgSnap.
// Worker only (raft calls it while stepping).
func (r *replica) makeSnapshot() (raftpb.Snapshot, error) {
	snap := r.s.db.NewSnapshot()
	var applied raftcmdpb.AppliedState
	var desc metapb.TabletDescriptor
	if err := getProto(snap, keys.AppliedStateKey(r.tabletID), &applied); err != nil {
		snap.Close()
		return raftpb.Snapshot{}, err
	}
	if err := getProto(snap, keys.DescriptorKey(r.tabletID), &desc); err != nil || desc.TabletId == 0 {
		snap.Close()
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	id := r.s.nextID.Add(1)
	data, err := proto.Marshal(&raftcmdpb.SnapshotData{SnapshotId: id, Applied: &applied, Tablet: &desc})
	if err != nil {
		snap.Close()
		return raftpb.Snapshot{}, err
	}
	r.s.snapshots.Lock()
	r.s.snapshots.outgoing[id] = snap
	r.s.snapshots.Unlock()
	return raftpb.Snapshot{
		Data: data,
		Metadata: raftpb.SnapshotMetadata{
			Index:     applied.Index,
			Term:      applied.Term,
			ConfState: confStateFromDesc(&desc),
		},
	}, nil
}

// sendSnapshotAsync streams a snapshot raft decided to send, then reports
// the outcome to raft.
func (s *Store) sendSnapshotAsync(r *replica, m raftpb.Message, toStore uint64) {
	var sd raftcmdpb.SnapshotData
	if err := proto.Unmarshal(m.Snapshot.Data, &sd); err != nil {
		r.log.Error("bad outgoing snapshot", "err", err)
		return
	}
	s.snapshots.Lock()
	snap := s.snapshots.outgoing[sd.SnapshotId]
	delete(s.snapshots.outgoing, sd.SnapshotId)
	s.snapshots.Unlock()
	if snap == nil {
		return
	}
	msg, err := m.Marshal()
	if err != nil {
		snap.Close()
		return
	}
	header := &transportpb.SnapshotHeader{TabletId: r.tabletID, FromStore: s.opts.StoreID, ToStore: toStore, RaftMessage: msg, Tablet: sd.Tablet}
	err = s.stopper.RunAsyncTask(context.Background(), "store.send-snapshot", func(ctx context.Context) {
		defer snap.Close()
		select {
		case s.snapshotSem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-s.snapshotSem }()
		lo, hi := keys.DataSpan(sd.Tablet.StartKey, sd.Tablet.EndKey)
		sent := 0
		err := s.transport.SendSnapshot(ctx, toStore, header, func(emit func(k, v []byte) error) error {
			it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
			if err != nil {
				return err
			}
			defer it.Close()
			for it.First(); it.Valid(); it.Next() {
				if err := emit(it.Key(), it.Value()); err != nil {
					return err
				}
				sent += len(it.Key()) + len(it.Value())
			}
			// A corrupt block must not be streamed: the sender's copy is
			// bad, and it stops serving (corruption.go).
			return s.checkCorruption(r, it.Error())
		})
		s.metrics.snapSentBytes.Add(float64(sent))
		status := raft.SnapshotFinish
		if err != nil {
			status = raft.SnapshotFailure
			r.log.Warn("snapshot send failed", "to_store", toStore, "index", m.Snapshot.Metadata.Index, "err", err)
		} else {
			s.metrics.snapshotsSent.Inc()
			r.log.Info("snapshot sent", "to_store", toStore, "index", m.Snapshot.Metadata.Index)
		}
		r.enqueueAdmin(func(r *replica) { r.raw.ReportSnapshot(m.To, status) })
	})
	if err != nil { // the store is closing
		snap.Close()
	}
}

func (r *replica) enqueueAdmin(f func(*replica)) {
	r.mu.Lock()
	if r.mu.destroyed {
		r.mu.Unlock()
		return
	}
	r.mu.inbox.admin = append(r.mu.inbox.admin, func(r *replica) {
		if r.raw != nil {
			f(r)
		}
	})
	r.mu.Unlock()
	r.s.enqueue(r.tabletID)
}

// receiveSnapshot writes an inbound snapshot into an SST (clearing the
// tablet's range in the same file) and hands the raft message to the
// replica; the worker ingests the SST when raft applies the snapshot.
func (s *Store) receiveSnapshot(ctx context.Context, h *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
	var m raftpb.Message
	if err := m.Unmarshal(h.RaftMessage); err != nil || m.Type != raftpb.MsgSnap || m.Snapshot == nil {
		return errs.InvalidArgument("snapshot header has no MsgSnap")
	}
	var sd raftcmdpb.SnapshotData
	if err := proto.Unmarshal(m.Snapshot.Data, &sd); err != nil || sd.Tablet == nil || sd.Applied == nil {
		return errs.InvalidArgument("snapshot carries no tablet state")
	}
	desc := sd.Tablet
	if err := s.disk.refuseWrite(desc.TabletId); err != nil {
		// The sender retries later; PD does not place replicas here.
		return err
	}
	if desc.TabletId != h.TabletId {
		return errs.InvalidArgument("snapshot for tablet %d names tablet %d", h.TabletId, desc.TabletId)
	}
	mine := replicaOnStore(desc, s.opts.StoreID)
	if mine == nil || mine.ReplicaId != m.To {
		return errs.InvalidArgument("snapshot of tablet %d is not for a replica on store %d", desc.TabletId, s.opts.StoreID)
	}
	var tomb raftcmdpb.Tombstone
	if err := getProto(s.db, keys.TombstoneKey(desc.TabletId), &tomb); err != nil {
		return err
	}
	if tomb.NextReplicaId > m.To {
		return errs.TabletNotFound(desc.TabletId, s.opts.StoreID)
	}
	if err := s.makeRoomForSnapshot(ctx, desc); err != nil {
		return err
	}
	if r := s.getReplica(desc.TabletId); r != nil {
		r.mu.Lock()
		applied := r.mu.applied
		r.mu.Unlock()
		if applied >= m.Snapshot.Metadata.Index {
			return nil // stale; raft would ignore it
		}
	}
	path := filepath.Join(s.snapshotDir(), fmt.Sprintf("%d-%d-%d.sst", desc.TabletId, m.Snapshot.Metadata.Index, s.nextID.Add(1)))
	lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
	n, err := s.writeSST(path, func(w *sstable.Writer) (int, error) {
		if err := w.DeleteRange(lo, hi); err != nil {
			return 0, err
		}
		count := 0
		var prev []byte
		for {
			k, v, err := next()
			if err == io.EOF {
				return count, nil
			}
			if err != nil {
				return count, err
			}
			if string(k) < string(lo) || string(k) >= string(hi) || (prev != nil && string(k) <= string(prev)) {
				return count, errs.InvalidArgument("snapshot key %x is out of order or outside tablet %d", k, desc.TabletId)
			}
			prev = append(prev[:0], k...)
			if err := w.Set(k, v); err != nil {
				return count, err
			}
			count++
		}
	})
	if err == nil {
		if err = s.verifySST(path); err != nil {
			s.checks.metrics.corruptions.Inc()
			s.log.Error("received snapshot failed its checksums once written; refusing it (the sender retries)", "tablet", desc.TabletId, "err", err)
			err = status.Errorf(codes.DataLoss, "snapshot of tablet %d: written file is corrupt: %v", desc.TabletId, err)
		}
	}
	if err != nil {
		_ = s.fs.Remove(path)
		return err
	}
	r, _, err := s.getOrCreateReplica(desc.TabletId, m.To, nil)
	if err != nil {
		_ = s.fs.Remove(path)
		return err
	}
	r.mu.Lock()
	r.mu.peers[m.From] = h.FromStore
	r.mu.inbox.admin = append(r.mu.inbox.admin, func(r *replica) {
		if r.raw == nil {
			_ = r.s.fs.Remove(path)
			return
		}
		r.inboundSnapshot[m.Snapshot.Metadata.Index] = path
		_ = r.raw.Step(m)
	})
	r.mu.Unlock()
	s.enqueue(desc.TabletId)
	r.log.Info("snapshot received", "index", m.Snapshot.Metadata.Index, "keys", n)
	return nil
}

// writeSST creates an SST at path with fill and syncs it.
func (s *Store) writeSST(path string, fill func(w *sstable.Writer) (int, error)) (int, error) {
	f, err := s.createBulk(path, "snapshot")
	if err != nil {
		return 0, err
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), sstable.WriterOptions{
		TableFormat:  s.db.FormatMajorVersion().MaxTableFormat(),
		FilterPolicy: filterPolicy,
	})
	n, err := fill(w)
	if err != nil {
		_ = w.Close()
		return n, err
	}
	return n, w.Close()
}

// installSnapshot ingests a received snapshot's SST together with a second
// SST that carries the replica's new raft state, so data and state arrive
// in one atomic step, and then moves that state under the tablet's local
// keys (foldSnapshotState). Worker only.
//
// The state SST holds keys no earlier write used (SnapshotStateKey with a
// fresh install ID), not the tablet's local keys: those are in the
// memtable (the replica wrote its hard state when it first heard from the
// leader), and an ingest that overlaps the memtable makes Pebble flush it,
// a write burst per install on the disk the raft log syncs to.
func (r *replica) installSnapshot(snap raftpb.Snapshot, hs raftpb.HardState) error {
	r.awaitIngest()
	idx := snap.Metadata.Index
	dataPath, ok := r.inboundSnapshot[idx]
	if !ok {
		return fmt.Errorf("no received data for snapshot at index %d", idx)
	}
	for i, p := range r.inboundSnapshot {
		if i < idx {
			_ = r.s.fs.Remove(p)
		}
		delete(r.inboundSnapshot, i)
	}
	var sd raftcmdpb.SnapshotData
	if err := proto.Unmarshal(snap.Data, &sd); err != nil {
		return err
	}
	cur := r.storage.HardState()
	newHS := raftpb.HardState{Term: max(cur.Term, hs.Term), Vote: cur.Vote, Commit: idx}
	if hs.Term >= cur.Term {
		newHS.Vote = hs.Vote
	}
	install := r.s.nextID.Add(1)
	statePath := dataPath + ".state"
	_, err := r.s.writeSST(statePath, func(w *sstable.Writer) (int, error) {
		return 0, writeSnapshotState(w, r.tabletID, install, &sd, newHS, &raftcmdpb.TruncatedState{Index: idx, Term: snap.Metadata.Term})
	})
	if err != nil {
		return err
	}
	// The replica's own lock, not the store's applyMu: reads of other
	// tablets go on while Pebble ingests (a memtable flush if the data
	// overlaps what this store wrote lately: rare).
	// The worker installs, so no apply batch commits meanwhile.
	r.installMu.Lock()
	err = r.s.db.Ingest(context.Background(), []string{statePath, dataPath})
	if k := r.s.opts.Knobs; err == nil && k != nil && k.WhileInstallingSnapshot != nil {
		err = k.WhileInstallingSnapshot(r.tabletID)
	}
	if err == nil {
		err = r.s.foldSnapshotState(keys.SnapshotStateInstallPrefix(r.tabletID, install))
	}
	if err == nil {
		// The whole applied state, as written above: a snapshot of a tablet
		// frozen for a merge keeps it frozen here too.
		r.applied = raftcmdpb.AppliedState{Index: sd.Applied.Index, Term: sd.Applied.Term, MaxTimestamp: sd.Applied.MaxTimestamp,
			MergingInto: sd.Applied.MergingInto, MergeFreezeIndex: sd.Applied.MergeFreezeIndex, MergeTargetEpoch: sd.Applied.MergeTargetEpoch,
			ClosedTimestamp: sd.Applied.ClosedTimestamp, HistoryFloor: sd.Applied.HistoryFloor,
			BadReplicaIds: sd.Applied.BadReplicaIds, Inconsistent: sd.Applied.Inconsistent}
		r.setMerging(sd.Applied.MergingInto)
		r.storage.SetTruncated(raftlog.Truncated{Index: idx, Term: snap.Metadata.Term}, true)
		r.storage.SetHardState(newHS)
		r.storage.SetConfState(snap.Metadata.ConfState)
		r.appliedDesc = sd.Tablet
		r.mu.Lock()
		r.mu.desc = sd.Tablet
		r.mu.applied = idx
		r.mu.floor = r.applied.HistoryFloor
		r.setClosedLocked(r.applied.ClosedTimestamp) // releases reads waiting for it
		for _, rep := range sd.Tablet.Replicas {
			r.mu.peers[rep.ReplicaId] = rep.StoreId
		}
		r.mu.Unlock()
		r.s.observeTimestamp(sd.Applied.MaxTimestamp, r.tabletID)
		r.publishHealth()
	}
	r.installMu.Unlock()
	_ = r.s.fs.Remove(statePath)
	_ = r.s.fs.Remove(dataPath)
	if err == nil {
		r.unblockBySnapshot(idx)
		r.s.metrics.snapshotsApplied.Inc()
		r.log.Info("snapshot installed", "index", idx, "epoch", sd.Tablet.Epoch.String())
		r.s.event(r.tabletID, "replica %d installed a snapshot at index %d: %v", r.replicaID, idx, sd.Tablet)
	}
	return err
}

// maybeTruncateLog drops applied log entries. The leader keeps what its
// followers still need unless the log grew past RaftLogMaxEntries. Worker
// only.
func (r *replica) maybeTruncateLog() {
	size := r.storage.LogSize()
	if size <= r.s.opts.RaftLogTruncateEntries && r.ingestLogBytes < r.truncateAfterIngestBytes() {
		return
	}
	target := r.applied.Index
	knobs := r.s.opts.Knobs
	if size <= r.s.opts.RaftLogMaxEntries && (knobs == nil || !knobs.DisableTruncationMinMatch) {
		st := r.raw.Status()
		if st.RaftState == raft.StateLeader {
			for id, pr := range st.Progress {
				if id != r.replicaID && pr.Match < target {
					target = pr.Match
				}
			}
		}
	}
	if target <= r.storage.Truncated().Index {
		return
	}
	b := r.s.db.NewBatch()
	defer b.Close()
	tr, ok, err := r.storage.TruncateToBatch(b, target)
	if err != nil || !ok {
		return
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		r.s.fatal("truncate raft log", err, r)
	}
	r.storage.SetTruncated(tr, false)
	if target >= r.applied.Index {
		r.ingestLogBytes = 0
	}
}

// writeSnapshotState writes one install's raft state under its snapshot
// state keys, in key order: 'a' applied, 'd' descriptor, 'h' hard state,
// 't' truncated state.
func writeSnapshotState(w *sstable.Writer, tabletID, install uint64, sd *raftcmdpb.SnapshotData, hs raftpb.HardState, tr *raftcmdpb.TruncatedState) error {
	applied, err := proto.Marshal(sd.Applied)
	if err != nil {
		return err
	}
	desc, err := proto.Marshal(sd.Tablet)
	if err != nil {
		return err
	}
	hard, err := hs.Marshal()
	if err != nil {
		return err
	}
	truncated, err := proto.Marshal(tr)
	if err != nil {
		return err
	}
	for _, rec := range []struct {
		suffix byte
		v      []byte
	}{
		{keys.SuffixAppliedState, applied},
		{keys.SuffixDescriptor, desc},
		{keys.SuffixRaftHardState, hard},
		{keys.SuffixRaftTruncatedState, truncated},
	} {
		if err := w.Set(keys.SnapshotStateKey(tabletID, install, rec.suffix), rec.v); err != nil {
			return err
		}
	}
	return nil
}

// foldSnapshotState moves every snapshot state under prefix to its
// tablet's local keys, replacing all of that tablet's local state (its
// old raft log, hard state and tombstone included), and deletes it: one
// batch, after the install's ingest, and at Open for an install a crash
// interrupted in between.
//
// The batch is not synced. Until it is durable the ingested state is, and
// a crash before that folds it again at Open; the WAL is written in order,
// so no later write of the tablet survives a crash that loses the fold.
func (s *Store) foldSnapshotState(prefix []byte) error {
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer iter.Close()
	b := s.db.NewBatch()
	defer b.Close()
	var last [2]uint64 // tablet and install of the previous key
	for iter.First(); iter.Valid(); iter.Next() {
		tablet, install, local, err := keys.DecodeSnapshotStateKey(iter.Key())
		if err != nil {
			return err
		}
		if last != [2]uint64{tablet, install} {
			// A later install of the same tablet, if a crash left two,
			// replaces the earlier one: its range deletion comes later.
			local := keys.TabletLocalPrefix(tablet)
			if err := b.DeleteRange(local, keys.PrefixEnd(local), nil); err != nil {
				return err
			}
			last = [2]uint64{tablet, install}
		}
		if err := b.Set(local, iter.Value(), nil); err != nil {
			return err
		}
	}
	if err := iter.Error(); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := b.DeleteRange(prefix, keys.PrefixEnd(prefix), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}
