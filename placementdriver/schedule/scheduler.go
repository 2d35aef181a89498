package schedule

import (
	"fmt"
	"math/rand"
	"sort"
)

// Scheduler looks at the whole cluster and proposes operators that improve
// it (balance, hot spots). Schedule is pure: it reads the Cluster and the
// OperatorView it was built with, and it respects the kind's remaining slots
// and the snapshot limits itself (counting the operators of its own batch),
// so that the caller can add every returned operator.
type Scheduler interface {
	Name() string
	Schedule(c *Cluster, cfg Config) []*Operator
}

// maxTabletTries bounds how many tablets of a source store a scheduler
// examines per decision, keeping a decision O(1) in the number of tablets.
const maxTabletTries = 64

// balancePlan holds the per-store scores one Schedule call works on:
// cluster counts plus the influence of running operators plus the operators
// of this batch.
type balancePlan struct {
	stores []*storeIndex // Up stores
	score  []int
	snaps  []int // snapshot room left
	pos    map[uint64]int
	order  []int
	tol    float64
}

func newBalancePlan(c *Cluster, cfg *Config, view OperatorView, leaders bool) *balancePlan {
	p := &balancePlan{pos: map[uint64]int{}}
	total := 0
	for _, si := range c.stores {
		if si.store.State != StoreUp || si.store.DiskFull {
			continue // a disk-full store is emptied by the ReplicaChecker
		}
		in := view.Influence(si.store.ID)
		sc := len(si.tablets) + in.Tablets
		if leaders {
			sc = si.leaders + in.Leaders
		}
		p.pos[si.store.ID] = len(p.stores)
		p.stores = append(p.stores, si)
		p.score = append(p.score, sc)
		p.snaps = append(p.snaps, snapshotRoom(view, cfg, si.store))
		total += sc
	}
	if len(p.stores) > 0 {
		p.tol = max(1, cfg.BalanceTolerance*float64(total)/float64(len(p.stores)))
	}
	p.order = make([]int, len(p.stores))
	return p
}

// sortDesc orders store indexes by score, highest first (ties: lower ID first).
func (p *balancePlan) sortDesc() []int {
	for i := range p.order {
		p.order[i] = i
	}
	sort.Slice(p.order, func(a, b int) bool {
		x, y := p.order[a], p.order[b]
		if p.score[x] != p.score[y] {
			return p.score[x] > p.score[y]
		}
		return p.stores[x].store.ID < p.stores[y].store.ID
	})
	return p.order
}

// worthMoving reports whether moving one unit from src to dst reduces the
// imbalance beyond the tolerance.
func (p *balancePlan) worthMoving(src, dst int) bool {
	return float64(p.score[src]-p.score[dst]) > p.tol
}

// BalanceTabletScheduler moves replicas from the Up store with the most
// replicas to the ones with the fewest, until all are within tolerance.
// Targets must be Up, must not hold a replica of the tablet, must not lower
// the tablet's isolation (distinct score) and must have snapshot room.
// Followers are preferred over leaders as the replica to move.
type BalanceTabletScheduler struct {
	view  OperatorView
	alloc IDAllocator
	rnd   *rand.Rand
	locs  locations
}

// NewBalanceTabletScheduler returns the tablet-count balancer. rnd picks
// where in a store's tablet list to start looking; pass a seeded source for
// reproducible runs.
func NewBalanceTabletScheduler(view OperatorView, alloc IDAllocator, rnd *rand.Rand) *BalanceTabletScheduler {
	return &BalanceTabletScheduler{view: view, alloc: alloc, rnd: rnd}
}

// Name implements Scheduler.
func (s *BalanceTabletScheduler) Name() string { return "balance-tablet" }

// Schedule implements Scheduler.
func (s *BalanceTabletScheduler) Schedule(c *Cluster, cfg Config) []*Operator {
	cfg = cfg.EnsureDefaults()
	slots := s.view.KindSlots(KindBalanceTablet)
	if slots <= 0 {
		return nil
	}
	s.locs.refresh(c, cfg.LocationLabels)
	p := newBalancePlan(c, &cfg, s.view, false)
	if len(p.stores) < 2 {
		return nil
	}
	used := map[uint64]bool{}
	var ops []*Operator
	for len(ops) < slots {
		order := p.sortDesc()
		var op *Operator
		for _, src := range order {
			if !p.worthMoving(src, order[len(order)-1]) {
				break
			}
			if op = s.pickMove(c, &cfg, p, src, used); op != nil {
				break
			}
		}
		if op == nil {
			break
		}
		ops = append(ops, op)
	}
	return ops
}

