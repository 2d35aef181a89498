package store

import (
	"bytes"
	"context"
	"fmt"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

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

// sameEpoch reports whether a command's epoch equals the descriptor's in
// both version and conf version.
func sameEpoch(a, b *metapb.Epoch) bool {
	return a != nil && b != nil && a.Version == b.Version && a.ConfVersion == b.ConfVersion
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
