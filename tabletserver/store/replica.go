package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/raftlog"
)

// replica is this store's member of one tablet's raft group.
type replica struct {
	s         *Store
	tabletID  uint64
	replicaID uint64
	log       *slog.Logger

	// mu guards the fields inside; it is held only briefly.
	mu struct {
		sync.Mutex
		// desc is nil while the replica is uninitialized (created by a
		// message, waiting for a snapshot or a split to give it state).
		desc      *metapb.TabletDescriptor
		leaderID  uint64 // raft replica ID of the leader, 0 if unknown
		isLeader  bool
		term      uint64
		applied   uint64
		quiesced  bool
		destroyed bool
		// mergingInto is non-zero while the tablet is frozen for a merge,
		// since frozenAt (or since the store opened).
		mergingInto uint64
		// applyBlocked: the replica waits for a staged file before it
		// can apply further (staged.go); it serves no reads or writes.
		applyBlocked bool
		frozenAt     time.Time
		// lease: reads are served without a raft round while leader and
		// before leaseUntil, once applied reaches leaseIndex (see lease.go).
		lease leaderLease
		// closed and floor: the applied closed timestamp and history
		// floor (closedts.go), published with the apply batch;
		// closedWaiters: reads waiting for closed to reach theirs.
		closed, floor int64
		closedWaiters []*closedWaiter
		// peers maps replica IDs to store IDs, from the descriptor and from
		// inbound messages (an uninitialized replica knows no descriptor).
		peers map[uint64]uint64
		inbox inbox
		// Health (consistency.go, corruption.go): badReplicas and
		// inconsistent mirror the applied state's verdicts; markedBad:
		// this replica is among badReplicas; corrupt: why this replica's
		// own data failed a checksum here ("" if it did not).
		badReplicas  []uint64
		inconsistent bool
		markedBad    bool
		corrupt      string
	}

	// installMu is held (write) while a snapshot's data and raft state
	// are ingested and published, and (read) by every read of this
	// replica pinning its engine snapshot: the read sees data and
	// descriptor from the same side of the install. Per replica, so an
	// install (a flush and fsyncs inside Pebble's Ingest) stalls reads of
	// this replica only, not of the whole store (lock order in doc.go).
	installMu sync.RWMutex

	load loadStats
	// gcMark is left by the last whole version-GC pass; the queue and
	// the next pass use it to skip the tablet (gcskip.go).
	gcMark atomic.Pointer[gcMark]
	// gcDebt counts the bytes of applied writes (not ingests), which may
	// have made older versions garbage (gcskip.go). Written by the worker.
	gcDebt atomic.Uint64
	// lastMessage is when the worker last stepped a raft message into this
	// replica (unix nanoseconds); replica GC leaves alone an uninitialized
	// replica that still hears from its group.
	lastMessage atomic.Int64

	// Fields below are owned by the raft worker goroutine.
	raw     *raft.RawNode
	storage *raftlog.Storage
	applied raftcmdpb.AppliedState
	// appliedDesc is the descriptor as of the last applied entry. Apply
	// logic must read this, not mu.desc: mu.desc is published only after
	// the apply batch commits, so an entry applied in the same batch as a
	// split or membership change would otherwise see the old descriptor
	// (and replicas that batch differently would disagree).
	appliedDesc *metapb.TabletDescriptor
	proposals   map[uint64]*proposal
	// reads waiting for their ReadIndex response, by request context.
	readBatches map[uint64]readBatch
	// reads whose index is known, waiting for apply to reach it.
	readsWaitingApply []indexedRead
	readSeq           uint64
	idleTicks         int
	ticksSinceTrunc   int
	// ingestLogBytes counts SST bytes applied since the log was last
	// truncated (worker only): ingest entries are megabytes each, so the
	// log is truncated after them instead of after RaftLogTruncateEntries.
	ingestLogBytes uint64
	// blocked is set while applying waits for a staged file or its ingest
	// off the worker (staged.go). Worker only.
	blocked *blockedApply
	// ingested is the index of an ingest entry whose file ingestAsync
	// ingested, to apply next (worker only).
	ingested uint64
	// ingestApplied: an ingest entry applied in the current Ready, so the
	// log is truncated right after it (worker only). Waiting for the next
	// tick is not enough: a follower that quiesced in the same Ready (its
	// leader's quiesce heartbeat arrived with the commit) never ticks.
	ingestApplied     bool
	pendingConfChange bool
	// closeInFlight: the closed timestamp of this leader's last close
	// proposal, made at closeInFlightAt (worker only).
	closeInFlight   int64
	closeInFlightAt time.Time
	// inboundSnapshot is the SST built from a received snapshot, keyed by
	// the snapshot index, until the worker installs it.
	inboundSnapshot map[uint64]string
	// pendingCheck is a consistency check applied in the current apply
	// call, which ended right after it (consistency.go). Worker only.
	pendingCheck *checksumTask
}