// pickMove finds a tablet on store src and a target for it.
func (s *BalanceTabletScheduler) pickMove(c *Cluster, cfg *Config, p *balancePlan, src int, used map[uint64]bool) *Operator {
	srcID := p.stores[src].store.ID
	tablets := p.stores[src].tablets
	if len(tablets) == 0 {
		return nil
	}
	start := s.rnd.Intn(len(tablets))
	var fallback *Tablet
	var fallbackTo int
	for i := 0; i < min(maxTabletTries, len(tablets)); i++ {
		t := tablets[(start+i)%len(tablets)]
		if used[t.ID] || s.view.HasOperator(t.ID) || !healthy(t, cfg.MaxReplicas) {
			continue
		}
		isLeader := t.LeaderStoreID == srcID
		if isLeader && fallback != nil {
			continue
		}
		dst := s.pickTarget(c, p, t, src)
		if dst < 0 {
			continue
		}
		sender := t.LeaderStoreID
		if isLeader {
			fallback, fallbackTo = t, dst
			continue
		}
		if si, ok := p.pos[sender]; !ok || p.snaps[si] <= 0 {
			continue
		}
		return s.commit(c, p, t, src, dst, sender, used)
	}
	if fallback != nil {
		// Moving the leader's replica: leadership goes to another voter
		// first, which then sends the snapshot.
		op := NewMoveOperator(c, fallback, s.alloc, KindBalanceTablet, srcID, p.stores[fallbackTo].store.ID)
		if op == nil {
			return nil
		}
		sender := op.Steps[0].(TransferLeader).To
		if si, ok := p.pos[sender]; !ok || p.snaps[si] <= 0 {
			return nil
		}
		s.account(p, src, fallbackTo, sender)
		used[fallback.ID] = true
		return op
	}
	return nil
}

func (s *BalanceTabletScheduler) commit(c *Cluster, p *balancePlan, t *Tablet, src, dst int, sender uint64, used map[uint64]bool) *Operator {
	op := NewMoveOperator(c, t, s.alloc, KindBalanceTablet, p.stores[src].store.ID, p.stores[dst].store.ID)
	if op == nil {
		return nil
	}
	s.account(p, src, dst, sender)
	used[t.ID] = true
	return op
}

func (s *BalanceTabletScheduler) account(p *balancePlan, src, dst int, sender uint64) {
	p.score[src]--
	p.score[dst]++
	p.snaps[dst]--
	p.snaps[p.pos[sender]]--
}

// pickTarget returns the lowest-scored store (index into p) that may take
// t's replica from src, or -1.
func (s *BalanceTabletScheduler) pickTarget(c *Cluster, p *balancePlan, t *Tablet, src int) int {
	srcID := p.stores[src].store.ID
	others := voterStores(t, srcID)
	srcScore := s.locs.score(srcID, others)
	order := p.order
	for i := len(order) - 1; i >= 0; i-- {
		dst := order[i]
		if !p.worthMoving(src, dst) {
			return -1
		}
		st := p.stores[dst].store
		if p.snaps[dst] <= 0 || t.HasStore(st.ID) || !hasSpace(st, t) || s.locs.score(st.ID, others) < srcScore {
			continue
		}
		return dst
	}
	return -1
}

// BalanceLeaderScheduler evens out leader counts over Up stores using leader
// transfers only (no data moves): from the store with the most leaders to
// the follower store with the fewest, and, when the fullest store's tablets
// have no follower on a light store, from the other direction (a light
// store takes over a tablet it follows).
type BalanceLeaderScheduler struct {
	view OperatorView
	rnd  *rand.Rand
}

// NewBalanceLeaderScheduler returns the leader balancer.
func NewBalanceLeaderScheduler(view OperatorView, rnd *rand.Rand) *BalanceLeaderScheduler {
	return &BalanceLeaderScheduler{view: view, rnd: rnd}
}

