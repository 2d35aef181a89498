package schedule

import (
	"bytes"
	"fmt"
)

// Checker inspects one tablet and proposes at most one operator to fix it.
// Checkers are pure: they read the Cluster snapshot and the OperatorView and
// never change either.
type Checker interface {
	Check(c *Cluster, t *Tablet) *Operator
}

// ReplicaChecker keeps every tablet at MaxReplicas healthy voters: it
// replaces replicas on Down (for at least MaxStoreDownTime), Offline or
// Tombstone stores and replicas the leader reports down while their store is
// Up, removes stray learners and excess voters, and adds missing voters.
// Replicas on Disconnected stores, or Down for less than MaxStoreDownTime,
// are left alone: the store may come back.
type ReplicaChecker struct {
	cfg   Config
	alloc IDAllocator
	pick  targetPicker
}

// NewReplicaChecker returns the repair checker.
func NewReplicaChecker(cfg Config, view OperatorView, alloc IDAllocator) *ReplicaChecker {
	rc := &ReplicaChecker{cfg: cfg.EnsureDefaults(), alloc: alloc}
	rc.pick = targetPicker{cfg: &rc.cfg, view: view}
	return rc
}

// needsReplacement reports whether replica r must be replaced.
func (rc *ReplicaChecker) needsReplacement(c *Cluster, t *Tablet, r Replica) (bool, string) {
	s := c.Store(r.StoreID)
	switch {
	case t.IsBad(r.ID):
		// Corrupt, or outvoted by a consistency check: its store is
		// fine and keeps serving its other tablets.
		return true, "bad replica"
	case s == nil || s.State == StoreTombstone:
		return true, "tombstone store"
	case s.State == StoreOffline:
		return true, "offline store"
	case s.State == StoreDown && s.DownFor >= rc.cfg.MaxStoreDownTime:
		return true, "down store"
	case s.State == StoreUp && t.IsDown(r.ID):
		// The store is alive but this replica is not (it stopped applying).
		return true, "down replica"
	case s.DiskFull:
		// Moving replicas away frees the store; once it has room again
		// it reports so and the moves stop.
		return true, "disk-full store"
	}
	return false, ""
}

// leaderOffFullStore moves the leadership of t off a disk-full store (which
// refuses writes) when no replacement could be planned: writes resume on a
// voter with room at once, before any data moves.
func (rc *ReplicaChecker) leaderOffFullStore(c *Cluster, t *Tablet) *Operator {
	if s := c.Store(t.LeaderStoreID); s == nil || !s.DiskFull {
		return nil
	}
	b := newStepBuilder(c, t, rc.alloc)
	b.transferLeaderAway(t.LeaderStoreID, 0)
	return b.build(KindReplicaRepair, fmt.Sprintf("move leader off disk-full store %d", t.LeaderStoreID))
}

// usableLearner returns a learner of t that could become a voter now: on an
// Up store, caught up (not pending) and not down.
func (rc *ReplicaChecker) usableLearner(c *Cluster, t *Tablet) (Replica, bool) {
	for _, r := range t.Replicas {
		if !r.Learner || t.IsPending(r.ID) || t.IsDown(r.ID) || t.IsBad(r.ID) {
			continue
		}
		if s := c.Store(r.StoreID); s != nil && s.State == StoreUp {
			return r, true
		}
	}
	return Replica{}, false
}

