package store

import (
	"bytes"
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

// applySplit cuts the tablet at every split key, in one command (TiKV's
// BatchSplit): this replica keeps the left-most range and each key starts
// a new tablet whose raft group starts on the same stores. The new tablets
// are written in the same batch as the left's descriptor, so they come
// into existence together or not at all. Worker only.
func (r *replica) applySplit(b *pebble.Batch, cmd *raftcmdpb.RaftCommand, splits []*raftcmdpb.SplitCommand, post []func()) (proto.Message, []func(), error) {
	desc := r.appliedDesc
	// The new tablets' replicas were planned from the membership the
	// proposer saw: a membership change committed ahead of the split would
	// make them wrong, so the conf version must match too.
	if !sameEpoch(cmd.Epoch, desc.Epoch) {
		return nil, post, errs.EpochMismatch(desc)
	}
	if err := checkSplits(desc, splits); err != nil {
		return nil, post, err
	}
	tablets := splitDescriptors(desc, splits)
	left := tablets[0]
	if err := setProto(b, keys.DescriptorKey(left.TabletId), left); err != nil {
		r.s.fatal("write descriptor", err, r)
	}
	type created struct {
		desc      *metapb.TabletDescriptor
		replicaID uint64
	}
	var mine []created
	for _, right := range tablets[1:] {
		rep := replicaOnStore(right, r.s.opts.StoreID)
		var tomb raftcmdpb.Tombstone
		if err := getProto(r.s.db, keys.TombstoneKey(right.TabletId), &tomb); err != nil {
			r.s.fatal("read tombstone", err, r)
		}
		if rep == nil || tomb.NextReplicaId > rep.ReplicaId {
			// The new tablet's replica was already moved off this store;
			// the data in its range belongs to nobody here.
			lo, hi := keys.DataSpan(right.StartKey, right.EndKey)
			if err := b.DeleteRange(lo, hi, nil); err != nil {
				r.s.fatal("clear split data", err, r)
			}
			continue
		}
		if err := writeInitialStateKeepingVote(r.s.db, b, right, r.applied.MaxTimestamp); err != nil {
			r.s.fatal("write split state", err, r)
		}
		mine = append(mine, created{right, rep.ReplicaId})
	}
	wasLeader := r.raw.BasicStatus().Lead == r.replicaID
	r.appliedDesc = left
	post = append(post, func() {
		r.mu.Lock()
		r.mu.desc = left
		r.mu.Unlock()
		// Each tablet gets an equal share of the not-yet-flushed bytes
		// (an estimate).
		e := r.s.flushEpoch.Load()
		share := r.load.unflushedBytes(e) / uint64(len(tablets))
		r.load.unflushed.Store(0)
		r.load.addUnflushed(e, share)
		for _, c := range mine {
			r.s.initSplitReplica(c.desc, c.replicaID, wasLeader)
			if rr := r.s.getReplica(c.desc.TabletId); rr != nil {
				rr.load.addUnflushed(e, share)
			}
		}
	})
	for _, c := range splits {
		r.s.log.Info("tablet split", "tablet", left.TabletId, "new_tablet", c.NewTabletId, "key", keyString(c.SplitKey))
	}
	return &kvpb.SplitTabletResponse{Left: left, Right: tablets[1], Tablets: tablets}, post, nil
}

// checkSplits refuses a split list that would not cut desc into non-empty,
// ordered tablets with new IDs. Deterministic: every replica agrees.
func checkSplits(desc *metapb.TabletDescriptor, splits []*raftcmdpb.SplitCommand) error {
	if len(splits) == 0 {
		return errs.InvalidArgument("split of tablet %d has no split key", desc.TabletId)
	}
	ids := map[uint64]bool{desc.TabletId: true}
	prev := desc.StartKey
	for _, c := range splits {
		if !containsKey(desc, c.SplitKey) || bytes.Equal(c.SplitKey, desc.StartKey) {
			return errs.InvalidArgument("split key %x is not strictly inside tablet %d", c.SplitKey, desc.TabletId)
		}
		if bytes.Compare(c.SplitKey, prev) <= 0 {
			return errs.InvalidArgument("split keys of tablet %d must strictly ascend: %x does not follow %x", desc.TabletId, c.SplitKey, prev)
		}
		prev = c.SplitKey
		if c.NewTabletId == 0 || ids[c.NewTabletId] {
			return errs.InvalidArgument("split of tablet %d: new tablet id %d is zero or used twice", desc.TabletId, c.NewTabletId)
		}
		ids[c.NewTabletId] = true
		if len(c.NewReplicas) != len(desc.Replicas) {
			return errs.InvalidArgument("split of tablet %d: new tablet %d has %d replicas, want %d", desc.TabletId, c.NewTabletId, len(c.NewReplicas), len(desc.Replicas))
		}
	}
	return nil
}

// splitDescriptors returns the tablets a checked split makes of desc, in
// key order, the left one (desc's ID) first. Every one gets the version
// desc's plus the number of new tablets, as TiKV's BatchSplit does, so a
// request routed with the old epoch is refused by each of them.
func splitDescriptors(desc *metapb.TabletDescriptor, splits []*raftcmdpb.SplitCommand) []*metapb.TabletDescriptor {
	left := proto.Clone(desc).(*metapb.TabletDescriptor)
	left.EndKey = splits[0].SplitKey
	left.Epoch.Version += uint64(len(splits))
	out := []*metapb.TabletDescriptor{left}
	for i, c := range splits {
		end := desc.EndKey
		if i+1 < len(splits) {
			end = splits[i+1].SplitKey
		}
		out = append(out, &metapb.TabletDescriptor{
			TabletId: c.NewTabletId,
			StartKey: c.SplitKey,
			EndKey:   end,
			Epoch:    &metapb.Epoch{Version: left.Epoch.Version, ConfVersion: desc.Epoch.ConfVersion},
			Replicas: c.NewReplicas,
		})
	}
	return out
}

// writeInitialStateKeepingVote writes a new replica's initial state (split or
// bootstrap), keeping any term and vote its uninitialized replica already
// cast.
func writeInitialStateKeepingVote(db *pebble.DB, b *pebble.Batch, desc *metapb.TabletDescriptor, maxTS int64) error {
	if err := writeInitialState(b, desc, maxTS); err != nil {
		return err
	}
	v, closer, err := db.Get(keys.RaftHardStateKey(desc.TabletId))
	if err != nil {
		return nil // none: the initial state stands
	}
	defer closer.Close()
	var hs raftpb.HardState
	if err := hs.Unmarshal(v); err != nil || hs.Term <= raftInitialTerm {
		return err
	}
	hs.Commit = raftInitialIndex
	nv, err := hs.Marshal()
	if err != nil {
		return err
	}
	return b.Set(keys.RaftHardStateKey(desc.TabletId), nv, nil)
}

// initSplitReplica creates the right-hand replica after a split committed,
// or gives state to the uninitialized one a message already created.
// Worker only (runs in post-apply).
func (s *Store) initSplitReplica(desc *metapb.TabletDescriptor, replicaID uint64, campaign bool) {
	r, created, err := s.getOrCreateReplica(desc.TabletId, replicaID, desc)
	if err != nil {
		s.fatal("create split replica", err, nil)
	}
	if !created {
		if r.descriptor() != nil {
			return // already initialized (cannot normally happen)
		}
		r.setReplicaID(replicaID)
		if err := r.loadState(desc); err != nil {
			s.fatal("init split replica", err, r)
		}
	}
	s.awake[r.tabletID] = r
	if campaign {
		// The left's leader leads the right too, saving an election timeout.
		_ = r.raw.Campaign()
	}
	s.enqueue(r.tabletID)
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
			r.s.destroyReplica(r, r.replicaID+1)
		}
	})
	r.log.Info("membership changed", "conf_version", desc.Epoch.ConfVersion, "replicas", replicasString(desc))
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