// Name implements Scheduler.
func (s *BalanceLeaderScheduler) Name() string { return "balance-leader" }

// Schedule implements Scheduler.
func (s *BalanceLeaderScheduler) Schedule(c *Cluster, cfg Config) []*Operator {
	cfg = cfg.EnsureDefaults()
	slots := s.view.KindSlots(KindBalanceLeader)
	if slots <= 0 {
		return nil
	}
	p := newBalancePlan(c, &cfg, s.view, true)
	if len(p.stores) < 2 {
		return nil
	}
	used := map[uint64]bool{}
	var ops []*Operator
	for len(ops) < slots {
		order := p.sortDesc()
		var op *Operator
		// Source side: the heaviest stores shed a leader.
		for _, src := range order {
			if !p.worthMoving(src, order[len(order)-1]) {
				break
			}
			if op = s.shed(&cfg, p, src, used); op != nil {
				break
			}
		}
		// Target side: the lightest stores take one.
		for i := len(order) - 1; op == nil && i >= 0; i-- {
			dst := order[i]
			if !p.worthMoving(order[0], dst) {
				break
			}
			op = s.take(&cfg, p, dst, used)
		}
		if op == nil {
			break
		}
		ops = append(ops, op)
	}
	return ops
}

// usable: not a tablet whose leader the hot scheduler just moved (that
// would undo its work); counts are exact, so the balancer's own recent
// moves do not hold it back.
func (s *BalanceLeaderScheduler) usable(cfg *Config, t *Tablet, used map[uint64]bool) bool {
	if k, ok := s.view.RecentLeaderMove(t.ID); ok && k == KindHot {
		return false
	}
	return !used[t.ID] && !s.view.HasOperator(t.ID) && len(t.DownReplicas) == 0
}

// shed moves a leader off store src to the lightest eligible follower.
// Of the tablets it examines it moves the one serving the least QPS, so
// that evening out the counts does not undo the hot scheduler's work.
func (s *BalanceLeaderScheduler) shed(cfg *Config, p *balancePlan, src int, used map[uint64]bool) *Operator {
	srcID := p.stores[src].store.ID
	tablets := p.stores[src].tablets
	if len(tablets) == 0 {
		return nil
	}
	start := s.rnd.Intn(len(tablets))
	var bestT *Tablet
	bestDst, tries := -1, 0
	for i := 0; i < min(len(tablets), 8*maxTabletTries) && tries < maxTabletTries; i++ {
		t := tablets[(start+i)%len(tablets)]
		if t.LeaderStoreID != srcID || !s.usable(cfg, t, used) {
			continue
		}
		tries++
		dst := -1
		for _, r := range t.Replicas {
			d, ok := p.pos[r.StoreID]
			if !ok || r.StoreID == srcID || r.Learner || t.IsPending(r.ID) || !p.worthMoving(src, d) {
				continue
			}
			if dst < 0 || p.score[d] < p.score[dst] {
				dst = d
			}
		}
		if dst >= 0 && (bestT == nil || t.QPS() < bestT.QPS()) {
			bestT, bestDst = t, dst
		}
	}
	if bestT == nil {
		return nil
	}
	return s.commit(p, bestT, src, bestDst, used)
}

// take moves to store dst the leadership of a tablet it follows whose leader
// is on a heavier store (the heaviest; of its tablets, the coldest).
func (s *BalanceLeaderScheduler) take(cfg *Config, p *balancePlan, dst int, used map[uint64]bool) *Operator {
	dstID := p.stores[dst].store.ID
	tablets := p.stores[dst].tablets
	if len(tablets) == 0 {
		return nil
	}
	start := s.rnd.Intn(len(tablets))
	var bestT *Tablet
	bestSrc := -1
	for i := 0; i < min(maxTabletTries, len(tablets)); i++ {
		t := tablets[(start+i)%len(tablets)]
		if t.LeaderStoreID == dstID || !s.usable(cfg, t, used) {
			continue
		}
		if r, _ := t.ReplicaOn(dstID); r.Learner || t.IsPending(r.ID) {
			continue
		}
		src, ok := p.pos[t.LeaderStoreID]
		if !ok || !p.worthMoving(src, dst) {
			continue
		}
		if bestSrc < 0 || p.score[src] > p.score[bestSrc] || (p.score[src] == p.score[bestSrc] && t.QPS() < bestT.QPS()) {
			bestT, bestSrc = t, src
		}
	}
	if bestT == nil {
		return nil
	}
	return s.commit(p, bestT, bestSrc, dst, used)
}