// Check implements Checker.
func (rc *ReplicaChecker) Check(c *Cluster, t *Tablet) *Operator {
	view := rc.pick.view
	// Replacing replicas on unhealthy stores may preempt a running
	// operator of lower priority (a split that cannot finish must not keep
	// a tablet under-replicated). Tidying (stray learners, replica counts)
	// never does: what looks stray may belong to the running operator.
	if t.Joint {
		return nil // the leader is leaving joint consensus; look again then
	}
	k, running := view.OperatorKind(t.ID)
	if (running && k.priority() >= KindReplicaRepair.priority()) || view.KindSlots(KindReplicaRepair) <= 0 {
		return nil
	}
	voters := t.VoterCount()
	// Replicas that must go.
	for _, r := range t.Replicas {
		bad, why := rc.needsReplacement(c, t, r)
		if !bad {
			continue
		}
		b := newStepBuilder(c, t, rc.alloc)
		if r.Learner {
			b.remove(r.StoreID)
			return b.build(KindReplicaRepair, fmt.Sprintf("remove learner on %s %d", why, r.StoreID))
		}
		if voters > rc.cfg.MaxReplicas {
			b.remove(r.StoreID)
			return b.build(KindReplicaRepair, fmt.Sprintf("remove excess replica on %s %d", why, r.StoreID))
		}
		others := voterStores(t, r.StoreID)
		to, score := rc.pick.best(c, t, others)
		if l, ok := rc.usableLearner(c, t); ok && (to == 0 || rc.pick.locs.score(l.StoreID, others) >= score) {
			// A learner (left by an interrupted move, or the target of a
			// balance move this repair preempts) is as good a home as any
			// and already holds the data.
			b.promoteInstead(r.StoreID, l)
			return b.build(KindReplicaRepair, fmt.Sprintf("replace replica on %s %d by learner on store %d", why, r.StoreID, l.StoreID))
		}
		if to != 0 {
			b.move(r.StoreID, to)
			return b.build(KindReplicaRepair, fmt.Sprintf("replace replica on %s %d by store %d", why, r.StoreID, to))
		}
		// No healthy target right now (or the snapshot limit is hit): try
		// the other bad replicas, then retry on a later round.
	}
	if op := rc.leaderOffFullStore(c, t); op != nil {
		return op
	}
	if running {
		return nil
	}
	// Learners without an operator are leftovers of an interrupted move.
	for _, r := range t.Replicas {
		if !r.Learner {
			continue
		}
		b := newStepBuilder(c, t, rc.alloc)
		if voters < rc.cfg.MaxReplicas && !t.IsPending(r.ID) && !t.IsDown(r.ID) {
			b.steps = append(b.steps, PromoteLearner{Store: r.StoreID, ReplicaID: r.ID})
			return b.build(KindReplicaRepair, fmt.Sprintf("promote stray learner on store %d", r.StoreID))
		}
		if voters >= rc.cfg.MaxReplicas {
			b.remove(r.StoreID)
			return b.build(KindReplicaRepair, fmt.Sprintf("remove stray learner on store %d", r.StoreID))
		}
	}
	if voters < rc.cfg.MaxReplicas {
		to, _ := rc.pick.best(c, t, voterStores(t, 0))
		if to == 0 {
			return nil
		}
		b := newStepBuilder(c, t, rc.alloc)
		b.add(to)
		return b.build(KindReplicaRepair, fmt.Sprintf("add missing replica on store %d", to))
	}
	if voters > rc.cfg.MaxReplicas {
		// Remove the worst-placed voter, never the leader when avoidable,
		// breaking ties by the fullest store.
		rc.pick.locs.refresh(c, rc.cfg.LocationLabels)
		stores := voterStores(t, 0)
		var worst uint64
		var worstScore float64
		for _, s := range stores {
			sc := rc.pick.locs.score(s, stores)
			if s == t.LeaderStoreID {
				sc += 1e18 // keep the leader if at all possible
			}
			if worst == 0 || sc < worstScore || (sc == worstScore && c.StoreTabletCount(s) > c.StoreTabletCount(worst)) {
				worst, worstScore = s, sc
			}
		}
		b := newStepBuilder(c, t, rc.alloc)
		b.remove(worst)
		return b.build(KindReplicaRepair, fmt.Sprintf("remove excess replica on store %d", worst))
	}
	return nil
}

// PlacementChecker spreads a healthy tablet's replicas across failure
// domains: it finds the replica with the lowest distinct score (see
// placement.go) and moves it to the store with the highest score, if that is
// strictly better. A tablet whose replicas already differ at the most
// general label is skipped without scoring.
type PlacementChecker struct {
	cfg   Config
	alloc IDAllocator
	pick  targetPicker
}

// NewPlacementChecker returns the placement checker.
func NewPlacementChecker(cfg Config, view OperatorView, alloc IDAllocator) *PlacementChecker {
	pc := &PlacementChecker{cfg: cfg.EnsureDefaults(), alloc: alloc}
	pc.pick = targetPicker{cfg: &pc.cfg, view: view}
	return pc
}

// Check implements Checker.
func (pc *PlacementChecker) Check(c *Cluster, t *Tablet) *Operator {
	view := pc.pick.view
	if len(pc.cfg.LocationLabels) == 0 || view.HasOperator(t.ID) || view.KindSlots(KindPlacement) <= 0 || !healthy(t, pc.cfg.MaxReplicas) {
		return nil
	}
	l := &pc.pick.locs
	l.refresh(c, pc.cfg.LocationLabels)
	ideal := true
	for i, a := range t.Replicas {
		for _, b := range t.Replicas[i+1:] {
			if l.diffLevel(a.StoreID, b.StoreID) != 0 {
				ideal = false
			}
		}
	}
	if ideal {
		return nil
	}
	stores := voterStores(t, 0)
	var worst uint64
	var worstScore float64
	for _, s := range stores {
		sc := l.score(s, stores)
		better := worst == 0 || sc < worstScore
		if !better && sc == worstScore {
			// Tie: prefer moving a follower, then the fuller store.
			wl, sl := worst == t.LeaderStoreID, s == t.LeaderStoreID
			better = (wl && !sl) || (wl == sl && c.StoreTabletCount(s) > c.StoreTabletCount(worst))
		}
		if better {
			worst, worstScore = s, sc
		}
	}
	to, sc := pc.pick.best(c, t, voterStores(t, worst))
	if to == 0 || sc <= worstScore {
		return nil
	}
	b := newStepBuilder(c, t, pc.alloc)
	b.move(worst, to)
	return b.build(KindPlacement, fmt.Sprintf("improve isolation: move replica from store %d to store %d", worst, to))
}

