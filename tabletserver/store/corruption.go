package store

// Corruption: Pebble checks a checksum on every block it reads (SST
// blocks, WAL records) and fails the read with an error marked
// pebble.ErrCorruption. Such an error means this replica's copy is bad,
// not that the process must stop: the replica is marked bad (it serves no
// more reads or writes and hands leadership away), its leader marks it bad
// through raft, and PD replaces it from the healthy replicas while the
// store keeps serving its other tablets. Other engine errors keep their
// own handling (worker.go's fatal).

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/raftlog"
)

// isCorruption reports whether err says stored data failed its checksum.
// Pebble marks such errors with cockroachdb/errors marks, which the
// standard errors.Is does not see.
func isCorruption(err error) bool {
	return err != nil && (pebble.IsCorruptionError(err) || errors.Is(err, pebble.ErrCorruption))
}

// markReplicaBad takes a replica whose data is corrupt out of service: it
// refuses client requests from now on, hands leadership away, and the
// store's report loop (reportBadReplicas) has its leader mark it bad
// through raft, so PD replaces it. Safe from any goroutine; idempotent.
func (s *Store) markReplicaBad(r *replica, err error) {
	r.mu.Lock()
	first := r.mu.corrupt == ""
	if first {
		r.mu.corrupt = err.Error()
	}
	r.mu.Unlock()
	if !first {
		return
	}
	r.log.Error("corrupt data: replica stops serving and will be rebuilt from its peers", "err", err)
	s.event(r.tabletID, "replica %d found corrupt data and stopped serving: %v", r.replicaID, err)
	r.enqueueAdmin(func(r *replica) { r.shedLeadership() })
}

// checkCorruption marks r bad if err is a corruption error and returns a
// retryable error in its place, so no caller serves from a corrupt
// replica; other errors pass through.
func (s *Store) checkCorruption(r *replica, err error) error {
	if r == nil || !isCorruption(err) {
		return err
	}
	s.markReplicaBad(r, err)
	return r.refuseIfBad()
}

// reportBadReplicas asks the leader of every tablet whose replica here is
// corrupt to mark it bad, until the verdict has been applied (it then
// shows in the replica's applied state). A leader proposes it itself.
func (s *Store) reportBadReplicas(ctx context.Context) {
	for _, r := range s.replicaList() {
		r.mu.Lock()
		corrupt, marked, destroyed := r.mu.corrupt, r.mu.markedBad, r.mu.destroyed
		leader, isLeader, desc := r.mu.peers[r.mu.leaderID], r.mu.isLeader, r.mu.desc
		r.mu.Unlock()
		if corrupt == "" || marked || destroyed || desc == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, s.opts.ProposalTimeout)
		var err error
		switch {
		case isLeader:
			_, err = r.propose(cctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_MarkBadReplicas{MarkBadReplicas: &raftcmdpb.MarkBadReplicasCommand{
				ReplicaIds: []uint64{r.replicaID}, Reason: fmt.Sprintf("store %d: %s", s.opts.StoreID, corrupt)}}})
		case leader != 0 && leader != s.opts.StoreID:
			var cl transportpb.RaftTransportClient
			if cl, err = s.transport.Client(leader); err == nil {
				_, err = cl.ReportBadReplica(cctx, &transportpb.ReportBadReplicaRequest{TabletId: r.tabletID, ReplicaId: r.replicaID, FromStore: s.opts.StoreID, Reason: corrupt})
			}
		default:
			err = fmt.Errorf("no leader known")
		}
		cancel()
		if err != nil {
			r.log.Warn("could not report the corrupt replica to its leader yet", "err", err)
		}
	}
}