func (s *BalanceLeaderScheduler) commit(p *balancePlan, t *Tablet, src, dst int, used map[uint64]bool) *Operator {
	p.score[src]--
	p.score[dst]++
	used[t.ID] = true
	return NewTransferLeaderOperator(t, KindBalanceLeader, p.stores[dst].store.ID)
}

// HotScheduler spreads read/write load: while the Up store whose leaders
// serve the most QPS is above the mean by more than HotTolerance, it moves
// the leadership of its hottest tablets (at least HotTabletQPS) to the
// follower store with the least leader load, when that lowers the maximum
// by more than HotTolerance of the mean. The store must have been the
// hottest that far above the mean for HotRounds rounds in a row, and a
// tablet whose leader moved within LeaderMoveCooldown stays put.
type HotScheduler struct {
	view OperatorView
	// hotStore was the hottest store over the tolerance in the last
	// hotRounds rounds in a row.
	hotStore  uint64
	hotRounds int
}

// NewHotScheduler returns the hot-tablet scheduler.
func NewHotScheduler(view OperatorView) *HotScheduler { return &HotScheduler{view: view} }

// Name implements Scheduler.
func (s *HotScheduler) Name() string { return "hot" }

// movedRecently: the tablet's leader moved within the cooldown, so its QPS
// is not yet measured on its new leader.
func movedRecently(v OperatorView, tabletID uint64) bool {
	_, ok := v.RecentLeaderMove(tabletID)
	return ok
}

// Schedule implements Scheduler.
func (s *HotScheduler) Schedule(c *Cluster, cfg Config) []*Operator {
	cfg = cfg.EnsureDefaults()
	slots := s.view.KindSlots(KindHot)
	if slots <= 0 {
		return nil
	}
	load := map[uint64]float64{}
	var hottest *storeIndex
	total, n := 0.0, 0
	for _, si := range c.stores {
		if si.store.State != StoreUp {
			continue
		}
		load[si.store.ID] = si.leaderQPS
		total += si.leaderQPS
		n++
		if hottest == nil || si.leaderQPS > hottest.leaderQPS {
			hottest = si
		}
	}
	margin := total / float64(n) * cfg.HotTolerance
	if n < 2 || hottest.leaderQPS <= total/float64(n)+margin {
		s.hotStore, s.hotRounds = 0, 0
		return nil
	}
	srcID := hottest.store.ID
	if srcID != s.hotStore {
		s.hotStore, s.hotRounds = srcID, 0
	}
	if s.hotRounds++; s.hotRounds < cfg.HotRounds {
		return nil
	}
	var hot []*Tablet
	for _, t := range hottest.tablets {
		if t.LeaderStoreID == srcID && t.QPS() >= cfg.HotTabletQPS && !s.view.HasOperator(t.ID) && !movedRecently(s.view, t.ID) && len(t.DownReplicas) == 0 {
			hot = append(hot, t)
		}
	}
	sort.Slice(hot, func(i, j int) bool {
		if hot[i].QPS() != hot[j].QPS() {
			return hot[i].QPS() > hot[j].QPS()
		}
		return hot[i].ID < hot[j].ID
	})
	var ops []*Operator
	for _, t := range hot {
		if len(ops) >= slots {
			break
		}
		var best uint64
		for _, r := range t.Replicas {
			if _, up := load[r.StoreID]; !up || r.StoreID == srcID || r.Learner || t.IsPending(r.ID) {
				continue
			}
			if best == 0 || load[r.StoreID] < load[best] {
				best = r.StoreID
			}
		}
		q := t.QPS()
		if best == 0 || load[best]+q >= load[srcID]-margin {
			continue
		}
		load[best] += q
		load[srcID] -= q
		op := NewTransferLeaderOperator(t, KindHot, best)
		op.Desc = fmt.Sprintf("hot tablet (%.0f qps): %s", q, op.Desc)
		ops = append(ops, op)
	}
	return ops
}
