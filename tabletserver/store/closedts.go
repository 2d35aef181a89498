package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/hlc"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// Closed timestamps (docs/decisions.md, "Closed timestamps").
//
// A tablet's closed timestamp lives in its applied state and moves only
// by applying raft entries: every command carries its proposer's promise
// (RaftCommand.closed_timestamp), apply adopts the largest one while the
// tablet is not frozen for a merge, and apply gives every command a commit
// timestamp above the closed timestamp adopted so far. So once a replica
// applied up to closed timestamp C, every entry it has not applied commits
// above C, whoever leads: a read at ts <= C on that replica (leader or
// follower) sees exactly the versions with timestamp <= ts, and always
// will. No clock and no lease is trusted for this.
//
// The closed timestamp advances (1) on every proposal, by
// ClosedTimestampTarget behind the leader's clock, and (2) on demand: a
// read, or WaitReadableAt, at ts above the replica's closed timestamp asks
// the leader to close ts (a follower asks through a raft MsgReadIndex
// whose context is closeRequestPrefix+ts; the leader proposes an empty
// command carrying the closed timestamp) and waits until it applied.
// Idle and quiesced tablets cost nothing until someone reads at a
// timestamp they have not closed.

// closeRequestPrefix marks a follower's MsgReadIndex as a request to close
// a timestamp (followed by the timestamp, 8 bytes big-endian). The leader
// takes it instead of stepping it into raft.
const closeRequestPrefix = "shale-close:"

// closedWaiter is a read waiting for the closed timestamp to reach ts.
type closedWaiter struct {
	ts   int64
	done chan struct{}
}

// setClosedLocked publishes an applied closed timestamp and releases the
// reads waiting for it. r.mu held.
func (r *replica) setClosedLocked(closed int64) {
	if closed <= r.mu.closed {
		return
	}
	r.mu.closed = closed
	keep := r.mu.closedWaiters[:0]
	for _, w := range r.mu.closedWaiters {
		if w.ts <= closed {
			close(w.done)
			continue
		}
		keep = append(keep, w)
	}
	clear(r.mu.closedWaiters[len(keep):])
	r.mu.closedWaiters = keep
}

// adoptClosed raises the applied closed timestamp to the command's
// promise. A tablet frozen for a merge closes nothing more: the merged
// tablet takes over the source's last closed timestamp (merge.go). A
// promise beyond the command's own timestamp plus the maximum clock offset
// it carries is ignored (deterministically), so no entry can push the
// tablet's timestamps into the far future. Worker only.
func (r *replica) adoptClosed(cmd *raftcmdpb.RaftCommand) {
	c := cmd.ClosedTimestamp
	if c <= r.applied.ClosedTimestamp || r.applied.MergingInto != 0 {
		return
	}
	if newApplyBound(cmd).check(c) != nil {
		return
	}
	r.applied.ClosedTimestamp = c
}

// closedPromise is what a proposal made at clock reading ts promises.
func (s *Store) closedPromise(ts int64) int64 {
	return max(ts-s.opts.ClosedTimestampTarget.Microseconds(), 0)
}

// checkReadTimestamp refuses a read timestamp that is negative or beyond
// this store's clock plus the maximum offset: closing it would push the
// tablet's commit timestamps into the future.
func (s *Store) checkReadTimestamp(ts int64) error {
	if ts <= 0 {
		return errs.InvalidArgument("read timestamp %d must be positive", ts)
	}
	return s.clock.Check(ts)
}

// closeRetry is how long a reader waits for a requested close before it
// asks again (the request or its entry may have been lost with a leader).
func (s *Store) closeRetry() time.Duration {
	return time.Duration(s.opts.ElectionTicks) * s.opts.TickInterval
}

// waitClosed returns once this replica's closed timestamp is at least ts,
// asking the tablet's leader to close ts meanwhile.
func (r *replica) waitClosed(ctx context.Context, ts int64) error {
	r.mu.Lock()
	switch {
	case r.mu.destroyed:
		r.mu.Unlock()
		return errs.TabletNotFound(r.tabletID, r.s.opts.StoreID)
	case r.mu.closed >= ts:
		r.mu.Unlock()
		return nil
	case r.mu.mergingInto != 0:
		// Frozen: it closes nothing more until the merge ends.
		merging := r.mu.mergingInto
		r.mu.Unlock()
		return errs.ServerBusy(fmt.Sprintf("tablet %d is being merged into tablet %d; read at timestamp %d from the merged tablet", r.tabletID, merging, ts), 200)
	}
	w := &closedWaiter{ts: ts, done: make(chan struct{})}
	r.mu.closedWaiters = append(r.mu.closedWaiters, w)
	r.mu.Unlock()
	r.s.metrics.closedWaits.Inc()

	ctx, cancel := r.s.requestContext(ctx)
	defer cancel()
	// A poll, not a decision: real time (Options.Clock's doc).
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return nil
		case <-t.C:
			if r.isDestroyed() {
				r.dropClosedWaiter(w)
				return errs.TabletNotFound(r.tabletID, r.s.opts.StoreID)
			}
			r.askClose(ts)
			t.Reset(r.s.closeRetry())
		case <-ctx.Done():
			r.dropClosedWaiter(w)
			return errs.ServerBusy(fmt.Sprintf("tablet %d: timestamp %d was not closed in time (%v)", r.tabletID, ts, ctx.Err()), 100)
		case <-r.s.stopper.ShouldQuiesce():
			r.dropClosedWaiter(w)
			return ErrClosed
		}
	}
}

func (r *replica) isDestroyed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.destroyed
}

