package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// proposal is a command waiting to be applied.
type proposal struct {
	id       uint64
	data     []byte               // a marshalled RaftCommand, or
	cc       *raftpb.ConfChangeV2 // a membership change
	proposed time.Time
	done     chan applyResult
}

type applyResult struct {
	resp proto.Message
	err  error
}

func (p *proposal) finish(res applyResult) {
	select {
	case p.done <- res:
	default:
	}
}

// propose replicates cmd through raft and waits until this replica applied
// it. Only the leader accepts proposals.
func (r *replica) propose(ctx context.Context, cmd *raftcmdpb.RaftCommand) (proto.Message, error) {
	p := &proposal{id: r.s.nextID.Add(1), done: make(chan applyResult, 1)}
	cmd.ProposalId, cmd.Proposer = p.id, r.s.incarnation
	ts, err := r.s.clock.Now()
	if err != nil {
		return nil, err
	}
	cmd.Timestamp = ts
	// Every write carries the leader's closed-timestamp promise
	// (closedts.go), so a busy tablet's closes cost nothing extra.
	cmd.ClosedTimestamp = r.s.closedPromise(ts)
	// Apply checks client-chosen timestamps against this (clock.go).
	cmd.MaxClockOffsetUs = r.s.opts.MaxClockOffset.Microseconds()
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	p.data = data
	return r.submit(ctx, p)
}

// newIncarnation returns a random nonzero 64-bit store incarnation.
// Uniqueness, not secrecy, is needed: math/rand/v2's generator is seeded
// from the OS and cannot fail.
func newIncarnation() uint64 {
	for {
		if v := rand.Uint64(); v != 0 {
			return v
		}
	}
}

// takeProposal removes and returns the waiter of an applied entry, if this
// run of this store proposed it. Worker only.
func (r *replica) takeProposal(id, proposer uint64) *proposal {
	if id == 0 || proposer != r.s.incarnation {
		return nil
	}
	p := r.proposals[id]
	delete(r.proposals, id)
	return p
}

// submit queues p for the worker and waits for its result.
func (r *replica) submit(ctx context.Context, p *proposal) (proto.Message, error) {
	r.mu.Lock()
	switch {
	case r.mu.destroyed:
		r.mu.Unlock()
		return nil, errs.TabletNotFound(r.tabletID, r.s.opts.StoreID)
	case !r.mu.isLeader:
		err := r.leaderErrorLocked()
		r.mu.Unlock()
		return nil, err
	}
	r.mu.inbox.props = append(r.mu.inbox.props, p)
	r.mu.Unlock()
	r.s.enqueue(r.tabletID)
	r.s.metrics.proposals.Inc()

	ctx, cancel := r.s.requestContext(ctx)
	defer cancel()
	select {
	case res := <-p.done:
		return res.resp, res.err
	case <-ctx.Done():
		return nil, errs.Ambiguous("tablet %d: %v waiting for the write to apply", r.tabletID, ctx.Err())
	case <-r.s.stopper.ShouldQuiesce():
		return nil, errs.Ambiguous("tablet %d: store closed before the write applied", r.tabletID)
	}
}

// proposeToRaft hands one proposal to the RawNode. Worker only.
func (r *replica) proposeToRaft(p *proposal) {
	var err error
	if p.cc != nil {
		if r.pendingConfChange || (len(r.raw.Status().Config.Voters[1]) > 0 && !p.cc.LeaveJoint()) {
			p.finish(applyResult{err: errs.ServerBusy("another membership change of this tablet is in progress", 500)})
			return
		}
		if err := r.checkPromotions(p.cc); err != nil {
			p.finish(applyResult{err: err})
			return
		}
		err = r.raw.ProposeConfChange(*p.cc)
		if err == nil {
			r.pendingConfChange = true
		}
	} else {
		err = r.raw.Propose(p.data)
	}
	if err != nil {
		if err == raft.ErrProposalDropped {
			r.mu.Lock()
			err = r.leaderErrorLocked()
			r.mu.Unlock()
		}
		p.finish(applyResult{err: err})
		return
	}
	p.proposed = r.s.opts.Clock.Now()
	r.proposals[p.id] = p
}

