package store

import (
	"context"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/transport"
)

// transportHandler receives raft traffic for the store.
type transportHandler Store

var _ transport.Handler = (*transportHandler)(nil)

// HandleRaftBatch queues inbound raft messages on their replicas, creating
// uninitialized replicas for tablets this store does not know yet.
func (h *transportHandler) HandleRaftBatch(b *transportpb.RaftMessageBatch) {
	s := (*Store)(h)
	if s.enter() != nil {
		return
	}
	defer s.exit()
	s.heard(b.FromStore, b.ControlLane, b.RaftBusy)
	for _, rm := range b.Messages {
		if rm.ToStore != s.opts.StoreID {
			continue
		}
		var m raftpb.Message
		if err := m.Unmarshal(rm.Message); err != nil {
			s.log.Warn("dropping undecodable raft message", "from_store", rm.FromStore, "err", err)
			continue
		}
		if s.dropsVote(&m) {
			continue
		}
		r := s.getReplica(rm.TabletId)
		if r == nil {
			var err error
			if r, err = s.maybeCreateUninitialized(rm.TabletId, m); err != nil || r == nil {
				continue
			}
		}
		r.mu.Lock()
		if r.mu.destroyed || m.To != r.replicaID {
			r.mu.Unlock()
			continue
		}
		// A follower forwards a MsgTransferLeader with From set to the
		// transferee, not to itself: learning the sender's store from it
		// would route the transferee's messages (its MsgTimeoutNow first)
		// to the forwarding store.
		if m.Type != raftpb.MsgTransferLeader {
			r.mu.peers[m.From] = rm.FromStore
		}
		r.mu.inbox.msgs = append(r.mu.inbox.msgs, inboundMsg{msg: m, quiesce: rm.Quiesce})
		r.mu.Unlock()
		s.enqueue(rm.TabletId)
	}
}

// maybeCreateUninitialized creates a replica for a message to an unknown
// tablet unless a tombstone says the addressee was removed.
func (s *Store) maybeCreateUninitialized(tabletID uint64, m raftpb.Message) (*replica, error) {
	// Only messages a leader or candidate sends can usefully create a
	// replica; responses to a replica we no longer have are stale.
	switch m.Type {
	case raftpb.MsgApp, raftpb.MsgHeartbeat, raftpb.MsgSnap, raftpb.MsgVote, raftpb.MsgPreVote, raftpb.MsgTimeoutNow:
	default:
		return nil, nil
	}
	var tomb raftcmdpb.Tombstone
	if err := getProto(s.db, keys.TombstoneKey(tabletID), &tomb); err != nil {
		return nil, err
	}
	if tomb.NextReplicaId > m.To {
		return nil, nil
	}
	r, _, err := s.getOrCreateReplica(tabletID, m.To, nil)
	return r, err
}

// HandleSnapshot implements transport.Handler.
func (h *transportHandler) HandleSnapshot(ctx context.Context, hd *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
	s := (*Store)(h)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if hd.ToStore != s.opts.StoreID {
		return errs.InvalidArgument("snapshot for store %d reached store %d", hd.ToStore, s.opts.StoreID)
	}
	s.metrics.snapRecv.Inc()
	return s.receiveSnapshot(ctx, hd, func() ([]byte, []byte, error) {
		k, v, err := next()
		s.metrics.snapRecvBytes.Add(float64(len(k) + len(v)))
		return k, v, err
	})
}

// ReportUnreachable implements transport.Handler. Raft notices unreachable
// followers through missing responses; nothing more to do here.
func (h *transportHandler) ReportUnreachable(storeID uint64) {}
