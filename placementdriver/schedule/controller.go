package schedule

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/shaledb/shale/proto/pdpb"
)

// Errors returned by Controller.AddOperator. None is retryable as is: the
// checkers and schedulers propose again on a later round.
var (
	// ErrOperatorExists: the tablet (or a related one) already has an
	// operator of the same or higher priority.
	ErrOperatorExists = errors.New("schedule: tablet already has an operator")
	// ErrKindLimit: the operator kind's concurrency limit is reached.
	ErrKindLimit = errors.New("schedule: operator kind limit reached")
	// ErrSnapshotLimit: an AddLearner step would exceed
	// MaxSnapshotsPerStore on its receiving or sending store (admin
	// operators are exempt).
	ErrSnapshotLimit = errors.New("schedule: store snapshot limit reached")
	// ErrInvalidOperator: nil operator or no steps.
	ErrInvalidOperator = errors.New("schedule: invalid operator")
)

// maxEnded bounds the operators kept for TakeEnded.
const maxEnded = 4096

// Influence is the effect of unfinished operator steps on a store's counts.
type Influence struct {
	Tablets, Leaders int
}

// OperatorView is what checkers and schedulers read from the operator
// controller: which tablets are busy, and how much room is left.
type OperatorView interface {
	// HasOperator reports whether the tablet (or a merge it belongs to) has
	// a running operator.
	HasOperator(tabletID uint64) bool
	// KindSlots is how many more operators of the kind may start (a large
	// number when unlimited).
	KindSlots(kind OpKind) int
	// SnapshotsInFlight is the number of unfinished AddLearner steps that
	// touch the store (as receiver or sender).
	SnapshotsInFlight(storeID uint64) int
	// Influence is the pending effect of unfinished steps on the store.
	Influence(storeID uint64) Influence
	// OperatorKind returns the kind of the tablet's running operator.
	OperatorKind(tabletID uint64) (OpKind, bool)
	// RecentLeaderMove reports which balancing scheduler (balance-leader
	// or hot) moved the tablet's leader less than Config.LeaderMoveCooldown
	// ago, if one did.
	RecentLeaderMove(tabletID uint64) (OpKind, bool)
}

// Controller tracks running operators, at most one per tablet. It is the
// only stateful piece of the library; like Cluster it is not safe for
// concurrent use (the PD server serialises calls under its lock).
type Controller struct {
	cfg       Config
	byTablet  map[uint64]*Operator // tablet ID (and Related IDs) → operator
	running   map[uint64]*Operator // operator ID → operator
	kindCount [numKinds]int
	snapshots map[uint64]int
	influence map[uint64]Influence
	nextID    uint64
	ended     []*Operator
	stats     [numKinds][numStatuses]int // per kind, per status: how many ended so
	// storeLimits overrides cfg.MaxSnapshotsPerStore per store.
	storeLimits map[uint64]int
	// leaderMoved holds when a balancing scheduler last moved each
	// tablet's leader, for the tablets moved within the cooldown; now is
	// the time of the current round (Expire).
	leaderMoved map[uint64]leaderMove
	now         time.Time
	// replan holds, per tablet, the request of a replannable operator
	// that ended stale, until it is planned again or lapses.
	replan map[uint64]pendingReplan
}

// pendingReplan is a stale operator's request waiting to be planned again
// (Operator.Replan).
type pendingReplan struct {
	replan  func(*Tablet) *Operator
	replans int       // including this one
	until   time.Time // the request lapses then
}

// maxReplans bounds how often one request is planned again: a tablet
// whose membership keeps changing under it gets no endless retries.
const maxReplans = 3

var _ OperatorView = (*Controller)(nil)

// NewController returns a Controller; cfg is completed with EnsureDefaults.
func NewController(cfg Config) *Controller {
	return &Controller{
		cfg:         cfg.EnsureDefaults(),
		byTablet:    map[uint64]*Operator{},
		running:     map[uint64]*Operator{},
		snapshots:   map[uint64]int{},
		influence:   map[uint64]Influence{},
		leaderMoved: map[uint64]leaderMove{},
		replan:      map[uint64]pendingReplan{},
	}
}

// HasOperator implements OperatorView.
func (c *Controller) HasOperator(tabletID uint64) bool {
	_, ok := c.byTablet[tabletID]
	return ok
}

// KindSlots implements OperatorView.
func (c *Controller) KindSlots(kind OpKind) int {
	l := c.cfg.limit(kind)
	if l < 0 {
		return 1 << 30
	}
	return max(0, l-c.kindCount[kind])
}

// SnapshotsInFlight implements OperatorView.
func (c *Controller) SnapshotsInFlight(storeID uint64) int { return c.snapshots[storeID] }

// Influence implements OperatorView.
func (c *Controller) Influence(storeID uint64) Influence { return c.influence[storeID] }

// OperatorKind implements OperatorView.
func (c *Controller) OperatorKind(tabletID uint64) (OpKind, bool) {
	op, ok := c.byTablet[tabletID]
	if !ok {
		return 0, false
	}
	return op.Kind, true
}

