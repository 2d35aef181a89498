package store

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Leader leases: a leader that knows no other leader can exist serves
// reads from its applied state without a raft round (TiKV's lease read).
//
// Why no other leader can exist: replicas run raft with CheckQuorum, so a
// follower that heard from its leader ignores votes (and pre-votes) until
// an election timeout has passed since. When a quorum answers a heartbeat
// round (a ReadIndex) or acknowledges an entry, all of them heard from the
// leader after the round was sent at T, so no candidate can gather a
// majority before T + election timeout. The lease runs to T + leaseRatio ×
// election timeout, which leaves room for clock-rate differences between
// machines (monotonic clocks drift by parts per million; the margin is
// 1 − leaseRatio of the timeout).
//
// The lease is dropped, and rounds sent before the drop no longer renew
// it, when leadership or term changes, when a leader transfer starts (the
// target campaigns with a forced vote that lease-holding followers grant),
// and when a membership change applies. A restarted store has forgotten
// which leaders its replicas heard from, so for one election timeout
// after it starts it ignores vote requests (see dropsVote): without that,
// a restarted follower could hand a rival a majority inside a lease.
//
// Reads stay linearizable: every write acknowledged to a client was
// applied by the leader before the acknowledgement, and a lease is usable
// only once the leader has applied up to the commit index it was
// established at (which covers whatever earlier leaders committed).

// leaseRatio is the lease's share of the election timeout.
const leaseRatio = 0.8

// leaderLease is a replica's lease state, guarded by replica.mu.
type leaderLease struct {
	until time.Time // zero: no lease
	// index is the commit index the lease was (re)established at; lease
	// reads wait until applied reaches it.
	index uint64
	// floor: evidence from rounds sent before it does not renew.
	floor time.Time
	// renewing: a background renewal round is queued or in flight.
	renewing bool
}

func (l *leaderLease) invalidate(now time.Time) {
	*l = leaderLease{floor: now}
}

// leaseDuration is how long a quorum answer keeps the lease (zero when
// lease reads are off).
func (s *Store) leaseDuration() time.Duration {
	if s.opts.DisableLeaseReads {
		return 0
	}
	return time.Duration(leaseRatio * float64(time.Duration(s.opts.ElectionTicks)*s.opts.TickInterval))
}

// renewLease extends the lease to sent+duration: a quorum acknowledged a
// round sent at sent, and index was committed then. Worker only.
func (r *replica) renewLease(sent time.Time, index uint64) {
	d := r.s.leaseDuration()
	if d <= 0 || sent.IsZero() {
		return
	}
	st := r.raw.BasicStatus()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 {
		return
	}
	until := sent.Add(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &r.mu.lease
	if !r.mu.isLeader || r.mu.term != st.Term || sent.Before(l.floor) {
		return
	}
	if until.After(l.until) {
		l.until = until
	}
	l.index = max(l.index, index)
	l.renewing = false
}

// invalidateLease drops the lease (leader transfer, membership change).
// Worker only.
func (r *replica) invalidateLease() {
	r.mu.Lock()
	r.mu.lease.invalidate(r.s.opts.Clock.Now())
	r.mu.Unlock()
}

// expireLeaseOnTimeoutNow drops the lease when msgs hand leadership away:
// the MsgTimeoutNow target campaigns at once with a forced vote that
// lease-holding followers grant, so the lease must end before the message
// leaves. This covers every transfer, whoever asked for it (the admin API,
// a follower's forwarded MsgTransferLeader, merge recovery). Worker only.
func (r *replica) expireLeaseOnTimeoutNow(msgs []raftpb.Message) {
	for _, m := range msgs {
		if m.Type == raftpb.MsgTimeoutNow {
			r.invalidateLease()
			return
		}
	}
}

// leaseReadLocked reports whether a read may be served now without a raft
// round. When the lease is in its last third it also queues one ReadIndex
// round (answered by nobody) to renew it, so that a steady read load keeps
// its lease without stalling. r.mu held.
func (r *replica) leaseReadLocked(now time.Time) bool {
	l := &r.mu.lease
	// A tablet frozen for a merge serves no lease reads (TiKV's
	// is_merging): the merge's target may already own its range.
	if !r.mu.isLeader || r.mu.destroyed || r.mu.mergingInto != 0 || !now.Before(l.until) || r.mu.applied < l.index {
		return false
	}
	if d := r.s.leaseDuration(); !l.renewing && now.Add(d/3).After(l.until) {
		l.renewing = true
		r.mu.inbox.reads = append(r.mu.inbox.reads, &readRequest{done: make(chan error, 1)})
		r.s.enqueue(r.tabletID)
	}
	return true
}

// dropsVote reports whether an inbound vote request must be ignored: for
// one election timeout after the store started its replicas may have
// forgotten a leader whose lease they back. Leader transfers, whose
// target campaigns with the outgoing leader's blessing, pass.
func (s *Store) dropsVote(m *raftpb.Message) bool {
	if m.Type != raftpb.MsgVote && m.Type != raftpb.MsgPreVote {
		return false
	}
	if s.opts.DisableLeaseReads || string(m.Context) == campaignTransfer {
		return false
	}
	return s.opts.Clock.Since(s.startedAt) < time.Duration(s.opts.ElectionTicks)*s.opts.TickInterval
}

// campaignTransfer is the context etcd raft puts on the votes of a
// campaign started by a leader transfer.
const campaignTransfer = "CampaignTransfer"
