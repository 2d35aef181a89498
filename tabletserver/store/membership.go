package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// ChangeReplicas changes the tablet's membership and returns once the
// change (including leaving joint consensus) applied on the leader.
func (s *Store) ChangeReplicas(ctx context.Context, req *kvpb.ChangeReplicasRequest) (*metapb.TabletDescriptor, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	r, err := s.replicaForRequest(req.Header.GetTabletId())
	if err != nil {
		return nil, err
	}
	desc := r.descriptor()
	if req.Header.GetEpoch() != nil && req.Header.Epoch.ConfVersion != desc.Epoch.ConfVersion {
		return nil, errs.EpochMismatch(desc)
	}
	if len(req.Changes) == 0 {
		return nil, errs.InvalidArgument("no replica changes given")
	}
	planned := proto.Clone(desc).(*metapb.TabletDescriptor)
	cc := &raftpb.ConfChangeV2{}
	voterChanges := 0
	for _, ch := range req.Changes {
		existing := replicaOnStore(desc, ch.StoreId)
		switch ch.Type {
		case kvpb.ReplicaChange_ADD_LEARNER, kvpb.ReplicaChange_ADD_VOTER:
			if existing != nil {
				return nil, errs.InvalidArgument("store %d already has a replica of tablet %d", ch.StoreId, r.tabletID)
			}
			if ch.ReplicaId == 0 {
				return nil, errs.InvalidArgument("adding a replica needs a replica id")
			}
			typ := raftpb.ConfChangeAddLearnerNode
			if ch.Type == kvpb.ReplicaChange_ADD_VOTER {
				typ = raftpb.ConfChangeAddNode
				voterChanges++
			}
			planned.Replicas = append(planned.Replicas, &metapb.Replica{ReplicaId: ch.ReplicaId, StoreId: ch.StoreId})
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: typ, NodeID: ch.ReplicaId})
		case kvpb.ReplicaChange_PROMOTE_LEARNER:
			if existing == nil || existing.Role != metapb.ReplicaRole_LEARNER {
				return nil, errs.InvalidArgument("store %d has no learner of tablet %d", ch.StoreId, r.tabletID)
			}
			voterChanges++
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode, NodeID: existing.ReplicaId})
		case kvpb.ReplicaChange_REMOVE:
			if existing == nil {
				return nil, errs.InvalidArgument("store %d has no replica of tablet %d", ch.StoreId, r.tabletID)
			}
			if existing.Role != metapb.ReplicaRole_LEARNER {
				voterChanges++
			}
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode, NodeID: existing.ReplicaId})
		}
	}
	if voterChanges > 1 {
		cc.Transition = raftpb.ConfChangeTransitionAuto // joint consensus
	}
	p := &proposal{id: s.nextID.Add(1), done: make(chan applyResult, 1)}
	cctx, err := proto.Marshal(&raftcmdpb.ChangeReplicasContext{Tablet: planned, ProposalId: p.id, Proposer: s.incarnation})
	if err != nil {
		return nil, err
	}
	cc.Context = cctx
	p.cc = cc
	if _, err := r.submit(ctx, p); err != nil {
		return nil, err
	}
	// Wait until raft left the joint configuration, if it entered one.
	for {
		d := r.descriptor()
		if d == nil {
			return nil, errs.TabletNotFound(r.tabletID, s.opts.StoreID)
		}
		if !isJoint(d) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, errs.Ambiguous("tablet %d: waiting to leave joint configuration: %v", r.tabletID, ctx.Err())
		case <-time.After(s.opts.TickInterval):
		}
	}
}

func isJoint(d *metapb.TabletDescriptor) bool {
	for _, rep := range d.Replicas {
		if rep.Role == metapb.ReplicaRole_VOTER_INCOMING || rep.Role == metapb.ReplicaRole_VOTER_OUTGOING {
			return true
		}
	}
	return false
}