// inbox collects work for the worker; swapped out whole under replica.mu.
type inbox struct {
	msgs  []inboundMsg
	props []*proposal
	reads []*readRequest
	admin []func(*replica)
	// checks are admin work that wakes no quiesced group (checkOnWorker).
	checks []func(*replica)
}

type inboundMsg struct {
	msg     raftpb.Message
	quiesce bool
}

func (b *inbox) empty() bool {
	return len(b.msgs) == 0 && len(b.props) == 0 && len(b.reads) == 0 && len(b.admin) == 0 && len(b.checks) == 0
}

// setReplicaID changes the ID of an uninitialized replica that a split or
// bootstrap gives state to. Inbound traffic reads the ID under r.mu. Worker
// only.
func (r *replica) setReplicaID(id uint64) {
	r.mu.Lock()
	r.replicaID = id
	r.mu.Unlock()
}

// descriptor returns the current descriptor (nil if uninitialized).
func (r *replica) descriptor() *metapb.TabletDescriptor {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.desc
}

// leaderError builds a NotLeader error with the best hint this replica has.
func (r *replica) leaderErrorLocked() error {
	var leaderStore uint64
	if r.mu.leaderID != 0 {
		leaderStore = r.mu.peers[r.mu.leaderID]
	}
	addr := ""
	if leaderStore != 0 {
		addr, _ = r.s.opts.Resolver.Resolve(leaderStore)
	}
	return errs.NotLeader(r.tabletID, leaderStore, addr)
}

// containsKey reports whether key lies in desc's range.
func containsKey(desc *metapb.TabletDescriptor, key []byte) bool {
	if bytes.Compare(key, desc.StartKey) < 0 {
		return false
	}
	return len(desc.EndKey) == 0 || bytes.Compare(key, desc.EndKey) < 0
}

// rangesOverlap reports whether [s1,e1) and [s2,e2) intersect (empty end:
// unbounded).
func rangesOverlap(s1, e1, s2, e2 []byte) bool {
	if len(e1) != 0 && bytes.Compare(e1, s2) <= 0 {
		return false
	}
	if len(e2) != 0 && bytes.Compare(e2, s1) <= 0 {
		return false
	}
	return true
}

// confStateFromDesc derives raft's membership from a descriptor's roles.
func confStateFromDesc(desc *metapb.TabletDescriptor) raftpb.ConfState {
	var cs raftpb.ConfState
	joint := false
	for _, rep := range desc.Replicas {
		if rep.Role == metapb.ReplicaRole_VOTER_INCOMING || rep.Role == metapb.ReplicaRole_VOTER_OUTGOING {
			joint = true
		}
	}
	for _, rep := range desc.Replicas {
		switch rep.Role {
		case metapb.ReplicaRole_VOTER:
			cs.Voters = append(cs.Voters, rep.ReplicaId)
			if joint {
				cs.VotersOutgoing = append(cs.VotersOutgoing, rep.ReplicaId)
			}
		case metapb.ReplicaRole_VOTER_INCOMING:
			cs.Voters = append(cs.Voters, rep.ReplicaId)
		case metapb.ReplicaRole_VOTER_OUTGOING:
			cs.VotersOutgoing = append(cs.VotersOutgoing, rep.ReplicaId)
		case metapb.ReplicaRole_LEARNER:
			cs.Learners = append(cs.Learners, rep.ReplicaId)
		}
	}
	cs.AutoLeave = joint
	return cs
}

// replicaInDesc finds this store's replica in desc.
func replicaOnStore(desc *metapb.TabletDescriptor, storeID uint64) *metapb.Replica {
	for _, rep := range desc.Replicas {
		if rep.StoreId == storeID {
			return rep
		}
	}
	return nil
}

// history describes the replica's raft log bounds and recent lifecycle
// events, for the log line before a panic. Worker only.
func (r *replica) history() string {
	return fmt.Sprintf("applied %d, log truncated at %d; events:\n%s", r.applied.Index, r.storage.Truncated().Index, r.s.TabletEvents(r.tabletID))
}

func (r *replica) newRawNode() error {
	c := &raft.Config{
		ID:                        r.replicaID,
		ElectionTick:              r.s.opts.ElectionTicks,
		HeartbeatTick:             r.s.opts.HeartbeatTicks,
		Storage:                   r.storage,
		Applied:                   r.applied.Index,
		MaxSizePerMsg:             r.s.opts.MaxSizePerMsg,
		MaxInflightMsgs:           r.s.opts.MaxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		Logger:                    raftLogger{l: r.log, history: r.history},
	}
	raw, err := raft.NewRawNode(c)
	if err != nil {
		return err
	}
	r.raw = raw
	return nil
}
