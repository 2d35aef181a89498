package store

import (
	"context"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/proto/transportpb"
)

func hardState(term, vote, commit uint64) raftpb.HardState {
	return raftpb.HardState{Term: term, Vote: vote, Commit: commit}
}

// startWorker starts the store's single raft goroutine (see doc.go).
func (s *Store) startWorker(ctx context.Context) error {
	return s.stopper.RunAsyncTask(ctx, "store.raft-worker", s.runWorker)
}

func (s *Store) runWorker(ctx context.Context) {
	ticker := s.opts.Clock.NewTicker(s.opts.TickInterval)
	defer ticker.Stop()
	for {
		ticked := false
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-ticker.C():
			ticked = true
		}
		if !s.runIteration(ticked) {
			return // the storage failed: see failStorage
		}
	}
}

// runIteration runs one Ready-loop iteration. It returns false when an
// engine error stopped it: the store has failed (diskspace.go) and the
// worker must stop without acknowledging anything more.
func (s *Store) runIteration(ticked bool) (ok bool) {
	s.loop.Lock()
	defer s.loop.Unlock()
	defer func() {
		if v := recover(); v != nil {
			what, err := storageFailureOf(v)
			if err == nil {
				panic(v) // a broken invariant, not the disk
			}
			s.loop.since.Store(0)
			s.loop.busy.Store(false)
			s.failStorage(what, err)
			ok = false
		}
	}()
	s.loop.busy.Store(true)
	s.loop.since.Store(s.opts.Clock.Now().UnixNano())
	if k := s.opts.Knobs; k != nil && k.InReady != nil {
		k.InReady()
	}
	s.processReady(ticked)
	if ticked {
		s.loop.ticks.Add(1)
	}
	s.loop.since.Store(0)
	s.loop.busy.Store(false)
	return true
}

// storageFailure is what fatal panics with for an error of the disk; the
// worker recovers it (runIteration) and fails the store instead of the
// process.
type storageFailure struct {
	what string
	err  error
}

// storageFailureOf recognises a storage failure in a recovered panic
// value: fatal's, or pebble's own (it panics with the error of a failed
// WAL write).
func storageFailureOf(v any) (string, error) {
	switch x := v.(type) {
	case storageFailure:
		return x.what, x.err
	case error:
		if isStorageError(x) {
			return "engine", x
		}
	}
	return "", nil
}

// commitApplyBatch commits the apply batch and runs the actions that
// must follow it under applyMu (released however the commit ends).
func (s *Store) commitApplyBatch(b *pebble.Batch, opts *pebble.WriteOptions, post []func()) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if !b.Empty() {
		if err := b.Commit(opts); err != nil {
			return err
		}
	}
	for _, f := range post {
		f()
	}
	return nil
}

type readyReplica struct {
	r         *replica
	rd        raft.Ready
	sentEarly bool // messages already sent before the fsync
}

// sendsBeforeSync reports whether rd's messages may go out before rd is
// persisted. A leader's appends and heartbeats may (the raft thesis,
// §10.2.1; etcd raft: "Messages may be sent while entries from the same
// batch are being persisted"): the leader counts its own acknowledgement
// only after the fsync, so an entry is still committed only once a quorum
// has it on disk, and the leader's fsync overlaps its followers' instead of
// preceding them. Nothing may go out early when the term or vote is being
// changed (those must be durable before anyone hears of them), and
// follower messages (acknowledgements, votes) never do. Worker only.
func (r *replica) sendsBeforeSync(rd *raft.Ready) bool {
	if len(rd.Messages) == 0 || r.raw.BasicStatus().RaftState != raft.StateLeader {
		return false
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		prev := r.storage.HardState()
		if rd.HardState.Term != prev.Term || rd.HardState.Vote != prev.Vote {
			return false
		}
	}
	for _, m := range rd.Messages {
		if m.Type != raftpb.MsgApp && m.Type != raftpb.MsgHeartbeat {
			return false
		}
	}
	return true
}

