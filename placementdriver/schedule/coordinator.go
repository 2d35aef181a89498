package schedule

import (
	"math/rand"
	"time"
)

// Coordinator wires the default checkers and schedulers to a Controller, as
// PD's coordinator does. The PD server owns one, calls Round periodically
// (and Dispatch on every tablet report), all under its cluster lock.
type Coordinator struct {
	Config     Config
	Controller *Controller
	Checkers   []Checker   // in priority order; the first operator wins
	Schedulers []Scheduler // run after the checkers, in order
	// Paused maps a scheduler's name to the time until which Round skips
	// it (shale ctl scheduler pause). Checkers are never paused: they
	// repair replicas.
	Paused map[string]time.Time
}

// NewCoordinator builds the default pipeline: replica repair, placement,
// split and merge checkers; tablet, leader and hot schedulers. rnd must be
// seeded by the caller for reproducible runs.
func NewCoordinator(cfg Config, alloc IDAllocator, rnd *rand.Rand) *Coordinator {
	cfg = cfg.EnsureDefaults()
	ctl := NewController(cfg)
	return &Coordinator{
		Config:     cfg,
		Controller: ctl,
		Paused:     map[string]time.Time{},
		Checkers: []Checker{
			NewReplicaChecker(cfg, ctl, alloc),
			NewPlacementChecker(cfg, ctl, alloc),
			NewSplitChecker(cfg, ctl, alloc),
			NewMergeChecker(cfg, ctl, alloc),
		},
		Schedulers: []Scheduler{
			NewBalanceLeaderScheduler(ctl, rnd),
			NewHotScheduler(ctl),
			NewBalanceTabletScheduler(ctl, alloc, rnd),
		},
	}
}

// RoundResult counts what one Round did.
type RoundResult struct {
	Added    [numKinds]int
	Rejected int // proposals the Controller refused (limits, conflicts)
	Expired  int
}

// Total is the number of operators added.
func (r RoundResult) Total() int {
	n := 0
	for _, a := range r.Added {
		n += a
	}
	return n
}

// AddedOf is the number of operators of a kind added.
func (r RoundResult) AddedOf(k OpKind) int { return r.Added[k] }

// Round runs one scheduling pass: expire stale operators, run the checkers
// over every tablet without an operator (one pass in key order), then every
// scheduler, adding the proposed operators to the Controller.
func (co *Coordinator) Round(c *Cluster, now time.Time) RoundResult {
	var res RoundResult
	res.Expired = len(co.Controller.Expire(now))
	res.Expired += co.cancelStranded(c, now)
	add := func(op *Operator) {
		if err := co.Controller.AddOperator(op, now); err != nil {
			res.Rejected++
			return
		}
		res.Added[op.Kind]++
	}
	co.CheckTablets(c, add)
	for _, s := range co.Schedulers {
		if co.IsPaused(s.Name(), now) {
			continue
		}
		for _, op := range s.Schedule(c, co.Config) {
			add(op)
		}
	}
	return res
}

// CheckTablets runs the checkers over all tablets and hands each proposed
// operator to add.
func (co *Coordinator) CheckTablets(c *Cluster, add func(*Operator)) {
	ctl := co.Controller
	for _, t := range c.Tablets() {
		if ctl.HasOperator(t.ID) {
			// Only repair may preempt a running operator.
			for _, ck := range co.Checkers {
				if rc, ok := ck.(*ReplicaChecker); ok {
					if op := rc.Check(c, t); op != nil {
						add(op)
					}
				}
			}
			continue
		}
		for _, ck := range co.Checkers {
			if op := ck.Check(c, t); op != nil {
				add(op)
				break
			}
		}
	}
}

// cancelStranded cancels operators whose current step needs a store that
// is no longer Up (a learner being added to a store that died, a leader
// moving to it): such a step cannot finish, and until its timeout it would
// hold snapshot slots that repair needs.
func (co *Coordinator) cancelStranded(c *Cluster, now time.Time) int {
	n := 0
	for _, op := range co.Controller.Operators() {
		var target uint64
		switch s := op.Step().(type) {
		case AddLearner:
			target = s.Store
		case PromoteLearner:
			target = s.Store
		case TransferLeader:
			target = s.To
		case ChangeReplicas:
			for _, p := range s.Promote {
				if st := c.Store(p.Store); st == nil || st.State != StoreUp {
					target = p.Store
				}
			}
		}
		if target == 0 {
			continue
		}
		if st := c.Store(target); st == nil || st.State != StoreUp {
			if co.Controller.Cancel(op.TabletID, now) {
				n++
			}
		}
	}
	return n
}

// IsPaused reports whether the named scheduler is paused at now.
func (co *Coordinator) IsPaused(name string, now time.Time) bool {
	until, ok := co.Paused[name]
	return ok && now.Before(until)
}

// Scheduler returns the scheduler with this name, or nil.
func (co *Coordinator) Scheduler(name string) Scheduler {
	for _, s := range co.Schedulers {
		if s.Name() == name {
			return s
		}
	}
	return nil
}
