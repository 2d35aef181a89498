package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// Merge absorbs the left tablet's right neighbour into it:
//
//  1. PrepareMerge through the right tablet's log freezes it at index I:
//     from then on it applies no writes.
//  2. The leader waits until every right replica has entry I in its log.
//  3. CommitMerge through the left tablet's log carries the right
//     descriptor and I. Each store applying it first brings its local right
//     replica to I from its own log (entries up to I are committed and
//     persisted there), then widens the left descriptor over both ranges
//     and retires the right replica, keeping its data.
//
// If step 2 or 3 fails the right tablet is unfrozen (RollbackMerge). The
// store receiving the request must lead both tablets, and both must have
// voters on the same stores and no learners. A merge whose proposer gave up
// between steps 1 and 3 (it died, or its deadline passed) is finished or
// rolled back by merge recovery (startMergeRecovery).
func (s *Store) Merge(ctx context.Context, req *kvpb.MergeTabletsRequest) (*metapb.TabletDescriptor, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	left, err := s.replicaForRequest(req.Header.GetTabletId())
	if err != nil {
		return nil, err
	}
	right, err := s.replicaForRequest(req.RightTabletId)
	if err != nil {
		return nil, err
	}
	// The proposer must be done (merged, rolled back, or gone) before
	// merge recovery may act on the frozen tablet.
	if after := s.opts.MergeRecoveryAfter; after > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, after/2)
		defer cancel()
	}
	ld, rd := left.descriptor(), right.descriptor()
	if err := s.checkEpoch(ld, req.Header); err != nil {
		return nil, err
	}
	if err := checkMergeable(ld, rd); err != nil {
		return nil, err
	}
	for _, r := range []*replica{left, right} {
		r.mu.Lock()
		isLeader := r.mu.isLeader
		r.mu.Unlock()
		if !isLeader {
			return nil, errs.ServerBusy(fmt.Sprintf("store %d must lead both tablets %d and %d to merge them; transfer leadership first", s.opts.StoreID, ld.TabletId, rd.TabletId), 500)
		}
	}
	res, err := right.propose(ctx, &raftcmdpb.RaftCommand{Epoch: rd.Epoch, Cmd: &raftcmdpb.RaftCommand_PrepareMerge{PrepareMerge: &raftcmdpb.PrepareMergeCommand{TargetTabletId: ld.TabletId, TargetEpoch: ld.Epoch}}})
	if err != nil {
		return nil, err
	}
	freeze := res.(*raftcmdpb.PrepareMergeResult).FreezeIndex
	if k := s.opts.Knobs; k != nil && k.AbandonMergeAfterPrepare {
		return nil, errs.ServerBusy("merge abandoned after PrepareMerge (testing knob)", 500)
	}
	return s.finishMerge(ctx, left, right, ld.Epoch, freeze, true)
}