// processReady is one iteration of the Ready loop over every replica with
// work.
func (s *Store) processReady(ticked bool) {
	s.queue.Lock()
	pending := s.queue.pending
	s.queue.pending = make(map[uint64]struct{}, len(pending))
	s.queue.Unlock()

	candidates := make(map[uint64]*replica, len(pending)+len(s.awake))
	for id := range pending {
		if r := s.getReplica(id); r != nil {
			candidates[id] = r
		}
	}
	var busy map[uint64]bool
	if ticked {
		s.checkLiveness()
		busy = s.busyStores()
		for id, r := range s.awake {
			candidates[id] = r
		}
	}

	var readies []readyReplica
	for _, r := range candidates {
		if r.raw == nil {
			continue
		}
		r.drainInbox()
		if s.awake[r.tabletID] == nil && r.raw != nil {
			r.mu.Lock()
			q := r.mu.quiesced
			r.mu.Unlock()
			if !q {
				s.awake[r.tabletID] = r
			}
		}
		if ticked && s.awake[r.tabletID] != nil {
			r.tick(r.holdsRaftClock(busy))
		}
		if r.raw != nil && r.raw.HasReady() {
			rd := r.raw.Ready()
			r.expireLeaseOnTimeoutNow(rd.Messages) // before anything is sent
			readies = append(readies, readyReplica{r: r, rd: rd})
		}
	}
	if len(readies) == 0 {
		return
	}
	s.metrics.readyIterations.Inc()
	if metrics.Enabled() {
		defer observeSince(s.metrics.readyPass, time.Now())
	}

	// 1. Leaders' appends go out first, so that followers write while the
	// leader does; then snapshots, entries and hard states of every
	// replica, one batch, at most one fsync.
	early := newOutbox()
	for i := range readies {
		if rr := &readies[i]; rr.r.sendsBeforeSync(&rr.rd) {
			rr.r.collectMessages(rr.rd.Messages, early)
			rr.sentEarly = true
		}
	}
	early.send(s)
	b := s.db.NewBatch()
	sync := false
	for _, rr := range readies {
		if !raft.IsEmptySnap(rr.rd.Snapshot) {
			start := time.Now()
			if err := rr.r.installSnapshot(rr.rd.Snapshot, rr.rd.HardState); err != nil {
				s.fatal("install snapshot", err, rr.r)
			}
			s.metrics.snapshotInstall.Observe(time.Since(start).Seconds())
		}
		if err := rr.r.storage.AppendToBatch(b, rr.rd.HardState, rr.rd.Entries); err != nil {
			s.fatal("append raft entries", err, rr.r)
		}
		if rr.rd.MustSync {
			sync = true
		}
		s.metrics.entriesAppended.Add(float64(len(rr.rd.Entries)))
	}
	if !b.Empty() {
		opts := pebble.NoSync
		if sync {
			opts = pebble.Sync
			s.metrics.raftSyncs.Inc()
		}
		start := time.Now()
		if err := b.Commit(opts); err != nil {
			// A failed fsync must never be retried (fsyncgate): stop.
			s.fatal("commit raft batch", err, nil)
		}
		if sync {
			// The admission controller cuts background rates when the
			// raft log's fsyncs slow down (the disk is shared).
			d := time.Since(start)
			s.admission.ObserveLogSync(d)
			if metrics.Enabled() {
				s.metrics.logSync.Observe(d.Seconds())
			}
		}
	}
	b.Close()
	for _, rr := range readies {
		rr.r.storage.Appended(rr.rd.HardState, rr.rd.Entries)
	}

	// 2. The other messages, batched per destination store.
	out := newOutbox()
	for _, rr := range readies {
		if !rr.sentEarly {
			rr.r.collectMessages(rr.rd.Messages, out)
		}
	}
	out.send(s)

	// 3. Apply committed entries of every replica in one batch.
	// A consistency check's entry ends the batch: it is committed there
	// and the engine snapshotted at exactly that log position.
	ab := s.db.NewIndexedBatch()
	var post []func()
	for _, rr := range readies {
		ents := rr.rd.CommittedEntries
		for {
			post, ents = rr.r.applyUntilCheck(ab, ents, post)
			t := rr.r.takePendingCheck()
			if t == nil {
				break
			}
			s.commitApply(ab, post)
			post = nil
			ab = s.db.NewIndexedBatch()
			s.checks.startTask(t)
		}
	}
	s.commitApply(ab, post)

	// 4. Soft state, read states, Advance.
	for _, rr := range readies {
		r := rr.r
		if r.raw == nil { // destroyed while applying
			continue
		}
		if rr.rd.SoftState != nil || !raft.IsEmptyHardState(rr.rd.HardState) {
			r.updateLeadership(rr.rd.SoftState, rr.rd.HardState)
		}
		r.handleReadStates(rr.rd.ReadStates)
		r.raw.Advance(rr.rd)
		r.shedLeadership()
		if r.ingestApplied {
			r.ingestApplied = false
			r.maybeTruncateLog() // after the apply batch: never before the applied state
		}
		r.releaseAppliedReads()
		if r.raw.HasReady() {
			s.enqueue(r.tabletID)
		}
	}
}