// leaderMove is a balancing scheduler's leader transfer.
type leaderMove struct {
	at   time.Time
	kind OpKind
}

// RecentLeaderMove implements OperatorView.
func (c *Controller) RecentLeaderMove(tabletID uint64) (OpKind, bool) {
	m, ok := c.leaderMoved[tabletID]
	if !ok || c.now.Sub(m.at) >= c.cfg.LeaderMoveCooldown {
		return 0, false
	}
	return m.kind, true
}

// Operator returns the running operator of a tablet, or nil.
func (c *Controller) Operator(tabletID uint64) *Operator { return c.byTablet[tabletID] }

// Operators lists the running operators ordered by ID.
func (c *Controller) Operators() []*Operator {
	out := make([]*Operator, 0, len(c.running))
	for _, op := range c.running {
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Len is the number of running operators.
func (c *Controller) Len() int { return len(c.running) }

// TakeEnded returns the operators that ended (finished, timed out,
// cancelled) since the last call, for logging and metrics.
func (c *Controller) TakeEnded() []*Operator {
	out := c.ended
	c.ended = nil
	return out
}

// EndedCount is how many operators of the kind ended with the status.
func (c *Controller) EndedCount(kind OpKind, status OpStatus) int { return c.stats[kind][status] }

// AddOperator starts tracking op. It fails when the tablet already has an
// operator of equal or higher priority (a lower-priority one is cancelled
// and replaced), when the kind's concurrency limit is reached, or when an
// AddLearner step would exceed the snapshot limit of a store.
func (c *Controller) AddOperator(op *Operator, now time.Time) error {
	if op == nil || len(op.Steps) == 0 {
		return ErrInvalidOperator
	}
	var replace []*Operator
	for _, id := range append([]uint64{op.TabletID}, op.Related...) {
		if old, ok := c.byTablet[id]; ok {
			if old.Kind.priority() >= op.Kind.priority() {
				return fmt.Errorf("%w: tablet %d has %s operator %d", ErrOperatorExists, id, old.Kind, old.ID)
			}
			replace = append(replace, old)
		}
	}
	if c.KindSlots(op.Kind) <= 0 {
		return fmt.Errorf("%w: %s", ErrKindLimit, op.Kind)
	}
	if op.Kind != KindAdmin {
		need := map[uint64]int{}
		for _, s := range op.Steps {
			if al, ok := s.(AddLearner); ok {
				need[al.Store]++
				if al.Sender != 0 {
					need[al.Sender]++
				}
			}
		}
		for store, n := range need {
			if c.snapshots[store]+n > c.snapshotLimit(store) {
				return fmt.Errorf("%w: store %d", ErrSnapshotLimit, store)
			}
		}
	}
	for _, old := range replace {
		c.end(old, OpCancelled, now)
	}
	c.nextID++
	if op.ID == 0 {
		op.ID = c.nextID
	}
	if op.Created.IsZero() {
		op.Created = now
	}
	if op.Timeout == 0 {
		op.Timeout = c.cfg.Timeout
		if op.onlyLeaderSteps() {
			op.Timeout = c.cfg.LeaderTimeout
		}
	}
	op.current, op.status = 0, OpRunning
	c.running[op.ID] = op
	c.byTablet[op.TabletID] = op
	if op.Kind == KindAdmin {
		delete(c.replan, op.TabletID) // a newer request replaces a pending one
	}
	for _, id := range op.Related {
		c.byTablet[id] = op
	}
	c.kindCount[op.Kind]++
	for _, s := range op.Steps {
		c.account(s, 1)
	}
	if op.Kind == KindBalanceLeader || op.Kind == KindHot {
		c.leaderMoved[op.TabletID] = leaderMove{at: now, kind: op.Kind}
	}
	return nil
}

// account adds (sign 1) or removes (sign -1) a step's influence and snapshot
// reservation.
func (c *Controller) account(s Step, sign int) {
	s.influence(func(store uint64, tablets, leaders int) {
		in := c.influence[store]
		in.Tablets += sign * tablets
		in.Leaders += sign * leaders
		if in == (Influence{}) {
			delete(c.influence, store)
		} else {
			c.influence[store] = in
		}
	})
	if al, ok := s.(AddLearner); ok {
		for _, st := range []uint64{al.Store, al.Sender} {
			if st == 0 {
				continue
			}
			if c.snapshots[st] += sign; c.snapshots[st] <= 0 {
				delete(c.snapshots, st)
			}
		}
	}
}

// Dispatch is called with every tablet report (after the Cluster has been
// updated with it). It advances the tablet's operator past the steps the
// report shows finished, ends the operator when all are done or it timed
// out, and returns the command for the current step — nil when there is
// nothing to do. The command is returned again on every report until the
// step is seen finished.
func (c *Controller) Dispatch(t *Tablet, now time.Time) *pdpb.TabletCommand {
	op, ok := c.byTablet[t.ID]
	if !ok {
		if op = c.replanned(t, now); op == nil {
			return nil
		}
	}
	if op.TabletID != t.ID {
		// A related tablet (the right side of a merge): it only has to keep
		// still. The operator is driven by its own tablet's reports.
		c.expire(op, now)
		return nil
	}
	for op.current < len(op.Steps) && op.Steps[op.current].IsFinished(t) {
		c.account(op.Steps[op.current], -1)
		op.current++
	}
	if op.current == len(op.Steps) {
		c.end(op, OpFinished, now)
		return nil
	}
	if c.expire(op, now) {
		return nil
	}
	// The conf version the finished steps account for. Anything beyond
	// it (and beyond what the current step may have applied so far) was
	// done by someone else: the operator was planned against a membership
	// that no longer exists, and its next command could undo a change it
	// never saw (remove a learner that has since been promoted, say). A
	// range change likewise invalidates it (split and merge steps finish
	// the operator when they change the range).
	want := op.OriginConfVersion
	for _, s := range op.Steps[:op.current] {
		want += s.confChanges()
	}
	step := op.Steps[op.current]
	if t.Version != op.OriginVersion || t.ConfVersion > want+step.confChanges() || t.ConfVersion < op.OriginConfVersion {
		c.endStale(op, now)
		return nil
	}
	if t.ConfVersion > want && !t.Joint && !confApplied(step, t) {
		// The membership moved on without this step: someone else's change
		// (typically a learner left by an earlier operator on the very store
		// this step targets, which the plan did not see yet). The step can
		// never finish; waiting would hold the tablet until the timeout.
		c.endStale(op, now)
		return nil
	}
	if t.Joint || t.ConfVersion != want {
		// The current step is under way (a joint change the leader is
		// leaving, a learner receiving its snapshot): wait for it.
		return nil
	}
	cmd := step.Command(t)
	cmd.Epoch.ConfVersion = want
	return cmd
}

func (c *Controller) expire(op *Operator, now time.Time) bool {
	if now.Sub(op.Created) > op.Timeout {
		c.end(op, OpTimedOut, now)
		return true
	}
	return false
}

// Expire times out operators whose tablets stopped reporting (their leader
// died, or the tablet was merged away) and returns them.
func (c *Controller) Expire(now time.Time) []*Operator {
	c.now = now
	for id, m := range c.leaderMoved {
		if now.Sub(m.at) >= c.cfg.LeaderMoveCooldown {
			delete(c.leaderMoved, id)
		}
	}
	for id, p := range c.replan {
		if now.After(p.until) {
			delete(c.replan, id) // its tablet stopped reporting (merged away, say)
		}
	}
	var out []*Operator
	for _, op := range c.Operators() {
		if c.expire(op, now) {
			out = append(out, op)
		}
	}
	return out
}

// Cancel stops the tablet's operator; it reports whether there was one.
func (c *Controller) Cancel(tabletID uint64, now time.Time) bool {
	delete(c.replan, tabletID)
	op, ok := c.byTablet[tabletID]
	if ok {
		c.end(op, OpCancelled, now)
	}
	return ok
}

func (c *Controller) end(op *Operator, status OpStatus, now time.Time) {
	if op.status != OpRunning {
		return
	}
	for _, s := range op.Steps[op.current:] {
		c.account(s, -1)
	}
	op.status, op.ended = status, now
	delete(c.running, op.ID)
	delete(c.byTablet, op.TabletID)
	for _, id := range op.Related {
		delete(c.byTablet, id)
	}
	c.kindCount[op.Kind]--
	c.stats[op.Kind][status]++
	if len(c.ended) >= maxEnded {
		// Nobody is draining: keep the newest half.
		c.ended = append(c.ended[:0], c.ended[len(c.ended)/2:]...)
	}
	c.ended = append(c.ended, op)
}

// endStale ends op as stale and keeps its request for replanning when it
// has one (Operator.Replan).
func (c *Controller) endStale(op *Operator, now time.Time) {
	c.end(op, OpStale, now)
	if op.Replan != nil && op.replans < maxReplans {
		c.replan[op.TabletID] = pendingReplan{replan: op.Replan, replans: op.replans + 1, until: op.Created.Add(op.Timeout)}
	}
}

// replanned plans the tablet's pending request again from t and starts
// the operator, or returns nil (nothing pending, not plannable yet, or
// refused: the request lapses past its time).
func (c *Controller) replanned(t *Tablet, now time.Time) *Operator {
	p, ok := c.replan[t.ID]
	if !ok {
		return nil
	}
	if now.After(p.until) {
		delete(c.replan, t.ID)
		return nil
	}
	op := p.replan(t)
	if op == nil {
		return nil
	}
	op.Replan, op.replans = p.replan, p.replans
	if err := c.AddOperator(op, now); err != nil {
		return nil
	}
	delete(c.replan, t.ID)
	return op
}

// SetStoreLimits sets per-store snapshot limits that override
// MaxSnapshotsPerStore for the operators added from now on (nil: none).
func (c *Controller) SetStoreLimits(limits map[uint64]int) { c.storeLimits = limits }

func (c *Controller) snapshotLimit(store uint64) int {
	if l, ok := c.storeLimits[store]; ok && l > 0 {
		return l
	}
	return c.cfg.MaxSnapshotsPerStore
}
