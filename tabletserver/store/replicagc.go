package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/shaledb/shale/internal/errs"
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
	err := r.checkOnWorker(ctx, func(r *replica) error {
		local := r.mu.desc
		listed := replicaOnStore(current, s.opts.StoreID)
		if listed != nil && listed.ReplicaId <= r.replicaID {
			return nil // still a member
		}
		if local != nil && !epochNewer(current.Epoch, local.Epoch) {
			return nil // ours is as new as PD's: PD is behind, not us
		}
		if listed != nil {
			// Removed and added back under a newer ID: tombstone ours
			// only, or the new replica could never be created.
			s.destroyReplica(r, listed.ReplicaId, fmt.Sprintf("PD's descriptor %v lists this store under a newer replica", current))
			destroyed = true
			return nil
		}
		if local == nil && s.opts.Clock.Since(time.Unix(0, r.lastMessage.Load())) < uninitializedGCQuiet {
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
		s.destroyReplica(r, next, fmt.Sprintf("PD's descriptor %v no longer lists this store", current))
		destroyed = true
		return nil
	})
	if err != nil {
		// f may still run later on the worker: destroyed is not ours to
		// read until it has (the channel receive orders it).
		return false, err
	}
	return destroyed, nil
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

// Orphans of a merge. A store that was down while a merge committed comes
// back with a replica of the absorbed tablet whose peers retired theirs:
// it can never elect a leader, and its range blocks the merged tablet's
// snapshot. It is destroyed when a descriptor of another tablet proves it
// was merged away (supersedes): the merged tablet's snapshot arriving here
// (TiKV does the same), or the placement driver's tablet covering its
// start key (DestroyIfSuperseded).

// supersedes reports whether newer, a committed descriptor of another
// tablet, proves that local's tablet was merged away: it covers local's
// start key at a later epoch version. Along any key's history of owners
// the version only grows (a split bumps both halves, a merge goes past
// both), and the owner of a tablet's start key changes to another tablet
// ID only when that tablet is merged into its left neighbour (a split
// keeps the left half's ID). A newer tablet covering some other part of
// local's range proves nothing: local may just have split since.
func supersedes(newer, local *metapb.TabletDescriptor) bool {
	return newer.TabletId != local.TabletId && containsKey(newer, local.StartKey) &&
		newer.GetEpoch().GetVersion() > local.GetEpoch().GetVersion()
}

// makeRoomForSnapshot checks that a snapshot of desc overlaps no other
// initialized replica here, destroying the overlapping ones desc proves
// merged away. Any other overlap refuses the snapshot (raft retries it;
// the usual case is a split not applied here yet).
func (s *Store) makeRoomForSnapshot(ctx context.Context, desc *metapb.TabletDescriptor) error {
	var orphans []*replica
	s.mu.RLock()
	for id, r := range s.mu.replicas {
		d := r.descriptor()
		if id == desc.TabletId || d == nil || !rangesOverlap(d.StartKey, d.EndKey, desc.StartKey, desc.EndKey) {
			continue
		}
		if !supersedes(desc, d) {
			s.mu.RUnlock()
			return errs.InvalidArgument("tablet %d's range overlaps tablet %d on store %d", desc.TabletId, id, s.opts.StoreID)
		}
		orphans = append(orphans, r)
	}
	s.mu.RUnlock()
	for _, r := range orphans {
		if s.mayStillAbsorb(r, desc, desc.TabletId) {
			return errs.InvalidArgument("tablet %d's range overlaps tablet %d on store %d, which a lagging replica here may still merge", desc.TabletId, r.tabletID, s.opts.StoreID)
		}
		gone, err := s.destroySuperseded(ctx, r, desc)
		if err != nil {
			return err
		}
		if !gone {
			return errs.InvalidArgument("tablet %d's range overlaps tablet %d on store %d", desc.TabletId, r.tabletID, s.opts.StoreID)
		}
	}
	return nil
}

// DestroyIfSuperseded destroys this store's replica of tabletID when
// covering, the descriptor the placement driver has for the key at the
// replica's start (the placement driver forgets merged tablets), proves
// the replica's tablet merged away, unless a lagging replica here may
// still absorb it (mayStillAbsorb). It reports whether it destroyed it.
func (s *Store) DestroyIfSuperseded(ctx context.Context, tabletID uint64, covering *metapb.TabletDescriptor) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	r := s.getReplica(tabletID)
	if r == nil || s.mayStillAbsorb(r, covering, 0) {
		return false, nil
	}
	return s.destroySuperseded(ctx, r, covering)
}

// mayStillAbsorb reports whether a replica here other than except, r's
// left neighbour, is older than newer: its log may still hold the
// CommitMerge that absorbs r, and applying it needs r here (kvnemesis
// found a store stopped by destroying r first). Once the neighbour's
// version reaches newer's it is past that merge (a merge raises the
// version, and newer descends from the merged tablet), so r can go.
func (s *Store) mayStillAbsorb(r *replica, newer *metapb.TabletDescriptor, except uint64) bool {
	d := r.descriptor()
	if d == nil {
		return false
	}
	for _, l := range s.replicaList() {
		ld := l.descriptor()
		if l == r || l.tabletID == except || ld == nil {
			continue
		}
		if bytes.Equal(ld.EndKey, d.StartKey) && ld.GetEpoch().GetVersion() < newer.GetEpoch().GetVersion() {
			return true
		}
	}
	return false
}

// destroySuperseded destroys r if newer supersedes its descriptor, checked
// on the worker so that nothing applies in between.
func (s *Store) destroySuperseded(ctx context.Context, r *replica, newer *metapb.TabletDescriptor) (bool, error) {
	destroyed := false
	err := r.checkOnWorker(ctx, func(r *replica) error {
		local := r.descriptor()
		if local == nil || !supersedes(newer, local) {
			return nil
		}
		r.log.Warn("destroying a replica of a tablet merged away while this store lagged", "covered_by", newer.TabletId, "epoch", newer.GetEpoch().String())
		// Like a merge's retirement: the tablet never comes back.
		s.destroyReplica(r, math.MaxUint64, fmt.Sprintf("merged away: tablet %d covers its start at %v", newer.TabletId, newer.Epoch))
		destroyed = true
		return nil
	})
	if err != nil {
		return false, err // as in DestroyIfRemoved
	}
	return destroyed, nil
}