// commitApply commits an apply batch, runs its post actions under
// applyMu (see doc.go) and closes it.
func (s *Store) commitApply(ab *pebble.Batch, post []func()) {
	defer ab.Close()
	if err := s.commitApplyBatch(ab, pebble.NoSync, post); err != nil {
		s.fatal("commit apply batch", err, nil)
	}
}

// fatal stops the process: the engine or disk failed in a way that makes
// continuing unsafe (a retried fsync can silently lose data).
func (s *Store) fatal(what string, err error, r *replica) {
	if r != nil {
		r.log.Error("fatal storage error", "op", what, "err", err, "history", r.history())
	} else {
		s.log.Error("fatal storage error", "op", what, "err", err)
	}
	if k := s.opts.Knobs; k != nil && k.OnFatal != nil {
		k.OnFatal(what, err)
		runtime.Goexit() // the goroutine stops here, as the process would have
	}
	if isStorageError(err) {
		// The disk, not the data: the store fails, the process stays
		// (runIteration recovers this).
		panic(storageFailure{what: what, err: err})
	}
	panic("store: " + what + ": " + err.Error())
}

// drainInbox feeds queued work into the RawNode. Worker only.
func (r *replica) drainInbox() {
	r.mu.Lock()
	in := r.mu.inbox
	r.mu.inbox = inbox{}
	wasQuiesced := r.mu.quiesced
	r.mu.Unlock()
	if in.empty() {
		return
	}
	wake := len(in.props) > 0 || len(in.reads) > 0 || len(in.admin) > 0
	for _, m := range in.msgs {
		if !m.quiesce && m.msg.Type != raftpb.MsgHeartbeatResp {
			wake = true
		}
	}
	if wake && wasQuiesced {
		r.unquiesce()
	}
	if len(in.msgs) > 0 {
		r.lastMessage.Store(r.s.opts.Clock.Now().UnixNano())
	}
	full := r.s.disk.full.Load()
	for _, m := range in.msgs {
		if full && m.msg.Type == raftpb.MsgApp && len(m.msg.Entries) > 0 {
			// A follower on a full disk takes no new entries (raft sees
			// a lost message and retries); see diskspace.go.
			continue
		}
		if m.msg.Type != raftpb.MsgHeartbeat && m.msg.Type != raftpb.MsgHeartbeatResp {
			r.idleTicks = 0
		}
		if ts, ok := closeRequest(&m.msg); ok {
			r.requestClose(ts) // a follower's, not raft's: never stepped
			continue
		}
		if r.lostAcked(&m.msg) {
			continue // raft would panic; the replica is marked bad (corruption.go)
		}
		if err := r.raw.Step(m.msg); err != nil && err != raft.ErrStepPeerNotFound {
			r.log.Debug("step failed", "type", m.msg.Type, "err", err)
		}
		if m.quiesce {
			r.maybeQuiesceFollower(m.msg)
		}
	}
	for _, p := range in.props {
		r.idleTicks = 0
		r.proposeToRaft(p)
	}
	if len(in.reads) > 0 {
		r.idleTicks = 0
		r.startReadIndex(in.reads)
	}
	for _, f := range in.admin {
		r.idleTicks = 0
		f(r)
	}
	for _, f := range in.checks {
		f(r)
	}
}

// tick advances the group's logical clock, unless hold, and considers
// quiescing it.
func (r *replica) tick(hold bool) {
	if !hold {
		r.raw.Tick()
	}
	r.idleTicks++
	r.ticksSinceTrunc++
	if r.ticksSinceTrunc >= 10 || r.ingestLogBytes >= r.truncateAfterIngestBytes() {
		r.ticksSinceTrunc = 0
		r.maybeTruncateLog()
	}
	r.expireProposals()
	r.maybeQuiesceLeader()
}

