package store

import (
	"context"
	"time"

	"github.com/shaledb/shale/proto/metapb"
)

// DestroyIfRemoved destroys this store's replica of a tablet when current
// (the tablet's descriptor as the placement driver knows it) is newer than
// the replica's and no longer lists this store: the replica was removed
// while it lagged behind and never applied its own removal, so nothing
// else would ever clean it up (and its range would block snapshots of
// other tablets). It reports whether it destroyed the replica.
func (s *Store) DestroyIfRemoved(ctx context.Context, current *metapb.TabletDescriptor) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	r := s.getReplica(current.TabletId)
	if r == nil {
		return false, nil
	}
	destroyed := false
	err := r.runOnWorker(ctx, func(r *replica) error {
		local := r.mu.desc
		if replicaOnStore(current, s.opts.StoreID) != nil {
			return nil
		}
		if local != nil && !epochNewer(current.Epoch, local.Epoch) {
			return nil // ours is as new as PD's: PD is behind, not us
		}
		if local == nil && time.Since(time.Unix(0, r.lastMessage.Load())) < uninitializedGCQuiet {
			// An uninitialized replica has no epoch to compare. One that
			// still hears from its group is most likely a learner being
			// added that PD has not heard of yet: destroying it (and
			// tombstoning its ID) would leave the addition hanging.
			return nil
		}
		// Tombstone every replica ID the tablet has used so far here.
		next := r.replicaID + 1
		for _, rep := range current.Replicas {
			next = max(next, rep.ReplicaId+1)
		}
		s.destroyReplica(r, next)
		destroyed = true
		return nil
	})
	return destroyed, err
}

// uninitializedGCQuiet is how long an uninitialized replica must have heard
// nothing from its group before replica GC may destroy it.
const uninitializedGCQuiet = 30 * time.Second

func epochNewer(a, b *metapb.Epoch) bool {
	if a.GetVersion() != b.GetVersion() {
		return a.GetVersion() > b.GetVersion()
	}
	return a.GetConfVersion() > b.GetConfVersion()
}

// FollowerTablets lists the tablets this store holds a replica of but
// does not lead (candidates for DestroyIfRemoved).
func (s *Store) FollowerTablets() []uint64 {
	var out []uint64
	for _, r := range s.replicaList() {
		r.mu.Lock()
		if !r.mu.isLeader && !r.mu.destroyed {
			out = append(out, r.tabletID)
		}
		r.mu.Unlock()
	}
	return out
}
