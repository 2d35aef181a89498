package schedule

import (
	"fmt"
	"strings"
	"time"
)

// OpKind says which checker or scheduler made an operator. It selects the
// concurrency limit and the priority.
type OpKind int

const (
	KindReplicaRepair OpKind = iota
	KindPlacement
	KindBalanceTablet
	KindBalanceLeader
	KindHot
	KindSplit
	KindSplitLoad
	KindMerge
	KindAdmin
	numKinds
)

var kindNames = [...]string{"replica-repair", "placement", "balance-tablet", "balance-leader", "hot", "split", "split-load", "merge", "admin"}

func (k OpKind) String() string {
	if k >= 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// priority orders kinds: an operator may replace a running one of lower
// priority on the same tablet (repair preempts balance).
func (k OpKind) priority() int {
	switch k {
	case KindAdmin:
		return 5
	case KindReplicaRepair:
		return 4
	case KindPlacement:
		return 3
	case KindSplit, KindSplitLoad, KindMerge:
		return 2
	case KindHot:
		return 1
	}
	return 0
}

// OpStatus is an operator's lifecycle state.
type OpStatus int

const (
	OpRunning OpStatus = iota
	OpFinished
	OpTimedOut
	OpCancelled // cancelled by the caller or replaced by a higher-priority operator
	// OpStale: the tablet changed in a way the operator's steps do not
	// explain, so what it was planned from no longer holds.
	OpStale
	numStatuses
)

var statusNames = [...]string{"running", "finished", "timed-out", "cancelled", "stale"}

func (s OpStatus) String() string { return statusNames[s] }

// Operator is a scheduling decision as data: an ordered list of steps for
// one tablet. Checkers and schedulers build operators; the Controller tracks
// them and turns the current step into the command of the next heartbeat
// response.
type Operator struct {
	ID       uint64 // assigned by Controller.AddOperator when zero
	TabletID uint64
	Kind     OpKind
	Desc     string
	Steps    []Step
	Created  time.Time     // set by Controller.AddOperator when zero
	Timeout  time.Duration // from Config when zero
	// Related are other tablets the operator needs untouched while it runs
	// (a merge locks the right tablet); they get no other operator.
	Related []uint64
	// OriginVersion and OriginConfVersion are the tablet's epoch in the
	// report the operator was planned from. The Controller cancels the
	// operator as stale when the tablet's epoch moves in a way its own
	// steps do not explain (another change got in first), and sends every
	// command with the epoch the steps imply, so the leader refuses a
	// command planned against a membership that no longer exists.
	OriginVersion, OriginConfVersion uint64
	// Replan, if set, plans the operator again from the tablet t once it
	// has ended stale: an administrator's request (move this replica)
	// still stands when a change it was not planned for got in first,
	// typically the in-flight step of the operator it replaced. It returns
	// nil while the request cannot be planned (the target still holds
	// that operator's learner, say); the Controller tries again on the
	// tablet's later reports, within the operator's timeout and at most
	// maxReplans times.
	Replan func(t *Tablet) *Operator

	// Controller-owned state.
	replans int // how many times the request behind this operator was replanned
	current int
	status  OpStatus
	ended   time.Time
}

// CurrentStep is the index of the first unfinished step (len(Steps) once
// finished).
func (op *Operator) CurrentStep() int { return op.current }

// Step returns the current step, or nil when none is left.
func (op *Operator) Step() Step {
	if op.current < len(op.Steps) {
		return op.Steps[op.current]
	}
	return nil
}

// Status returns the lifecycle state.
func (op *Operator) Status() OpStatus { return op.status }

// Ended is when the operator finished, timed out or was cancelled.
func (op *Operator) Ended() time.Time { return op.ended }

func (op *Operator) String() string {
	steps := make([]string, len(op.Steps))
	for i, s := range op.Steps {
		steps[i] = s.String()
	}
	return fmt.Sprintf("op %d tablet %d %s (%s): [%s] step %d/%d %s",
		op.ID, op.TabletID, op.Kind, op.Desc, strings.Join(steps, "; "), op.current, len(op.Steps), op.status)
}

// onlyLeaderSteps reports whether every step is a leader transfer.
func (op *Operator) onlyLeaderSteps() bool {
	for _, s := range op.Steps {
		if _, ok := s.(TransferLeader); !ok {
			return false
		}
	}
	return true
}

// stepBuilder assembles membership steps for one tablet, tracking who leads
// after each step so that a replica is never removed while it leads and the
// snapshot sender is known.
type stepBuilder struct {
	c      *Cluster
	t      *Tablet
	alloc  IDAllocator
	leader uint64
	voters map[uint64]bool // store → voter, as of the steps built so far
	steps  []Step
	failed bool
}

func newStepBuilder(c *Cluster, t *Tablet, alloc IDAllocator) *stepBuilder {
	b := &stepBuilder{c: c, t: t, alloc: alloc, leader: t.LeaderStoreID, voters: map[uint64]bool{}}
	for _, r := range t.Replicas {
		if !r.Learner {
			b.voters[r.StoreID] = true
		}
	}
	return b
}

// transferLeaderAway moves leadership off store from to the healthy voter
// with the fewest leaders, preferring prefer when it qualifies.
func (b *stepBuilder) transferLeaderAway(from uint64, prefer uint64) {
	if b.leader != from {
		return
	}
	var best uint64
	bestCount := 0
	for _, r := range b.t.Replicas {
		if r.StoreID == from || !b.voters[r.StoreID] || b.t.IsDown(r.ID) || b.t.IsPending(r.ID) || b.t.IsBad(r.ID) {
			continue
		}
		s := b.c.Store(r.StoreID)
		if s == nil || s.State != StoreUp || s.DiskFull {
			continue
		}
		if r.StoreID == prefer {
			best = r.StoreID
			break
		}
		n := b.c.StoreLeaderCount(r.StoreID)
		if best == 0 || n < bestCount || (n == bestCount && r.StoreID < best) {
			best, bestCount = r.StoreID, n
		}
	}
	if best == 0 {
		b.failed = true
		return
	}
	b.transferLeader(best)
}

func (b *stepBuilder) transferLeader(to uint64) {
	if b.leader == to {
		return
	}
	b.steps = append(b.steps, TransferLeader{From: b.leader, To: to})
	b.leader = to
}

// move replaces the replica on from by a new one on to: AddLearner, then a
// joint change promoting it and removing the old one (leadership is moved
// off from first).
func (b *stepBuilder) move(from, to uint64) {
	b.replace(from, Replica{ID: b.alloc.AllocID(), StoreID: to, Learner: true}, true)
}

// promoteInstead replaces the voter on from by the existing learner l: one
// joint change promoting l and removing the old replica (leadership is moved
// off from first). No snapshot is needed; l already has the data.
func (b *stepBuilder) promoteInstead(from uint64, l Replica) {
	b.replace(from, l, false)
}

// replace moves leadership off from, then (after adding learner l when
// add) promotes l and removes the replica on from in one joint change.
func (b *stepBuilder) replace(from uint64, l Replica, add bool) {
	old, ok := b.t.ReplicaOn(from)
	if !ok {
		b.failed = true
		return
	}
	b.transferLeaderAway(from, 0)
	if b.failed {
		return
	}
	if add {
		b.steps = append(b.steps, AddLearner{Store: l.StoreID, ReplicaID: l.ID, Sender: b.leader})
	}
	b.steps = append(b.steps, ChangeReplicas{
		Promote: []PromoteLearner{{Store: l.StoreID, ReplicaID: l.ID}},
		Remove:  []RemoveReplica{{Store: from, ReplicaID: old.ID}},
	})
	delete(b.voters, from)
	b.voters[l.StoreID] = true
}

// add adds a new voter on store to.
func (b *stepBuilder) add(to uint64) {
	id := b.alloc.AllocID()
	b.steps = append(b.steps, AddLearner{Store: to, ReplicaID: id, Sender: b.leader}, PromoteLearner{Store: to, ReplicaID: id})
	b.voters[to] = true
}

// remove removes the replica on from (transferring leadership first).
func (b *stepBuilder) remove(from uint64) {
	old, ok := b.t.ReplicaOn(from)
	if !ok {
		b.failed = true
		return
	}
	b.transferLeaderAway(from, 0)
	if b.failed {
		return
	}
	b.steps = append(b.steps, RemoveReplica{Store: from, ReplicaID: old.ID})
	delete(b.voters, from)
}

func (b *stepBuilder) build(kind OpKind, desc string) *Operator {
	if b.failed || len(b.steps) == 0 {
		return nil
	}
	return newOperator(b.t, kind, desc, b.steps...)
}

// newOperator returns an operator for t planned from t's current epoch.
func newOperator(t *Tablet, kind OpKind, desc string, steps ...Step) *Operator {
	return &Operator{TabletID: t.ID, Kind: kind, Desc: desc, Steps: steps, OriginVersion: t.Version, OriginConfVersion: t.ConfVersion}
}

// NewMoveOperator builds the operator moving t's replica from one store to
// another (used by schedulers and by `shale ctl move`). It returns nil when
// the move is impossible (no replica on from, or from leads and no other
// healthy voter can take over).
func NewMoveOperator(c *Cluster, t *Tablet, alloc IDAllocator, kind OpKind, from, to uint64) *Operator {
	b := newStepBuilder(c, t, alloc)
	b.move(from, to)
	return b.build(kind, fmt.Sprintf("move replica from store %d to store %d", from, to))
}

// NewTransferLeaderOperator builds a leader transfer to store to.
func NewTransferLeaderOperator(t *Tablet, kind OpKind, to uint64) *Operator {
	if t.LeaderStoreID == to {
		return nil
	}
	return newOperator(t, kind, fmt.Sprintf("transfer leader from store %d to store %d", t.LeaderStoreID, to),
		TransferLeader{From: t.LeaderStoreID, To: to})
}

// NewSplitOperator builds a split at key (empty: middle key chosen by the
// leader), allocating the new tablet's and replicas' IDs.
func NewSplitOperator(t *Tablet, alloc IDAllocator, kind OpKind, key []byte, desc string) *Operator {
	s := Split{Key: key, NewTabletID: alloc.AllocID(), FromVersion: t.Version}
	for range t.Replicas {
		s.NewReplicaIDs = append(s.NewReplicaIDs, alloc.AllocID())
	}
	return newOperator(t, kind, desc, s)
}

// Kinds lists every operator kind (for metrics with one series per kind).
func Kinds() []OpKind {
	out := make([]OpKind, 0, numKinds)
	for k := OpKind(0); k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// EndStatuses lists the statuses an ended operator can have.
func EndStatuses() []OpStatus {
	out := make([]OpStatus, 0, numStatuses)
	for s := OpFinished; s < numStatuses; s++ {
		out = append(out, s)
	}
	return out
}