func (r *replica) unquiesce() {
	r.mu.Lock()
	r.mu.quiesced = false
	r.mu.Unlock()
	r.idleTicks = 0
	r.s.awake[r.tabletID] = r
}

func (r *replica) setQuiesced() {
	r.mu.Lock()
	r.mu.quiesced = true
	r.mu.Unlock()
	delete(r.s.awake, r.tabletID)
}

// maybeQuiesceLeader stops ticking an idle group whose followers all have
// every entry, and tells them to stop too.
func (r *replica) maybeQuiesceLeader() {
	q := r.s.opts.QuiesceAfterTicks
	if q < 0 || r.idleTicks < q || len(r.proposals) > 0 || len(r.readBatches) > 0 || len(r.readsWaitingApply) > 0 || r.pendingConfChange {
		return
	}
	st := r.raw.Status()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 || r.raw.HasReady() {
		return
	}
	last, _ := r.storage.LastIndex()
	if st.Commit != last || st.Applied != last || r.applied.Index != last {
		return
	}
	for id, pr := range st.Progress {
		if id == r.replicaID {
			continue
		}
		if pr.Match != last {
			return
		}
		if store := r.peerStore(id); store == 0 || r.s.isDead(store) {
			return
		}
	}
	msgs := map[uint64][]*transportpb.RaftMessage{}
	for id := range st.Progress {
		if id == r.replicaID {
			continue
		}
		m := raftpb.Message{Type: raftpb.MsgHeartbeat, From: r.replicaID, To: id, Term: st.Term, Commit: st.Commit}
		store := r.peerStore(id)
		msgs[store] = append(msgs[store], r.wrap(m, store, true))
	}
	for store, ms := range msgs {
		r.s.transport.SendControl(store, ms)
	}
	r.setQuiesced()
}

// maybeQuiesceFollower follows a leader's quiesce heartbeat if this replica
// has everything the leader has.
func (r *replica) maybeQuiesceFollower(m raftpb.Message) {
	st := r.raw.BasicStatus()
	last, _ := r.storage.LastIndex()
	if st.Lead != m.From || st.Term != m.Term || st.Commit != m.Commit || last != m.Commit {
		return
	}
	r.setQuiesced()
}

// startLiveness pings every peer store once per heartbeat interval so
// that quiesced followers notice a dead leader store.
func (s *Store) startLiveness(ctx context.Context) error {
	return s.every(ctx, "store.liveness", s.opts.TickInterval*time.Duration(s.opts.HeartbeatTicks), func(context.Context) {
		for _, store := range s.peerStores() {
			s.transport.Send(store, nil)
		}
	})
}

// every runs f every interval as the Stopper task name until the store
// stops. It is stop.Every with the ticks taken from Options.Clock (which
// tests step by hand) instead of real time.
func (s *Store) every(ctx context.Context, name string, interval time.Duration, f func(context.Context)) error {
	return s.stopper.RunAsyncTask(ctx, name, func(ctx context.Context) {
		t := s.opts.Clock.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
			f(ctx)
		}
	})
}

// peerStores lists the stores this store shares a tablet with.
func (s *Store) peerStores() []uint64 {
	seen := map[uint64]bool{}
	reps := s.replicaList()
	var out []uint64
	for _, r := range reps {
		r.mu.Lock()
		for _, store := range r.mu.peers {
			if store != s.opts.StoreID && !seen[store] {
				seen[store] = true
				out = append(out, store)
			}
		}
		r.mu.Unlock()
	}
	return out
}

// heard records a batch from store; only control-lane batches say whether
// its raft loop is busy (a data-lane one may have been stamped long ago).
func (s *Store) heard(store uint64, control, busy bool) {
	s.liveness.Lock()
	s.liveness.lastHeard[store] = s.opts.Clock.Now()
	if control {
		s.liveness.busy[store] = busy
	}
	s.liveness.Unlock()
}

// maxRaftStall bounds how long a store claims to be busy in one Ready
// iteration: a store stuck longer (a hung disk) is treated like a silent
// one, and its peers elect around it. CockroachDB stops a node whose disk
// stalls this long (storage.max_sync_duration, 20 s).
const maxRaftStall = 20 * time.Second