// destroyReplica removes a replica and its data, leaving a tombstone so
// stale messages cannot resurrect it. Worker only.
func (s *Store) destroyReplica(r *replica, nextReplicaID uint64) {
	desc := s.forgetReplica(r)
	if err := s.destroyReplicaData(r.tabletID, desc, nextReplicaID); err != nil {
		s.fatal("destroy replica", err, r)
	}
	r.log.Info("replica destroyed")
}

// forgetReplica drops a replica from memory: waiters fail (writes with an
// unknown outcome), the raft group stops, and the store stops routing to
// it. It returns the last descriptor. Worker only.
func (s *Store) forgetReplica(r *replica) *metapb.TabletDescriptor {
	r.mu.Lock()
	desc := r.mu.desc
	r.mu.destroyed = true
	r.mu.Unlock()
	r.failAllWaiters(errs.Ambiguous("tablet %d: replica removed from store %d before the write applied here", r.tabletID, s.opts.StoreID), errs.TabletNotFound(r.tabletID, s.opts.StoreID))
	r.raw = nil
	delete(s.awake, r.tabletID)
	s.mu.Lock()
	if s.mu.replicas[r.tabletID] == r {
		delete(s.mu.replicas, r.tabletID)
	}
	s.mu.Unlock()
	return desc
}