// maxPromoteLag is how many committed entries a learner may still lack
// when it is promoted to voter: it has the rest of the log by then, and
// catches up from it within a few appends.
const maxPromoteLag = 64

// checkPromotions refuses a change that makes a learner a voter before the
// learner has caught up with the leader's log (CockroachDB sends a learner
// its snapshot before promoting it; TiKV's PD waits while it is pending).
// A promoted voter that has no data yet counts against the quorum at once:
// kvnemesis promoted two learners that could never be created on their
// stores, and the joint configuration that followed had no quorum left.
// PD retries the step until the learner caught up or its operator times
// out. Worker only.
func (r *replica) checkPromotions(cc *raftpb.ConfChangeV2) error {
	st := r.raw.Status()
	for _, ch := range cc.Changes {
		if ch.Type != raftpb.ConfChangeAddNode {
			continue
		}
		if _, learner := st.Config.Learners[ch.NodeID]; !learner {
			continue
		}
		pr, ok := st.Progress[ch.NodeID]
		if !ok || pr.State != tracker.StateReplicate || pr.Match == 0 || pr.Match+maxPromoteLag < st.Commit || r.s.isDead(r.peerStore(ch.NodeID)) {
			match := uint64(0)
			if ok {
				match = pr.Match
			}
			return errs.ServerBusy(fmt.Sprintf("tablet %d: learner %d has not caught up (has index %d of %d); not promoting it yet", r.tabletID, ch.NodeID, match, st.Commit), 500)
		}
	}
	return nil
}

// expireProposals gives up on proposals that have waited longer than the
// proposal timeout; their callers already returned Ambiguous. Worker only.
func (r *replica) expireProposals() {
	if len(r.proposals) == 0 {
		return
	}
	cutoff := r.s.opts.Clock.Now().Add(-r.s.opts.ProposalTimeout)
	for id, p := range r.proposals {
		if p.proposed.Before(cutoff) {
			p.finish(applyResult{err: errs.Ambiguous("tablet %d: proposal timed out", r.tabletID)})
			delete(r.proposals, id)
			if p.cc != nil {
				// Raft may have dropped the change without a word: it
				// turns a conf change into an empty entry while an
				// earlier one may be unapplied (a new leader, until it
				// applied its predecessor's log) or the joint state does
				// not fit. Nothing would clear the flag then, and every
				// later change of the tablet would be refused until the
				// leadership moved. Raft's own guard still keeps changes
				// one at a time if this one is merely slow.
				r.pendingConfChange = false
			}
		}
	}
}

// readRequest waits for a linearizable read point: the leader confirmed it
// was still leader at some commit index and this replica applied it.
type readRequest struct {
	done chan error
}

// readBatch is the reads one ReadIndex request covers, and when it was
// sent (its answer renews the leader lease from then).
type readBatch struct {
	reads []*readRequest
	sent  time.Time
}

func (rr *readRequest) finish(err error) {
	select {
	case rr.done <- err:
	default:
	}
}

type indexedRead struct {
	index uint64
	reads []*readRequest
}

// readIndex blocks until a linearizable read may be served locally.
func (r *replica) readIndex(ctx context.Context) error {
	rr := &readRequest{done: make(chan error, 1)}
	r.mu.Lock()
	switch {
	case r.mu.destroyed:
		r.mu.Unlock()
		return errs.TabletNotFound(r.tabletID, r.s.opts.StoreID)
	case !r.mu.isLeader:
		err := r.leaderErrorLocked()
		r.mu.Unlock()
		return err
	case r.leaseReadLocked(r.s.opts.Clock.Now()):
		r.mu.Unlock()
		r.s.metrics.leaseReads.Inc()
		return nil
	}
	r.mu.inbox.reads = append(r.mu.inbox.reads, rr)
	r.mu.Unlock()
	r.s.enqueue(r.tabletID)
	ctx, cancel := r.s.requestContext(ctx)
	defer cancel()
	select {
	case err := <-rr.done:
		return err
	case <-r.s.stopper.ShouldQuiesce():
		return ErrClosed
	case <-ctx.Done():
		return errs.ServerBusy(fmt.Sprintf("tablet %d: read index timed out", r.tabletID), 100)
	}
}