// raftBusy reports whether the Ready loop has been in one iteration for
// more than half an election timeout (and less than maxRaftStall). The
// transport stamps it on every outgoing batch, liveness pings included,
// which keep going while the loop is stuck. Half an election timeout, not
// a tick: an iteration that is merely slow (tens of milliseconds on a
// loaded machine) must not hold its peers' clocks, because a follower
// whose clock stands still also keeps rejecting votes (CheckQuorum's
// leader lease), so a busy-looking store whose replica stepped down would
// keep its groups leaderless. A stall shorter than this costs the peers at
// most half their election timeout, which elects nobody.
func (s *Store) raftBusy() bool {
	since := s.loop.since.Load()
	if since == 0 {
		return false
	}
	d := time.Duration(s.opts.Clock.Now().UnixNano() - since)
	return d > s.busyAfter() && d < maxRaftStall
}

// busyAfter is how long one Ready iteration runs before the store says
// it is busy.
func (s *Store) busyAfter() time.Duration {
	return s.opts.TickInterval * time.Duration(max(s.opts.ElectionTicks/2, 1))
}

// busyStores returns the live stores whose last batch said their raft loop
// is stuck, or nil. Worker only.
func (s *Store) busyStores() map[uint64]bool {
	s.liveness.Lock()
	defer s.liveness.Unlock()
	var out map[uint64]bool
	for store, busy := range s.liveness.busy {
		if busy && !s.liveness.dead[store] {
			if out == nil {
				out = map[uint64]bool{}
			}
			out[store] = true
		}
	}
	return out
}

// holdsRaftClock reports whether r's raft clock should stand still for
// this tick because the group cannot hear from a store that is alive but
// stuck in a long Ready iteration (an fsync of a multi-MiB entry on a slow
// disk takes seconds). A stuck store does not tick its own groups either,
// so raft time then passes at the pace of the slowest member it depends
// on. Without this a follower elects around its busy leader, and a leader
// whose followers are all busy steps down (CheckQuorum), although nobody
// failed. Holding a follower's clock only delays elections, which keeps
// leader leases safe (lease.go); a leader holds its clock only while
// busy stores leave it without a quorum, so it then also sends no
// heartbeats, which its busy followers could not answer anyway. Worker
// only.
func (r *replica) holdsRaftClock(busy map[uint64]bool) bool {
	if len(busy) == 0 {
		return false
	}
	st := r.raw.BasicStatus()
	switch st.RaftState {
	case raft.StateFollower:
		return st.Lead != raft.None && busy[r.peerStore(st.Lead)]
	case raft.StateLeader:
		// Progress holds the voters of both halves of a joint config; a
		// majority of the union is close enough to pause a clock.
		voters, live := 0, 0
		for id, pr := range r.raw.Status().Progress {
			if pr.IsLearner {
				continue
			}
			voters++
			if id == r.replicaID || !busy[r.peerStore(id)] {
				live++
			}
		}
		return live <= voters/2
	}
	return false
}

func (s *Store) isDead(store uint64) bool {
	s.liveness.Lock()
	defer s.liveness.Unlock()
	return s.liveness.dead[store]
}

// checkLiveness marks stores silent for an election timeout as dead and
// wakes the quiesced replicas that followed a leader there. Worker only.
func (s *Store) checkLiveness() {
	timeout := s.opts.TickInterval * time.Duration(s.opts.ElectionTicks)
	now := s.opts.Clock.Now()
	var newlyDead []uint64
	s.liveness.Lock()
	for store, t := range s.liveness.lastHeard {
		dead := now.Sub(t) > timeout
		if dead && !s.liveness.dead[store] {
			newlyDead = append(newlyDead, store)
		}
		s.liveness.dead[store] = dead
	}
	s.liveness.Unlock()
	if len(newlyDead) == 0 {
		return
	}
	reps := s.replicaList()
	for _, r := range reps {
		r.mu.Lock()
		q, leader := r.mu.quiesced, r.mu.peers[r.mu.leaderID]
		r.mu.Unlock()
		if !q {
			continue
		}
		for _, d := range newlyDead {
			if leader == d {
				r.unquiesce()
				break
			}
		}
	}
}

// peerStore maps a replica ID of this group to its store.
func (r *replica) peerStore(replicaID uint64) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.peers[replicaID]
}

