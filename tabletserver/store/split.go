package store

import (
	"bytes"
	"context"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

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
		if err := writeInitialStateKeepingVote(r.s.db, b, right, &r.applied); err != nil {
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
	r.s.event(left.TabletId, "split into %d tablets: now %v", len(tablets), left)
	for _, t := range tablets[1:] {
		r.s.event(t.TabletId, "created by a split of tablet %d: %v (replica here: %v)", left.TabletId, t, replicaOnStore(t, r.s.opts.StoreID) != nil)
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
func writeInitialStateKeepingVote(db *pebble.DB, b *pebble.Batch, desc *metapb.TabletDescriptor, from *raftcmdpb.AppliedState) error {
	if err := writeInitialState(b, desc, from); err != nil {
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