func (r *replica) dropClosedWaiter(w *closedWaiter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.mu.closedWaiters {
		if x == w {
			r.mu.closedWaiters = append(r.mu.closedWaiters[:i], r.mu.closedWaiters[i+1:]...)
			return
		}
	}
}

// askClose queues a request to close ts for the worker.
func (r *replica) askClose(ts int64) {
	r.mu.Lock()
	if r.mu.destroyed {
		r.mu.Unlock()
		return
	}
	r.mu.inbox.admin = append(r.mu.inbox.admin, func(r *replica) { r.requestClose(ts) })
	r.mu.Unlock()
	r.s.enqueue(r.tabletID)
}

// requestClose makes the tablet close ts: the leader proposes a close
// command; a follower forwards the request to its leader. Worker only.
func (r *replica) requestClose(ts int64) {
	if r.raw == nil || ts <= r.applied.ClosedTimestamp {
		return
	}
	st := r.raw.BasicStatus()
	if st.RaftState == raft.StateLeader {
		r.proposeClose(ts)
		return
	}
	if st.Lead == raft.None {
		return // asked again after closeRetry
	}
	r.raw.ReadIndex(binary.BigEndian.AppendUint64([]byte(closeRequestPrefix), uint64(ts)))
}

// closeRequest decodes a follower's request to close a timestamp.
func closeRequest(m *raftpb.Message) (int64, bool) {
	if m.Type != raftpb.MsgReadIndex || len(m.Entries) != 1 {
		return 0, false
	}
	d := m.Entries[0].Data
	if len(d) != len(closeRequestPrefix)+8 || !bytes.HasPrefix(d, []byte(closeRequestPrefix)) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(d[len(closeRequestPrefix):])), true
}

// proposeClose proposes an empty command that closes at least ts: up to
// the leader's clock reading, so that stale reads that follow are served
// at once for a while. (Writes in flight whose proposal timestamps it
// passes commit just above it: harmless, there are no transactions to
// restart.) Concurrent requests share one proposal. Worker only.
func (r *replica) proposeClose(ts int64) {
	now, err := r.s.clock.Now()
	if err != nil {
		return
	}
	// Capped where apply accepts it: the command's timestamp plus the
	// offset it records (adoptClosed).
	c := min(max(ts, now), hlc.LimitFrom(now, r.s.opts.MaxClockOffset))
	if c <= r.applied.ClosedTimestamp {
		return
	}
	wall := r.s.opts.Clock.Now()
	if c <= r.closeInFlight && wall.Sub(r.closeInFlightAt) < r.s.closeRetry() {
		return
	}
	// Later proposals of this leader get timestamps above c anyway.
	_ = r.s.clock.Update(c)
	p := &proposal{id: r.s.nextID.Add(1), done: make(chan applyResult, 1)}
	cmd := &raftcmdpb.RaftCommand{ProposalId: p.id, Proposer: r.s.incarnation, Timestamp: now,
		MaxClockOffsetUs: r.s.opts.MaxClockOffset.Microseconds(), ClosedTimestamp: c}
	if p.data, err = proto.Marshal(cmd); err != nil {
		return
	}
	r.proposeToRaft(p)
	r.closeInFlight, r.closeInFlightAt = c, wall
	r.s.metrics.closeProposals.Inc()
}

// readableAt waits until a read at ts on this replica is exact (see the
// top of this file) and refuses one below the history floor.
func (r *replica) readableAt(ctx context.Context, ts int64) error {
	if err := r.s.checkReadTimestamp(ts); err != nil {
		return err
	}
	if err := r.waitClosed(ctx, ts); err != nil {
		return err
	}
	r.mu.Lock()
	floor := r.mu.floor
	r.mu.Unlock()
	if ts < floor {
		return errs.ReadTooOld(r.tabletID, ts, floor)
	}
	return nil
}

// WaitReadableAt returns nil once a read at ts on this store's replica of
// the tablet sees every write with commit timestamp <= ts and no later
// write can commit at or below ts: the replica applied a closed timestamp
// >= ts. It works on followers (asking the leader to close ts if needed).
// Errors: TabletNotFound when the replica is not here, ReadTooOld when ts
// is below the tablet's history floor, InvalidArgument for a ts that is
// not positive or beyond this store's clock plus the maximum offset,
// ServerBusy when ts could not be closed in time (or the tablet is frozen
// for a merge).
func (s *Store) WaitReadableAt(ctx context.Context, tabletID uint64, ts int64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	return r.readableAt(ctx, ts)
}

// ClosedTimestamp returns the closed timestamp this store's replica of the
// tablet has applied (0 if none or no replica).
func (s *Store) ClosedTimestamp(tabletID uint64) int64 {
	r := s.getReplica(tabletID)
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.closed
}

// readReplica resolves the replica for a read: a read at a timestamp is
// served by this replica, leader or not, once it is readable there; a
// read of the latest data needs the leader.
func (s *Store) readReplica(ctx context.Context, h *kvpb.RequestHeader, ts int64) (*replica, error) {
	if ts == 0 {
		return s.readLeader(ctx, h)
	}
	r, err := s.replicaForRequest(h.GetTabletId())
	if err != nil {
		return nil, err
	}
	if err := s.checkEpoch(r.descriptor(), h); err != nil {
		return nil, err
	}
	if err := r.readableAt(ctx, ts); err != nil {
		return nil, err
	}
	if err := r.refuseIfBad(); err != nil { // a replica marked bad serves no read, at any timestamp
		return nil, err
	}
	r.mu.Lock()
	follower := !r.mu.isLeader
	r.mu.Unlock()
	if follower {
		s.metrics.followerReads.Inc()
	}
	return r, nil
}