// destroyReplicaData deletes a replica's data (when desc is known) and raft
// state, and writes its tombstone.
func (s *Store) destroyReplicaData(tabletID uint64, desc *metapb.TabletDescriptor, nextReplicaID uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	if desc != nil {
		lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
		if err := b.DeleteRange(lo, hi, nil); err != nil {
			return err
		}
	}
	p := keys.TabletLocalPrefix(tabletID)
	if err := b.DeleteRange(p, keys.PrefixEnd(p), nil); err != nil {
		return err
	}
	if nextReplicaID > 0 {
		if err := setProto(b, keys.TombstoneKey(tabletID), &raftcmdpb.Tombstone{NextReplicaId: nextReplicaID}); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// Split splits a tablet at one key (split_key) or, as one raft command, at
// several (split_keys). It is proposed through raft and returns once
// applied on the leader; then Options.OnSplit hears of every resulting
// tablet.
func (s *Store) Split(ctx context.Context, req *kvpb.SplitTabletRequest) (*kvpb.SplitTabletResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	r, err := s.replicaForRequest(req.Header.GetTabletId())
	if err != nil {
		return nil, err
	}
	desc := r.descriptor()
	if err := s.checkEpoch(desc, req.Header); err != nil {
		return nil, err
	}
	if e := req.Header.GetEpoch(); e != nil && e.ConfVersion != desc.Epoch.ConfVersion {
		return nil, errs.EpochMismatch(desc)
	}
	if isJoint(desc) {
		return nil, errs.ServerBusy("a membership change is in progress", 500)
	}
	splits, err := splitCommands(desc, req)
	if err != nil {
		return nil, err
	}
	cmd := &raftcmdpb.RaftCommand{Epoch: desc.Epoch}
	if len(req.SplitKeys) == 0 {
		cmd.Cmd = &raftcmdpb.RaftCommand_Split{Split: splits[0]}
	} else {
		cmd.Cmd = &raftcmdpb.RaftCommand_BatchSplit{BatchSplit: &raftcmdpb.BatchSplitCommand{Splits: splits}}
	}
	resp, err := r.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	out := resp.(*kvpb.SplitTabletResponse)
	if f := s.opts.OnSplit; f != nil {
		f(out.Tablets)
	}
	return out, nil
}

// splitCommands turns a split request into the commands of its new
// tablets, replicas on the parent's stores in the parent's order.
func splitCommands(desc *metapb.TabletDescriptor, req *kvpb.SplitTabletRequest) ([]*raftcmdpb.SplitCommand, error) {
	splitKeys, ids := req.SplitKeys, req.NewTabletIds
	if len(splitKeys) == 0 {
		splitKeys, ids = [][]byte{req.SplitKey}, []uint64{req.NewTabletId}
	}
	n := len(desc.Replicas)
	if len(ids) != len(splitKeys) || len(req.NewReplicaIds) != n*len(splitKeys) {
		return nil, errs.InvalidArgument("a split into %d new tablets needs %d new tablet ids and %d new replica ids (%d per tablet), got %d and %d",
			len(splitKeys), len(splitKeys), n*len(splitKeys), n, len(ids), len(req.NewReplicaIds))
	}
	out := make([]*raftcmdpb.SplitCommand, len(splitKeys))
	for i, k := range splitKeys {
		if !keys.IsValidSplitKey(k) {
			return nil, errs.InvalidArgument("split key %x is not a table prefix or row key", k)
		}
		reps := make([]*metapb.Replica, n)
		for j, rep := range desc.Replicas {
			reps[j] = &metapb.Replica{ReplicaId: req.NewReplicaIds[i*n+j], StoreId: rep.StoreId, Role: rep.Role}
		}
		out[i] = &raftcmdpb.SplitCommand{SplitKey: k, NewTabletId: ids[i], NewReplicas: reps}
	}
	// Refused here already (apply checks again against the applied range).
	return out, checkSplits(desc, out)
}

// TransferLeader asks the tablet's leader to hand leadership to the replica
// on toStore. It returns once the transfer started; leadership moves within
// an election timeout.
func (s *Store) TransferLeader(ctx context.Context, req *kvpb.TransferLeaderRequest) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	r, err := s.replicaForRequest(req.Header.GetTabletId())
	if err != nil {
		return err
	}
	target := replicaOnStore(r.descriptor(), req.ToStoreId)
	if target == nil {
		return errs.InvalidArgument("tablet %d has no replica on store %d", r.tabletID, req.ToStoreId)
	}
	return r.runOnWorker(ctx, func(r *replica) error {
		st := r.raw.Status()
		if st.Lead != r.replicaID && req.Forward && st.Lead != 0 {
			// raft forwards it; the leader's lease ends when it sends
			// MsgTimeoutNow (expireLeaseOnTimeoutNow).
			r.raw.TransferLeader(target.ReplicaId)
			return nil
		}
		if st.Lead != r.replicaID {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.leaderErrorLocked()
		}
		// Raft stops accepting proposals while a transfer is pending, so a
		// transfer to a replica that is unreachable or behind would only
		// make the tablet unavailable for an election timeout (and again on
		// every retry): refuse it.
		// Reachability comes from the store-level liveness pings (raft's
		// RecentActive goes stale while a group is quiesced).
		pr, ok := st.Progress[target.ReplicaId]
		if !ok || r.s.isDead(target.StoreId) || pr.Match < st.Commit {
			return errs.ServerBusy(fmt.Sprintf("tablet %d: replica on store %d is not caught up or not reachable; not transferring leadership to it", r.tabletID, req.ToStoreId), 500)
		}
		r.invalidateLease() // the target campaigns with votes that leases cannot stop
		r.raw.TransferLeader(target.ReplicaId)
		return nil
	})
}

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

// sameEpoch reports whether a command's epoch equals the descriptor's in
// both version and conf version.
func sameEpoch(a, b *metapb.Epoch) bool {
	return a != nil && b != nil && a.Version == b.Version && a.ConfVersion == b.ConfVersion
}

func isJoint(d *metapb.TabletDescriptor) bool {
	for _, rep := range d.Replicas {
		if rep.Role == metapb.ReplicaRole_VOTER_INCOMING || rep.Role == metapb.ReplicaRole_VOTER_OUTGOING {
			return true
		}
	}
	return false
}

// checkEpoch rejects a request whose epoch version is stale. The error
// carries the tablet's descriptor and, after a split, its new right-hand
// neighbour when this store has it, so the client can fix its cache
// without asking the placement driver.
func (s *Store) checkEpoch(desc *metapb.TabletDescriptor, h *kvpb.RequestHeader) error {
	if h.GetEpoch() == nil || h.Epoch.Version == desc.Epoch.Version {
		return nil
	}
	current := []*metapb.TabletDescriptor{desc}
	if len(desc.EndKey) > 0 {
		s.mu.RLock()
		for _, r := range s.mu.replicas {
			if d := r.descriptor(); d != nil && bytes.Equal(d.StartKey, desc.EndKey) && d.Epoch.Version == desc.Epoch.Version {
				current = append(current, d)
			}
		}
		s.mu.RUnlock()
	}
	return errs.EpochMismatch(current...)
}