// SplitChecker splits tablets larger than SplitSize (at the middle key,
// which the leader picks: the Split step has an empty key) and tablets hot
// for SplitHotReports consecutive reports above SplitQPS (at their
// LoadSplitKey).
type SplitChecker struct {
	cfg   Config
	view  OperatorView
	alloc IDAllocator
}

// NewSplitChecker returns the split checker.
func NewSplitChecker(cfg Config, view OperatorView, alloc IDAllocator) *SplitChecker {
	return &SplitChecker{cfg: cfg.EnsureDefaults(), view: view, alloc: alloc}
}

// Check implements Checker.
func (sc *SplitChecker) Check(c *Cluster, t *Tablet) *Operator {
	if sc.view.HasOperator(t.ID) {
		return nil
	}
	if t.Size > sc.cfg.SplitSize {
		return NewSplitOperator(t, sc.alloc, KindSplit, nil, fmt.Sprintf("size %d > %d", t.Size, sc.cfg.SplitSize))
	}
	k := t.LoadSplitKey
	if sc.cfg.SplitQPS > 0 && t.QPS() > sc.cfg.SplitQPS && t.HotReports >= sc.cfg.SplitHotReports &&
		len(k) > 0 && bytes.Compare(k, t.StartKey) > 0 && t.ContainsKey(k) {
		return NewSplitOperator(t, sc.alloc, KindSplitLoad, k,
			fmt.Sprintf("load %.0f qps > %.0f for %d reports", t.QPS(), sc.cfg.SplitQPS, t.HotReports))
	}
	return nil
}

// MergeChecker merges a small tablet with its small right neighbour. Both
// must be below MergeSize, not hot, healthy, and without operators. Raft
// merge needs both tablets on the same stores with leaders on the same
// store, so when they are not, the checker first emits a merge-kind
// operator on the right tablet that moves its replicas onto the left
// tablet's stores and then its leader onto the left's leader store; the
// Merge itself is proposed on a later round, once reports show them aligned.
type MergeChecker struct {
	cfg   Config
	view  OperatorView
	alloc IDAllocator
}

// NewMergeChecker returns the merge checker.
func NewMergeChecker(cfg Config, view OperatorView, alloc IDAllocator) *MergeChecker {
	return &MergeChecker{cfg: cfg.EnsureDefaults(), view: view, alloc: alloc}
}

func (mc *MergeChecker) small(t *Tablet) bool {
	// A merged tablet must not be big enough to split again at once.
	limit := min(mc.cfg.MergeSize, mc.cfg.SplitSize/2)
	return t.Size < limit && t.HotReports == 0 && t.RangeAge >= mc.cfg.SplitMergeInterval &&
		(mc.cfg.SplitQPS <= 0 || t.QPS() < mc.cfg.SplitQPS/2)
}

// tableBoundaryBytes is the length of a bare table prefix
// (internal/keys.TablePrefix): a tablet starting at one starts a table.
const tableBoundaryBytes = 8

// Check implements Checker.
func (mc *MergeChecker) Check(c *Cluster, t *Tablet) *Operator {
	if mc.cfg.DisableMerge || !mc.small(t) || mc.view.HasOperator(t.ID) || mc.view.KindSlots(KindMerge) <= 0 {
		return nil
	}
	_, r := c.Neighbours(t)
	// Never merge across tables: each table keeps tablets of its own.
	if r == nil || len(r.StartKey) <= tableBoundaryBytes || !mc.small(r) || mc.view.HasOperator(r.ID) ||
		!healthy(t, mc.cfg.MaxReplicas) || !healthy(r, mc.cfg.MaxReplicas) {
		return nil
	}
	var missing, extra []uint64 // t's stores r lacks; r's stores t lacks
	for _, rep := range t.Replicas {
		if !r.HasStore(rep.StoreID) {
			missing = append(missing, rep.StoreID)
		}
	}
	for _, rep := range r.Replicas {
		if !t.HasStore(rep.StoreID) {
			extra = append(extra, rep.StoreID)
		}
	}
	if len(missing) == 0 && r.LeaderStoreID == t.LeaderStoreID {
		op := newOperator(t, KindMerge, fmt.Sprintf("merge tablet %d (%d B) with right tablet %d (%d B)", t.ID, t.Size, r.ID, r.Size),
			Merge{Right: r.ID, FromVersion: t.Version})
		op.Related = []uint64{r.ID}
		return op
	}
	for _, s := range missing {
		if st := c.Store(s); st == nil || st.State != StoreUp || snapshotRoom(mc.view, &mc.cfg, st) <= 0 {
			return nil
		}
	}
	b := newStepBuilder(c, r, mc.alloc)
	for i := range missing {
		b.move(extra[i], missing[i])
	}
	b.transferLeader(t.LeaderStoreID)
	op := b.build(KindMerge, fmt.Sprintf("align tablet %d with left neighbour %d before merge", r.ID, t.ID))
	if op != nil {
		op.Related = []uint64{t.ID}
	}
	return op
}