func (r *replica) wrap(m raftpb.Message, toStore uint64, quiesce bool) *transportpb.RaftMessage {
	b, err := m.Marshal()
	if err != nil {
		r.s.fatal("marshal raft message", err, r)
	}
	return &transportpb.RaftMessage{TabletId: r.tabletID, FromStore: r.s.opts.StoreID, ToStore: toStore, Message: b, Quiesce: quiesce}
}

// outbox is one Ready pass's outgoing raft messages per destination store.
// MsgApps, which may carry many MiB, go on the transport's data lane in
// order; the rest (heartbeats, votes, responses) on its control lane, so
// that a heartbeat never waits behind a large entry long enough for the
// followers to call an election.
type outbox struct {
	data, control map[uint64][]*transportpb.RaftMessage
}

func newOutbox() outbox {
	return outbox{data: map[uint64][]*transportpb.RaftMessage{}, control: map[uint64][]*transportpb.RaftMessage{}}
}

func (o outbox) add(to uint64, typ raftpb.MessageType, m *transportpb.RaftMessage) {
	if typ == raftpb.MsgApp {
		o.data[to] = append(o.data[to], m)
	} else {
		o.control[to] = append(o.control[to], m)
	}
}

func (o outbox) send(s *Store) {
	for to, msgs := range o.data {
		s.countSent(to, msgs)
		s.transport.Send(to, msgs)
	}
	for to, msgs := range o.control {
		s.countSent(to, msgs)
		s.transport.SendControl(to, msgs)
	}
}

// countSent counts raft messages to a peer store. Worker only.
func (s *Store) countSent(to uint64, msgs []*transportpb.RaftMessage) {
	if !metrics.Enabled() {
		return
	}
	n := 0
	for _, m := range msgs {
		n += len(m.Message)
	}
	p := s.metrics.peer(to)
	p.messages.Add(float64(len(msgs)))
	p.bytes.Add(float64(n))
}

// observeSince records the time since start, in seconds.
func observeSince(o prometheus.Observer, start time.Time) {
	o.Observe(time.Since(start).Seconds())
}

// collectMessages routes outgoing raft messages; snapshots go out on their
// own stream.
func (r *replica) collectMessages(msgs []raftpb.Message, out outbox) {
	for _, m := range msgs {
		to := r.peerStore(m.To)
		if to == 0 {
			r.log.Debug("dropping message to unknown replica", "to", m.To, "type", m.Type)
			continue
		}
		if m.Type == raftpb.MsgSnap {
			r.s.sendSnapshotAsync(r, m, to)
			continue
		}
		out.add(to, m.Type, r.wrap(m, to, false))
	}
}

// updateLeadership publishes leader and term changes and fails waiters that
// can no longer be served here.
func (r *replica) updateLeadership(ss *raft.SoftState, hs raftpb.HardState) {
	r.mu.Lock()
	if ss != nil || (hs.Term != 0 && hs.Term != r.mu.term) {
		r.mu.lease.invalidate(r.s.opts.Clock.Now())
	}
	wasLeader := r.mu.isLeader
	if ss != nil {
		r.mu.leaderID = ss.Lead
		r.mu.isLeader = ss.RaftState == raft.StateLeader
	}
	if hs.Term != 0 {
		r.mu.term = hs.Term
	}
	isLeader, term, lead := r.mu.isLeader, r.mu.term, r.mu.leaderID
	var err error
	if !isLeader {
		err = r.leaderErrorLocked()
	}
	r.mu.Unlock()
	// With the term, so an operator can match it to what PD was told.
	if isLeader != wasLeader {
		if isLeader {
			r.log.Info("replica became leader", "term", term)
			r.s.metrics.leadershipsWon.Inc()
		} else {
			r.log.Info("replica is no longer leader", "term", term, "leader_replica", lead)
		}
	}
	if !isLeader && len(r.readBatches) > 0 {
		for ctx, batch := range r.readBatches {
			for _, rd := range batch.reads {
				rd.finish(err)
			}
			delete(r.readBatches, ctx)
		}
	}
	if ss != nil {
		// A conf change proposed under an earlier leadership may never
		// commit; from here on raft's own pending-conf-change guard (it
		// holds new changes until everything up to the election is
		// applied) is what protects us, so our flag must not stay stuck.
		r.pendingConfChange = false
	}
	if ss != nil && ss.RaftState == raft.StateLeader {
		r.s.awake[r.tabletID] = r
	}
}
