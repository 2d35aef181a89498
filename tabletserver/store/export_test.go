package store

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/proto/transportpb"
)

// Test hooks: they put into a tablet's log what the public API would
// refuse before proposing, so that the apply-time checks can be tested.

// ProposeFreezeForTest proposes a PrepareMerge of the tablet into target
// carrying epoch.
func (s *Store) ProposeFreezeForTest(ctx context.Context, tabletID, target uint64, epoch *metapb.Epoch) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: epoch, Cmd: &raftcmdpb.RaftCommand_PrepareMerge{PrepareMerge: &raftcmdpb.PrepareMergeCommand{TargetTabletId: target}}})
	return err
}

// ProposeSplitForTest proposes a split command carrying epoch as is.
func (s *Store) ProposeSplitForTest(ctx context.Context, tabletID uint64, epoch *metapb.Epoch, split *raftcmdpb.SplitCommand) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: epoch, Cmd: &raftcmdpb.RaftCommand_Split{Split: split}})
	return err
}

// ProposeAddLearnerForTest proposes adding a learner as if planned from
// the descriptor planned (whose epoch may be stale).
func (s *Store) ProposeAddLearnerForTest(ctx context.Context, tabletID, replicaID, storeID uint64, planned *metapb.TabletDescriptor) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	planned = proto.Clone(planned).(*metapb.TabletDescriptor)
	planned.Replicas = append(planned.Replicas, &metapb.Replica{ReplicaId: replicaID, StoreId: storeID, Role: metapb.ReplicaRole_LEARNER})
	p := &proposal{id: s.nextID.Add(1), done: make(chan applyResult, 1)}
	cctx, err := proto.Marshal(&raftcmdpb.ChangeReplicasContext{Tablet: planned, ProposalId: p.id, Proposer: s.incarnation})
	if err != nil {
		return err
	}
	p.cc = &raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode, NodeID: replicaID}}, Context: cctx}
	_, err = r.submit(ctx, p)
	return err
}

// ForeignEntryCompletesWaiterForTest registers a caller waiting on a
// proposal of this store, then puts into the tablet's log cmd carrying the
// same proposal ID but proposed by another incarnation (an earlier run of
// this store, whose ID counter may restart at the same values, or another
// store). It reports whether applying that entry completed the waiter.
func (s *Store) ForeignEntryCompletesWaiterForTest(ctx context.Context, tabletID uint64, cmd *raftcmdpb.RaftCommand) (bool, error) {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return false, err
	}
	waiter := &proposal{id: s.nextID.Add(1), done: make(chan applyResult, 1), proposed: time.Now()}
	cmd.ProposalId, cmd.Proposer = waiter.id, s.incarnation+1
	data, err := proto.Marshal(cmd)
	if err != nil {
		return false, err
	}
	err = r.runOnWorker(ctx, func(r *replica) error {
		r.proposals[waiter.id] = waiter
		return r.raw.Propose(data)
	})
	if err != nil {
		return false, err
	}
	// An empty GC of ours applies after the foreign entry.
	if _, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: r.descriptor().Epoch, Cmd: &raftcmdpb.RaftCommand_Gc{Gc: &raftcmdpb.GCCommand{}}}); err != nil {
		return false, err
	}
	defer r.runOnWorker(ctx, func(r *replica) error { delete(r.proposals, waiter.id); return nil })
	select {
	case <-waiter.done:
		return true, nil
	default:
		return false, nil
	}
}

// TransferLeadershipFromForTest asks this store's replica of the tablet,
// which may be a follower, to move leadership to the replica on toStore,
// as raft's MsgTransferLeader from a follower does (it is forwarded to
// the leader). It returns once the request was stepped.
func (s *Store) TransferLeadershipFromForTest(ctx context.Context, tabletID, toStore uint64) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	target := replicaOnStore(r.descriptor(), toStore)
	if target == nil {
		return fmt.Errorf("tablet %d has no replica on store %d", tabletID, toStore)
	}
	return r.runOnWorker(ctx, func(r *replica) error {
		r.raw.TransferLeader(target.ReplicaId)
		return nil
	})
}

// TruncatedIndexForTest returns the index of the last entry truncated from
// the tablet's raft log here.
func (s *Store) TruncatedIndexForTest(ctx context.Context, tabletID uint64) (uint64, error) {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return 0, err
	}
	var idx uint64
	err = r.runOnWorker(ctx, func(r *replica) error {
		idx = r.storage.Truncated().Index
		return nil
	})
	return idx, err
}

// RunAsyncTaskForTest starts f as a task of the store's Stopper, as the
// store starts its own goroutines.
func (s *Store) RunAsyncTaskForTest(name string, f func(context.Context)) error {
	return s.stopper.RunAsyncTask(context.Background(), name, f)
}

// ProposeLeaveJointForTest proposes leaving a joint configuration, which
// raft turns into an empty entry when the tablet is not in one.
func (s *Store) ProposeLeaveJointForTest(ctx context.Context, tabletID uint64) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	p := &proposal{id: s.nextID.Add(1), done: make(chan applyResult, 1), cc: &raftpb.ConfChangeV2{}}
	_, err = r.submit(ctx, p)
	return err
}

// DeliverRaftMessageForTest hands the store one raft message from a peer,
// as the transport would.
func (s *Store) DeliverRaftMessageForTest(tabletID, fromStore uint64, m raftpb.Message) {
	b, err := m.Marshal()
	if err != nil {
		panic(err) // a raftpb.Message built by the test always marshals
	}
	(*transportHandler)(s).HandleRaftBatch(&transportpb.RaftMessageBatch{FromStore: fromStore, Messages: []*transportpb.RaftMessage{{TabletId: tabletID, FromStore: fromStore, ToStore: s.opts.StoreID, Message: b}}})
}

// HasReplicaForTest reports whether the store holds any replica object of
// the tablet, initialized or not.
func (s *Store) HasReplicaForTest(tabletID uint64) bool { return s.getReplica(tabletID) != nil }

// RaftCacheBytesForTest returns the bytes of the replica's raft entry cache.
func (s *Store) RaftCacheBytesForTest(tabletID uint64) uint64 {
	r := s.getReplica(tabletID)
	if r == nil || r.storage == nil {
		return 0
	}
	return r.storage.CachedBytes()
}

// ChecksumForTest hashes this store's replica of a tablet as a
// consistency check's worker does, under ctx, and returns how many keys it
// hashed and the result's error ("" if none).
func (s *Store) ChecksumForTest(ctx context.Context, tabletID uint64) (uint64, string, error) {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return 0, "", err
	}
	snap, desc, err := s.pinnedRead(r, nil, 0)
	if err != nil {
		return 0, "", err
	}
	res := s.checks.compute(ctx, &checksumTask{r: r, cmd: &raftcmdpb.ComputeChecksumCommand{}, desc: desc, snap: snap})
	return res.Keys, res.Error, nil
}

// QuiesceForTest begins the store's shutdown as Close does (tasks are
// told to stop) without waiting or marking the store closed.
func (s *Store) QuiesceForTest() { s.stopper.Quiesce() }