// applyConfChange applies a membership change and the descriptor it implies.
func (r *replica) applyConfChange(b *pebble.Batch, e raftpb.Entry, post []func()) []func() {
	var cc raftpb.ConfChangeV2
	if e.Type == raftpb.EntryConfChange {
		var v1 raftpb.ConfChange
		if err := v1.Unmarshal(e.Data); err != nil {
			r.s.fatal("decode conf change", err, r)
		}
		cc = v1.AsV2()
	} else if err := cc.Unmarshal(e.Data); err != nil {
		r.s.fatal("decode conf change", err, r)
	}
	var ctx raftcmdpb.ChangeReplicasContext
	if len(cc.Context) > 0 {
		if err := proto.Unmarshal(cc.Context, &ctx); err != nil {
			r.s.fatal("decode conf change context", err, r)
		}
	}
	p := r.takeProposal(ctx.ProposalId, ctx.Proposer)
	if err := r.confChangeRejection(cc, ctx.Tablet); err != nil {
		// Every replica reaches the same verdict from its applied state.
		// Raft must still be told: a change of node 0 is its no-op.
		r.raw.ApplyConfChange(raftpb.ConfChange{}.AsV2())
		r.pendingConfChange = false
		r.log.Info("membership change rejected at apply", "err", err)
		if p != nil {
			post = append(post, func() { p.finish(applyResult{err: err}) })
		}
		return post
	}
	r.invalidateLease()
	cs := r.raw.ApplyConfChange(cc)
	r.storage.SetConfState(*cs)
	r.pendingConfChange = len(cs.VotersOutgoing) > 0
	old := r.appliedDesc
	desc := descFromConfState(old, ctx.Tablet, *cs)
	r.appliedDesc = desc
	if err := setProto(b, keys.DescriptorKey(r.tabletID), desc); err != nil {
		r.s.fatal("write descriptor", err, r)
	}
	removed := replicaOnStore(desc, r.s.opts.StoreID) == nil
	post = append(post, func() {
		r.mu.Lock()
		r.mu.desc = desc
		for _, rep := range desc.Replicas {
			r.mu.peers[rep.ReplicaId] = rep.StoreId
		}
		r.mu.Unlock()
		if p != nil {
			p.finish(applyResult{resp: &kvpb.ChangeReplicasResponse{Tablet: desc}})
		}
		if removed {
			r.s.destroyReplica(r, r.replicaID+1, "it applied its own removal")
		}
	})
	r.log.Info("membership changed", "conf_version", desc.Epoch.ConfVersion, "replicas", replicasString(desc))
	r.s.event(r.tabletID, "membership changed at index %d: conf version %d, replicas %s", e.Index, desc.Epoch.ConfVersion, replicasString(desc))
	if removed {
		// Nothing after this entry may be applied here.
		r.raw = nil
	}
	return post
}

// confChangeRejection says why a committed membership change must not take
// effect: it was planned against a membership that has changed since (the
// proposer checked the epoch, but another change may have been committed
// ahead of it in the log), or the tablet is frozen for a merge, whose
// commit needs the frozen membership. Leaving a joint configuration is
// never refused. Worker only.
func (r *replica) confChangeRejection(cc raftpb.ConfChangeV2, planned *metapb.TabletDescriptor) error {
	if cc.LeaveJoint() {
		return nil
	}
	desc := r.appliedDesc
	if planned != nil && planned.GetEpoch().GetConfVersion() != desc.GetEpoch().GetConfVersion() {
		return errs.EpochMismatch(desc)
	}
	if r.applied.MergingInto != 0 {
		return errs.ServerBusy(fmt.Sprintf("tablet %d is being merged into tablet %d; its membership cannot change", r.tabletID, r.applied.MergingInto), 200)
	}
	return nil
}

// descFromConfState derives the descriptor after a conf change: roles from
// raft's configuration, store placement from the old descriptor and the
// proposal's planned one.
func descFromConfState(old, planned *metapb.TabletDescriptor, cs raftpb.ConfState) *metapb.TabletDescriptor {
	stores := map[uint64]uint64{}
	var order []uint64
	for _, d := range []*metapb.TabletDescriptor{old, planned} {
		if d == nil {
			continue
		}
		for _, rep := range d.Replicas {
			if _, ok := stores[rep.ReplicaId]; !ok {
				order = append(order, rep.ReplicaId)
			}
			stores[rep.ReplicaId] = rep.StoreId
		}
	}
	in := func(ids []uint64, id uint64) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
	joint := len(cs.VotersOutgoing) > 0
	desc := proto.Clone(old).(*metapb.TabletDescriptor)
	desc.Replicas = nil
	desc.Epoch.ConfVersion++
	for _, id := range order {
		rep := &metapb.Replica{ReplicaId: id, StoreId: stores[id]}
		inV, inOut := in(cs.Voters, id), in(cs.VotersOutgoing, id)
		switch {
		case inV && (inOut || !joint):
			rep.Role = metapb.ReplicaRole_VOTER
		case inV:
			rep.Role = metapb.ReplicaRole_VOTER_INCOMING
		case inOut:
			rep.Role = metapb.ReplicaRole_VOTER_OUTGOING
		case in(cs.Learners, id) || in(cs.LearnersNext, id):
			rep.Role = metapb.ReplicaRole_LEARNER
		default:
			continue
		}
		desc.Replicas = append(desc.Replicas, rep)
	}
	return desc
}