// startReadIndex asks raft for one read index covering every queued read
// (reads batch naturally). Worker only.
func (r *replica) startReadIndex(reads []*readRequest) {
	if r.raw.BasicStatus().RaftState != raft.StateLeader {
		r.mu.Lock()
		err := r.leaderErrorLocked()
		r.mu.Unlock()
		for _, rd := range reads {
			rd.finish(err)
		}
		return
	}
	r.readSeq++
	ctx := binary.BigEndian.AppendUint64(nil, r.readSeq)
	r.readBatches[r.readSeq] = readBatch{reads: reads, sent: r.s.opts.Clock.Now()}
	r.raw.ReadIndex(ctx)
}

// handleReadStates turns confirmed read indexes into waits on apply.
func (r *replica) handleReadStates(states []raft.ReadState) {
	for _, rs := range states {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(rs.RequestCtx)
		batch, ok := r.readBatches[seq]
		if !ok {
			continue
		}
		delete(r.readBatches, seq)
		// A quorum answered a heartbeat sent after batch.sent.
		r.renewLease(batch.sent, rs.Index)
		r.readsWaitingApply = append(r.readsWaitingApply, indexedRead{index: rs.Index, reads: batch.reads})
	}
}

// releaseAppliedReads finishes reads whose index has been applied.
func (r *replica) releaseAppliedReads() {
	if len(r.readsWaitingApply) == 0 {
		return
	}
	keep := r.readsWaitingApply[:0]
	for _, ir := range r.readsWaitingApply {
		if ir.index <= r.applied.Index {
			for _, rd := range ir.reads {
				rd.finish(nil)
			}
			continue
		}
		keep = append(keep, ir)
	}
	r.readsWaitingApply = keep
}

// failAllWaiters fails every proposal (with propErr: a proposal may still
// have committed, so this should be an ambiguous error) and every read
// (with readErr) of the replica. Safe to call only when the worker is not
// running or from the worker.
func (r *replica) failAllWaiters(propErr, err error) {
	for id, p := range r.proposals {
		p.finish(applyResult{err: propErr})
		delete(r.proposals, id)
	}
	for seq, batch := range r.readBatches {
		for _, rd := range batch.reads {
			rd.finish(err)
		}
		delete(r.readBatches, seq)
	}
	for _, ir := range r.readsWaitingApply {
		for _, rd := range ir.reads {
			rd.finish(err)
		}
	}
	r.readsWaitingApply = nil
	r.mu.Lock()
	in := r.mu.inbox
	r.mu.inbox = inbox{}
	r.mu.Unlock()
	for _, p := range in.props {
		// Never proposed: nothing can have applied.
		p.finish(applyResult{err: err})
	}
	for _, rd := range in.reads {
		rd.finish(err)
	}
}

// runOnWorker runs f on the raft worker with the replica's RawNode and waits
// for it. A quiesced group wakes: f may give raft work.
func (r *replica) runOnWorker(ctx context.Context, f func(*replica) error) error {
	return r.onWorker(ctx, true, f)
}

// checkOnWorker is runOnWorker for a check that reads the replica (or
// destroys it) and gives raft nothing to do: a quiesced group stays
// asleep. Waking one for a look would set its followers' raft clocks
// going while their leader sleeps; when two followers of a group wake
// together (the replica-GC round of each store checks every follower),
// they elect a new leader an election timeout later, for nothing.
func (r *replica) checkOnWorker(ctx context.Context, f func(*replica) error) error {
	return r.onWorker(ctx, false, f)
}

func (r *replica) onWorker(ctx context.Context, wake bool, f func(*replica) error) error {
	done := make(chan error, 1)
	r.mu.Lock()
	if r.mu.destroyed {
		r.mu.Unlock()
		return errs.TabletNotFound(r.tabletID, r.s.opts.StoreID)
	}
	run := func(r *replica) {
		if r.raw == nil {
			done <- errs.TabletNotFound(r.tabletID, r.s.opts.StoreID)
			return
		}
		done <- f(r)
	}
	if wake {
		r.mu.inbox.admin = append(r.mu.inbox.admin, run)
	} else {
		r.mu.inbox.checks = append(r.mu.inbox.checks, run)
	}
	r.mu.Unlock()
	r.s.enqueue(r.tabletID)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-r.s.stopper.ShouldQuiesce():
		return ErrClosed
	}
}
