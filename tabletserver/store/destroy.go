package store

import (
	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// destroyReplica removes a replica and its data, leaving a tombstone so
// stale messages cannot resurrect it. The tombstone is on disk before the
// replica leaves the store's map: until then a message for the tablet
// finds the stopped replica and is dropped, and afterwards the tombstone
// refuses it. (The other order let a message arriving in between create
// an uninitialized replica that loaded the dying one's raft state and
// crashed the store when that state was deleted under it; kvnemesis.)
// Worker only.
func (s *Store) destroyReplica(r *replica, nextReplicaID uint64, why string) {
	desc := s.stopReplica(r)
	s.event(r.tabletID, "replica %d destroyed (%s); last descriptor %v", r.replicaID, why, desc)
	if k := s.opts.Knobs; k != nil && k.BeforeDestroyData != nil {
		k.BeforeDestroyData(r.tabletID)
	}
	if err := s.destroyReplicaData(r.tabletID, desc, nextReplicaID); err != nil {
		s.fatal("destroy replica", err, r)
	}
	s.unregisterReplica(r)
	r.log.Info("replica destroyed")
}

// forgetReplica drops a replica from memory (stopReplica, then
// unregisterReplica). It returns the last descriptor. Worker only.
func (s *Store) forgetReplica(r *replica) *metapb.TabletDescriptor {
	desc := s.stopReplica(r)
	s.unregisterReplica(r)
	return desc
}

// stopReplica stops a replica: waiters fail (writes with an unknown
// outcome) and the raft group stops. It returns the last descriptor.
// Worker only.
func (s *Store) stopReplica(r *replica) *metapb.TabletDescriptor {
	r.awaitIngest()
	r.mu.Lock()
	desc := r.mu.desc
	r.mu.destroyed = true
	r.mu.Unlock()
	r.failAllWaiters(errs.Ambiguous("tablet %d: replica removed from store %d before the write applied here", r.tabletID, s.opts.StoreID), errs.TabletNotFound(r.tabletID, s.opts.StoreID))
	r.raw = nil
	delete(s.awake, r.tabletID)
	return desc
}

// unregisterReplica makes the store stop routing to a stopped replica.
func (s *Store) unregisterReplica(r *replica) {
	s.mu.Lock()
	if s.mu.replicas[r.tabletID] == r {
		delete(s.mu.replicas, r.tabletID)
	}
	s.mu.Unlock()
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