// verifySST reads back every block of an SST this store just wrote (a
// received snapshot) and checks its checksum, so that a byte the disk
// flipped between the verified stream and the file is caught before the
// file is ingested and served. Snapshots are rare; the read costs one
// pass over a file the page cache most likely still holds.
func (s *Store) verifySST(path string) error {
	f, err := s.fs.Open(path)
	if err != nil {
		return err
	}
	readable, err := sstable.NewSimpleReadable(f)
	if err != nil {
		f.Close()
		return err
	}
	rd, err := sstable.NewReader(context.Background(), readable, sstable.ReaderOptions{})
	if err != nil {
		readable.Close()
		return err
	}
	defer rd.Close()
	return rd.ValidateBlockChecksums()
}

// onDataCorruption is Pebble's DataCorruption event: it replaces Pebble's
// default, which stops the process. The read that hit the corrupt file
// fails with a corruption error, which marks the replica it was for bad
// (checkCorruption, the apply path, the checksum workers); here it is
// only logged and counted. A compaction that hits it fails and is retried
// by Pebble; once the bad replicas are destroyed, range deletions cover
// the damaged data.
func (s *Store) onDataCorruption(info pebble.DataCorruptionInfo) {
	s.checks.metrics.corruptions.Inc()
	s.log.Error("on-disk corruption detected by a checksum", "path", info.Path, "bounds", info.Bounds.String(), "err", info.Details)
}

// DataSubdirs are the directories under Options.Dir that hold a store's
// state: the engine, staged ingest files and received snapshots. A node
// retiring a corrupt store moves them aside (tabletserver/node).
var DataSubdirs = []string{"engine", "ingest", "snapshots"}

// Dir returns the store's data directory (the engine is in Dir/engine).
func (s *Store) Dir() string { return s.opts.Dir }

// checkLogIntact refuses a raft log that ends before its own commit index:
// entries this store acknowledged are gone (a WAL whose tail Pebble could
// not read back). raft would panic on it; the store refuses to open
// instead, with a corruption error that says what was lost.
func checkLogIntact(tabletID uint64, st *raftlog.Storage) error {
	last, err := st.LastIndex()
	if err != nil {
		return err
	}
	if hs := st.HardState(); hs.Commit > last {
		return fmt.Errorf("store: tablet %d: the raft log ends at %d but %d entries were committed here: the write-ahead log lost acknowledged entries (%w); this store's copy cannot be trusted: rebuild it (docs/reliability.md)", tabletID, last, hs.Commit, pebble.ErrCorruption)
	}
	return nil
}

// lostAcked reports a heartbeat whose commit index lies past the end of
// this replica's log. A leader sends at most the index this replica
// acknowledged as durable, so the log lost entries it had: its WAL lost a
// tail that Pebble took for a torn write (a flipped byte in the last
// records of the newest WAL reads as one), and checkLogIntact could not
// see it because the hard state went with them. raft would panic, and the
// store would crash at every restart; the replica is marked bad instead
// (it serves nothing and is rebuilt from its peers) and the heartbeat is
// dropped. A heartbeat of an older term is left to raft, which ignores
// it.
func (r *replica) lostAcked(m *raftpb.Message) bool {
	if m.Type != raftpb.MsgHeartbeat || m.Term < r.raw.BasicStatus().Term {
		return false
	}
	last, err := r.storage.LastIndex()
	if err != nil || m.Commit <= last {
		return false
	}
	r.s.lostWAL.Store(true)
	r.s.markReplicaBad(r, fmt.Errorf("store: tablet %d: the leader says %d entries are committed here but the raft log ends at %d: the write-ahead log lost acknowledged entries (%w)", r.tabletID, m.Commit, last, pebble.ErrCorruption))
	return true
}

// LostAcknowledged reports whether a replica here found that the store's
// WAL lost entries it had acknowledged (lostAcked). The WAL is shared by
// every replica, so the whole store is suspect: the node retires it.
func (s *Store) LostAcknowledged() bool { return s.lostWAL.Load() }

// IsCorruption reports whether err (from Open, say) says stored data
// failed its checksum or was lost.
func IsCorruption(err error) bool { return isCorruption(err) }