// finishMerge runs steps 2 and 3 of a merge whose right tablet is frozen
// at index freeze, for the left tablet at epoch leftEpoch. The store must
// lead both. With mayRollback it unfreezes the right tablet when the merge
// fails before or at CommitMerge: only the proposer that froze it may, as
// only it knows that no CommitMerge of an earlier attempt can still be
// in the left's log.
func (s *Store) finishMerge(ctx context.Context, left, right *replica, leftEpoch *metapb.Epoch, freeze uint64, mayRollback bool) (*metapb.TabletDescriptor, error) {
	rollback := func(cause error) error {
		if !mayRollback {
			return cause
		}
		rctx, cancel := context.WithTimeout(context.Background(), s.opts.ProposalTimeout)
		defer cancel()
		if err := right.proposeRollbackMerge(rctx); err != nil {
			return fmt.Errorf("merge failed (%v) and its rollback too (%v)", cause, err)
		}
		return cause
	}
	// Every right replica must hold the freeze entry.
	for {
		var ok bool
		err := right.runOnWorker(ctx, func(r *replica) error {
			st := r.raw.Status()
			if st.RaftState != raft.StateLeader {
				return errs.NotLeader(r.tabletID, 0, "")
			}
			ok = true
			for _, pr := range st.Progress {
				if pr.Match < freeze {
					ok = false
				}
			}
			return nil
		})
		if err != nil {
			return nil, rollback(err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, rollback(errs.ServerBusy("merge: right tablet's replicas did not catch up", 500))
		case <-time.After(s.opts.TickInterval):
		}
	}
	frozen := right.descriptor()
	res, err := left.propose(ctx, &raftcmdpb.RaftCommand{Epoch: leftEpoch, Cmd: &raftcmdpb.RaftCommand_CommitMerge{CommitMerge: &raftcmdpb.CommitMergeCommand{Source: frozen, FreezeIndex: freeze}}})
	if err != nil {
		if isAmbiguous(err) {
			return nil, err // may have committed: never roll back blindly
		}
		return nil, rollback(err)
	}
	return res.(*kvpb.MergeTabletsResponse).Tablet, nil
}

func checkMergeable(ld, rd *metapb.TabletDescriptor) error {
	if len(ld.EndKey) == 0 || !bytes.Equal(ld.EndKey, rd.StartKey) {
		return errs.InvalidArgument("tablets %d and %d are not adjacent", ld.TabletId, rd.TabletId)
	}
	if isJoint(ld) || isJoint(rd) {
		return errs.ServerBusy("a membership change is in progress", 500)
	}
	stores := func(d *metapb.TabletDescriptor) (map[uint64]bool, error) {
		m := map[uint64]bool{}
		for _, rep := range d.Replicas {
			if rep.Role != metapb.ReplicaRole_VOTER {
				return nil, errs.InvalidArgument("tablet %d has a non-voter replica on store %d; merge needs voters only", d.TabletId, rep.StoreId)
			}
			m[rep.StoreId] = true
		}
		return m, nil
	}
	ls, err := stores(ld)
	if err != nil {
		return err
	}
	rs, err := stores(rd)
	if err != nil {
		return err
	}
	if len(ls) != len(rs) {
		return errs.InvalidArgument("tablets %d and %d have replicas on different stores", ld.TabletId, rd.TabletId)
	}
	for id := range ls {
		if !rs[id] {
			return errs.InvalidArgument("tablets %d and %d have replicas on different stores", ld.TabletId, rd.TabletId)
		}
	}
	return nil
}

// applyPrepareMerge freezes this (right-hand) tablet. Worker only.
func (r *replica) applyPrepareMerge(cmd *raftcmdpb.RaftCommand, c *raftcmdpb.PrepareMergeCommand, index uint64) (proto.Message, error) {
	if r.applied.MergingInto != 0 && r.applied.MergingInto != c.TargetTabletId {
		return nil, errs.ServerBusy("tablet is already merging", 500)
	}
	// The merge was checked against this membership and range; freeze
	// only if nothing changed since (from here on membership changes are
	// refused, see confChangeRejection).
	if !sameEpoch(cmd.Epoch, r.appliedDesc.Epoch) {
		return nil, errs.EpochMismatch(r.appliedDesc)
	}
	r.applied.MergingInto = c.TargetTabletId
	r.applied.MergeFreezeIndex = index
	r.applied.MergeTargetEpoch = c.TargetEpoch
	r.setMerging(c.TargetTabletId)
	r.s.event(r.tabletID, "frozen at index %d for a merge into tablet %d (target epoch %v)", index, c.TargetTabletId, c.TargetEpoch)
	return &raftcmdpb.PrepareMergeResult{FreezeIndex: index}, nil
}

func (r *replica) setMerging(target uint64) {
	r.mu.Lock()
	if target != 0 {
		// A new PrepareMerge (a retried merge re-freezes) restarts the
		// clock: its proposer is alive.
		r.mu.frozenAt = r.s.opts.Clock.Now()
	}
	r.mu.mergingInto = target
	r.mu.Unlock()
}

// proposeRollbackMerge proposes unfreezing this tablet.
func (r *replica) proposeRollbackMerge(ctx context.Context) error {
	_, err := r.propose(ctx, &raftcmdpb.RaftCommand{Cmd: &raftcmdpb.RaftCommand_RollbackMerge{RollbackMerge: &raftcmdpb.RollbackMergeCommand{}}})
	return err
}

// applyRollbackMerge unfreezes this tablet. Worker only.
func (r *replica) applyRollbackMerge() {
	r.s.event(r.tabletID, "merge into tablet %d rolled back", r.applied.MergingInto)
	r.applied.MergingInto = 0
	r.applied.MergeFreezeIndex = 0
	r.applied.MergeTargetEpoch = nil
	r.setMerging(0)
}

// startMergeRecovery starts the loop that finishes or rolls back merges whose proposer gave up
// between PrepareMerge and CommitMerge; the right tablet would otherwise
// stay frozen, refusing writes, for good. (TiKV's source region leader
// likewise re-checks its target while merging.) One goroutine per store;
// a round costs a lock per replica and acts only on the frozen ones this
// store leads that have been frozen for MergeRecoveryAfter.
func (s *Store) startMergeRecovery(ctx context.Context) error {
	after := s.opts.MergeRecoveryAfter
	if after < 0 {
		return nil
	}
	return s.every(ctx, "store.merge-recovery", max(after/4, s.opts.TickInterval), func(ctx context.Context) { s.recoverMerges(ctx, after) })
}

// recoverMerges is one round of merge recovery: it recovers every tablet
// this store leads that has been frozen for at least after.
func (s *Store) recoverMerges(ctx context.Context, after time.Duration) {
	for _, r := range s.replicaList() {
		r.mu.Lock()
		due := r.mu.mergingInto != 0 && r.mu.isLeader && s.opts.Clock.Since(r.mu.frozenAt) >= after
		r.mu.Unlock()
		if !due {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*s.opts.ProposalTimeout)
		if err := s.recoverMerge(rctx, r); err != nil {
			r.log.Warn("merge recovery", "err", err)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// recoverMerge decides the fate of right, a tablet this store leads that is
// frozen for a merge, from the local replica of the merge's left tablet:
//
//   - The left covers right's range: the merge applied here; the right
//     replica is retired with it. Nothing to do.
//   - The left's epoch moved past the one PrepareMerge recorded: no
//     CommitMerge can apply anymore (it carries that epoch, and one that was
//     ordered before the change would have applied here first, retiring
//     this replica), so the right tablet is rolled back.
//   - The left is at that epoch: the merge is finished, from here, as the
//     Merge request would have (after moving the left's leadership here).
//   - The local left is behind that epoch or missing: wait.
func (s *Store) recoverMerge(ctx context.Context, right *replica) error {
	// A barrier first: every entry committed before it is applied after
	// it, so a RollbackMerge of the original proposer is either applied
	// (seen below) or can never commit.
	if err := right.readIndex(ctx); err != nil {
		return err
	}
	var target, freeze uint64
	var want *metapb.Epoch
	if err := right.runOnWorker(ctx, func(r *replica) error {
		target, freeze = r.applied.MergingInto, r.applied.MergeFreezeIndex
		if e := r.applied.GetMergeTargetEpoch(); e != nil {
			want = &metapb.Epoch{Version: e.Version, ConfVersion: e.ConfVersion}
		}
		return nil
	}); err != nil {
		return err
	}
	if target == 0 {
		return nil // rolled back or merged meanwhile
	}
	if want == nil || want.Version == 0 {
		return fmt.Errorf("tablet %d is frozen for a merge into %d by a PrepareMerge that does not record the target's epoch (written by an older version); it cannot be finished or rolled back safely from here", right.tabletID, target)
	}
	left := s.getReplica(target)
	var ld *metapb.TabletDescriptor
	if left != nil {
		ld = left.descriptor()
	}
	rd := right.descriptor()
	switch {
	case ld == nil || rd == nil:
		return fmt.Errorf("tablet %d is frozen for a merge into %d, which has no replica here yet; waiting", right.tabletID, target)
	case len(ld.EndKey) == 0 || bytes.Compare(ld.EndKey, rd.StartKey) > 0:
		return nil
	case ld.Epoch.Version > want.Version || ld.Epoch.ConfVersion > want.ConfVersion:
		if err := right.proposeRollbackMerge(ctx); err != nil {
			return fmt.Errorf("roll back the abandoned merge of tablet %d into %d: %w", right.tabletID, target, err)
		}
		right.log.Warn("abandoned merge rolled back: the target tablet changed since PrepareMerge", "target", target, "target_epoch", ld.Epoch.String())
		return nil
	case !sameEpoch(ld.Epoch, want):
		return nil // the local left replica has not caught up yet
	}
	left.mu.Lock()
	leads := left.mu.isLeader
	left.mu.Unlock()
	if !leads {
		// A follower's transfer request is forwarded to the leader, which
		// hands over once this replica is caught up; next round goes on.
		return left.runOnWorker(ctx, func(l *replica) error {
			l.raw.TransferLeader(l.replicaID)
			return nil
		})
	}
	merged, err := s.finishMerge(ctx, left, right, want, freeze, false)
	if err != nil {
		return fmt.Errorf("finish the abandoned merge of tablet %d into %d: %w", right.tabletID, target, err)
	}
	right.log.Warn("abandoned merge finished", "merged_into", merged.TabletId)
	return nil
}

// applyCommitMerge absorbs the frozen source tablet into this one. Worker
// only.
func (r *replica) applyCommitMerge(b *pebble.Batch, cmd *raftcmdpb.RaftCommand, c *raftcmdpb.CommitMergeCommand, post []func()) (proto.Message, []func(), error) {
	desc := r.appliedDesc
	src := c.Source
	// Every store with a replica of this tablet must hold one of the
	// source: a membership change since the merge was checked breaks that.
	if !sameEpoch(cmd.Epoch, desc.Epoch) {
		return nil, post, errs.EpochMismatch(desc)
	}
	if !bytes.Equal(desc.EndKey, src.StartKey) {
		return nil, post, errs.InvalidArgument("tablet %d is not adjacent to %d", desc.TabletId, src.TabletId)
	}
	source := r.s.getReplica(src.TabletId)
	if source == nil || source.raw == nil || source.descriptor() == nil {
		r.s.fatal("commit merge", fmt.Errorf("tablet %d: source tablet %d has no replica here", desc.TabletId, src.TabletId), r)
	}
	// Bring the source to the freeze index from its own log.
	if source.applied.Index < c.FreezeIndex {
		ents, err := source.storage.Entries(source.applied.Index+1, c.FreezeIndex+1, math.MaxUint64)
		if err != nil {
			r.s.fatal("commit merge: read source log", err, source)
		}
		post = source.applyEntries(b, ents, post)
	}
	if source.applied.MergingInto != desc.TabletId {
		r.s.fatal("commit merge", fmt.Errorf("source tablet %d is not frozen for tablet %d", src.TabletId, desc.TabletId), source)
	}
	merged := proto.Clone(desc).(*metapb.TabletDescriptor)
	merged.EndKey = src.EndKey
	merged.Epoch.Version = max(desc.Epoch.Version, src.Epoch.Version) + 1
	if err := setProto(b, keys.DescriptorKey(desc.TabletId), merged); err != nil {
		r.s.fatal("write descriptor", err, r)
	}
	// Timestamps on the merged range keep increasing past both halves'.
	r.applied.MaxTimestamp = max(r.applied.MaxTimestamp, source.applied.MaxTimestamp)
	// The merged tablet promises what both halves promised: the source
	// stopped closing when it froze, so every later write in its range
	// (ours from now on) must commit above its last closed timestamp; its
	// history floor holds for its range too (docs/decisions.md).
	r.applied.ClosedTimestamp = max(r.applied.ClosedTimestamp, source.applied.ClosedTimestamp)
	r.applied.HistoryFloor = max(r.applied.HistoryFloor, source.applied.HistoryFloor)
	// Retire the source: its raft state goes, its data stays (now ours).
	p := keys.TabletLocalPrefix(src.TabletId)
	if err := b.DeleteRange(p, keys.PrefixEnd(p), nil); err != nil {
		r.s.fatal("retire merged tablet", err, r)
	}
	if err := setProto(b, keys.TombstoneKey(src.TabletId), &raftcmdpb.Tombstone{NextReplicaId: math.MaxUint64}); err != nil {
		r.s.fatal("retire merged tablet", err, r)
	}
	r.appliedDesc = merged
	post = append(post, func() {
		r.mu.Lock()
		r.mu.desc = merged
		r.mu.Unlock()
		r.s.retireReplica(source)
	})
	r.s.log.Info("tablets merged", "tablet", merged.TabletId, "absorbed", src.TabletId)
	r.s.event(merged.TabletId, "absorbed tablet %d: now %v", src.TabletId, merged)
	r.s.event(src.TabletId, "replica %d merged into tablet %d (freeze index %d)", source.replicaID, merged.TabletId, c.FreezeIndex)
	return &kvpb.MergeTabletsResponse{Tablet: merged}, post, nil
}

// retireReplica drops a merged-away replica from memory. Its on-disk state
// was removed in the merge's apply batch. Worker only.
func (s *Store) retireReplica(r *replica) {
	s.forgetReplica(r)
}

func isAmbiguous(err error) bool {
	return err != nil && errs.Code(err) == "KV:Unknown"
}

// MergeAwaitingTarget is a tablet this store leads that is frozen for a
// merge into Target, past MergeRecoveryAfter, while this store holds no
// replica of Target (it moved away after PrepareMerge): local recovery
// cannot decide, the placement driver's descriptor of Target can
// (RollBackMergeIfTargetChanged).
type MergeAwaitingTarget struct {
	Tablet, Target uint64
}

// MergesAwaitingTarget lists such tablets.
func (s *Store) MergesAwaitingTarget() []MergeAwaitingTarget {
	after := s.opts.MergeRecoveryAfter
	if after < 0 {
		return nil
	}
	var out []MergeAwaitingTarget
	for _, r := range s.replicaList() {
		r.mu.Lock()
		target, due := r.mu.mergingInto, r.mu.mergingInto != 0 && r.mu.isLeader && s.opts.Clock.Since(r.mu.frozenAt) >= after
		r.mu.Unlock()
		if due && s.getReplica(target) == nil {
			out = append(out, MergeAwaitingTarget{Tablet: r.tabletID, Target: target})
		}
	}
	return out
}

// RollBackMergeIfTargetChanged rolls back the merge tablet is frozen for
// when target, a committed descriptor of the merge's target (from the
// placement driver), shows a membership change since PrepareMerge recorded
// the target's epoch and no split or merge: CommitMerge bumps the target's
// version, so none applied before that change, and it carries the recorded
// epoch, so none can apply after it. Any other shape is left to local
// recovery. It reports whether it rolled back.
func (s *Store) RollBackMergeIfTargetChanged(ctx context.Context, tabletID uint64, target *metapb.TabletDescriptor) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	right := s.getReplica(tabletID)
	if right == nil || target == nil {
		return false, nil
	}
	// A barrier, as in recoverMerge: a RollbackMerge or an unfreeze
	// committed earlier is applied before the check below.
	if err := right.readIndex(ctx); err != nil {
		return false, err
	}
	var changed bool
	if err := right.runOnWorker(ctx, func(r *replica) error {
		want := r.applied.GetMergeTargetEpoch()
		changed = r.applied.MergingInto == target.TabletId && want != nil && want.Version != 0 &&
			target.GetEpoch().GetVersion() == want.Version && target.GetEpoch().GetConfVersion() > want.ConfVersion
		return nil
	}); err != nil || !changed {
		return false, err
	}
	if err := right.proposeRollbackMerge(ctx); err != nil {
		return false, fmt.Errorf("roll back the merge of tablet %d into %d: %w", tabletID, target.TabletId, err)
	}
	right.log.Warn("abandoned merge rolled back: the target tablet's membership changed since PrepareMerge, and this store holds no replica of it", "target", target.TabletId, "target_epoch", target.Epoch.String())
	return true, nil
}

// RollBackMergeOfVanishedTarget rolls back the merge tablet is frozen for
// when its target no longer exists: the placement driver forgot the
// target (it merged into its own left neighbour) while it still routes
// tablet's start key to tablet itself. Had the target absorbed tablet
// before it merged away, the range it passed on would cover tablet's, and
// the placement driver would have dropped tablet; and no CommitMerge can
// apply to a target that is gone. The caller checks both facts with the
// placement driver. It reports whether it rolled back.
func (s *Store) RollBackMergeOfVanishedTarget(ctx context.Context, tabletID, target uint64) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	right := s.getReplica(tabletID)
	if right == nil || s.getReplica(target) != nil {
		return false, nil
	}
	if err := right.readIndex(ctx); err != nil {
		return false, err
	}
	var frozen bool
	if err := right.runOnWorker(ctx, func(r *replica) error {
		frozen = r.applied.MergingInto == target
		return nil
	}); err != nil || !frozen {
		return false, err
	}
	if err := right.proposeRollbackMerge(ctx); err != nil {
		return false, fmt.Errorf("roll back the merge of tablet %d into %d: %w", tabletID, target, err)
	}
	right.log.Warn("abandoned merge rolled back: its target tablet merged away first", "target", target)
	return true, nil
}
