// Package sim is a deterministic placement simulator for package schedule,
// in the spirit of PD's pd-simulator and CockroachDB's asim: a cluster of
// stores and tablets whose leaders execute operator commands after a
// simulated delay, driven tick by tick through the same Coordinator and
// Controller the PD server uses. It has no goroutines and no wall clock.
package sim

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
	"time"

	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/pdpb"
)

// Options describe a simulated cluster.
type Options struct {
	Stores  int // default 100
	Tablets int // default 100,000
	Zones   int // stores are spread round-robin over this many zones; default 5
	// Balanced starts from a balanced, well-placed layout (for steady-state
	// benchmarks) instead of the skewed one: every tablet on stores 1..10,
	// every leader on store 1.
	Balanced bool
	Seed     int64
	Config   schedule.Config // LocationLabels default to ["zone","host"]
	// Tick is the simulated time between scheduling rounds; default 10 s.
	Tick time.Duration
	// SnapshotTicks is how long an AddLearner takes; other commands take
	// one tick. Default 2.
	SnapshotTicks int
}

// EnsureDefaults returns a copy of o with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.Stores == 0 {
		o.Stores = 100
	}
	if o.Tablets == 0 {
		o.Tablets = 100_000
	}
	if o.Zones == 0 {
		o.Zones = 5
	}
	if o.Tick == 0 {
		o.Tick = 10 * time.Second
	}
	if o.SnapshotTicks == 0 {
		o.SnapshotTicks = 2
	}
	if o.Config.LocationLabels == nil {
		o.Config.LocationLabels = []string{"zone", "host"}
	}
	o.Config = o.Config.EnsureDefaults()
	return o
}

// Validate reports a setting the simulator cannot run with.
func (o Options) Validate() error {
	if o.Stores < 0 || o.Tablets < 0 || o.Zones < 0 || o.Tick < 0 || o.SnapshotTicks < 0 {
		return fmt.Errorf("sim: negative setting in %+v", o)
	}
	return nil
}

// exec is a command the simulated leader is carrying out.
type exec struct {
	cmd *pdpb.TabletCommand
	due int
}

// Sim is one simulated cluster.
type Sim struct {
	Opts    Options
	Cluster *schedule.Cluster
	Co      *schedule.Coordinator
	Tick    int
	Now     time.Time

	nextID  uint64
	running map[uint64]exec // tablet ID → command in progress
	// Trace receives every operator the coordinator adds, if set.
	Trace func(op *schedule.Operator)
	// Applied counts executed commands by type.
	Applied map[string]int
}

// AllocID implements schedule.IDAllocator.
func (s *Sim) AllocID() uint64 { s.nextID++; return s.nextID }

// Key returns the start key of the i-th initial tablet.
func Key(i int) []byte { return []byte(fmt.Sprintf("t%08d", i)) }

// New builds the cluster.
func New(opts Options) (*Sim, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	rnd := rand.New(rand.NewSource(opts.Seed))
	s := &Sim{Opts: opts, Now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), running: map[uint64]exec{}, Applied: map[string]int{}}
	stores := make([]*schedule.Store, opts.Stores)
	byZone := make([][]uint64, opts.Zones)
	for i := range stores {
		id := uint64(i + 1)
		z := i % opts.Zones
		stores[i] = &schedule.Store{
			ID:     id,
			State:  schedule.StoreUp,
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", z), "host": fmt.Sprintf("h%d", id)},
		}
		byZone[z] = append(byZone[z], id)
	}
	s.nextID = uint64(opts.Stores) + 1_000_000
	tablets := make([]*schedule.Tablet, opts.Tablets)
	for i := range tablets {
		t := &schedule.Tablet{
			ID:       uint64(i + 1),
			StartKey: Key(i),
			Version:  1, ConfVersion: 1,
			Size:     uint64(24+rnd.Intn(48)) << 20,
			Keys:     100_000,
			ReadQPS:  float64(rnd.Intn(20)),
			WriteQPS: float64(rnd.Intn(10)),
		}
		if i+1 < len(tablets) {
			t.EndKey = Key(i + 1)
		}
		if i == 0 {
			t.StartKey = nil
		}
		if rnd.Intn(1000) == 0 {
			t.Size = 150 << 20 // will be split
		}
		if rnd.Intn(2000) == 0 {
			t.ReadQPS = 1500 // hot, but below SplitQPS
		}
		var on []uint64
		if opts.Balanced {
			zs := rnd.Perm(opts.Zones)[:min(3, opts.Zones)]
			for _, z := range zs {
				on = append(on, byZone[z][rnd.Intn(len(byZone[z]))])
			}
		} else {
			// Store 1 (zone 0) plus two of stores 2..10 in two other zones.
			on = append(on, 1)
			zs := rnd.Perm(opts.Zones - 1)[:2]
			for _, z := range zs {
				cands := byZone[z+1]
				if len(cands) > 2 {
					cands = cands[:2] // stores 2..10 only
				}
				on = append(on, cands[rnd.Intn(len(cands))])
			}
		}
		for _, st := range on {
			t.Replicas = append(t.Replicas, schedule.Replica{ID: s.AllocID(), StoreID: st})
		}
		t.LeaderStoreID = on[0]
		tablets[i] = t
	}
	s.Cluster = schedule.NewCluster(stores, tablets)
	s.Co = schedule.NewCoordinator(opts.Config, s, rand.New(rand.NewSource(opts.Seed+1)))
	return s, nil
}

// Step runs one tick: apply the commands that are due, let every tablet
// with an operator report (Dispatch) and start its next command, then run
// a scheduling round.
func (s *Sim) Step() schedule.RoundResult {
	s.Tick++
	s.Now = s.Now.Add(s.Opts.Tick)
	ids := make([]uint64, 0, len(s.running))
	for id, e := range s.running {
		if e.due <= s.Tick {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	// A leader reports right after applying a change (as TiKV does on
	// conf changes), so the next step starts in the same tick.
	for _, id := range ids {
		e := s.running[id]
		delete(s.running, id)
		s.apply(e.cmd)
		s.dispatch(id)
	}
	res := s.Co.Round(s.Cluster, s.Now)
	// New operators go out with the next heartbeat response.
	for _, op := range s.Co.Controller.Operators() {
		if op.Created.Equal(s.Now) {
			s.dispatch(op.TabletID)
		}
	}
	if s.Trace != nil {
		for _, op := range s.Co.Controller.Operators() {
			if op.Created.Equal(s.Now) {
				s.Trace(op)
			}
		}
	}
	return res
}

func (s *Sim) dispatch(id uint64) {
	if _, busy := s.running[id]; busy {
		return
	}
	t := s.Cluster.Tablet(id)
	if t == nil {
		return
	}
	if cmd := s.Co.Controller.Dispatch(t, s.Now); cmd != nil {
		delay := 1
		if cr := cmd.GetChangeReplicas(); cr != nil && cr.GetChanges()[0].GetType() == pdpb.TabletCommand_ChangeReplicas_Change_ADD_LEARNER {
			delay = s.Opts.SnapshotTicks
		}
		s.running[t.ID] = exec{cmd: cmd, due: s.Tick + delay}
	}
}

// apply carries out a command as the tablet's leader would, and reports
// the result to the cluster.
func (s *Sim) apply(cmd *pdpb.TabletCommand) {
	cur := s.Cluster.Tablet(cmd.GetTabletId())
	if cur == nil || cur.Version != cmd.GetEpoch().GetVersion() || cur.ConfVersion != cmd.GetEpoch().GetConfVersion() {
		s.Applied["stale"]++
		return // epoch mismatch: the leader rejects it
	}
	t := cur.Clone()
	switch c := cmd.GetCmd().(type) {
	case *pdpb.TabletCommand_TransferLeader_:
		if r, ok := t.ReplicaOn(c.TransferLeader.GetToStoreId()); ok && !r.Learner {
			t.LeaderStoreID = r.StoreID
			if t.Term != 0 {
				t.Term++ // the new leader campaigns at the next term
			}
		}
		s.Applied["transfer-leader"]++
	case *pdpb.TabletCommand_ChangeReplicas_:
		for _, ch := range c.ChangeReplicas.GetChanges() {
			switch ch.GetType() {
			case pdpb.TabletCommand_ChangeReplicas_Change_ADD_LEARNER:
				if !t.HasStore(ch.GetStoreId()) {
					t.Replicas = append(t.Replicas, schedule.Replica{ID: ch.GetReplicaId(), StoreID: ch.GetStoreId(), Learner: true})
				}
			case pdpb.TabletCommand_ChangeReplicas_Change_PROMOTE_LEARNER:
				for i := range t.Replicas {
					if t.Replicas[i].ID == ch.GetReplicaId() {
						t.Replicas[i].Learner = false
					}
				}
			case pdpb.TabletCommand_ChangeReplicas_Change_REMOVE:
				for i := range t.Replicas {
					if t.Replicas[i].ID == ch.GetReplicaId() {
						t.Replicas = append(t.Replicas[:i], t.Replicas[i+1:]...)
						break
					}
				}
			}
			s.Applied[ch.GetType().String()]++
		}
		// Like a real leader: several changes go through joint consensus,
		// entering and leaving it, which raises the conf version twice.
		t.ConfVersion++
		if len(c.ChangeReplicas.GetChanges()) > 1 {
			t.ConfVersion++
		}
	case *pdpb.TabletCommand_Split_:
		key := c.Split.GetSplitKey()
		if len(key) == 0 {
			key = append(append([]byte(nil), t.StartKey...), 0x80)
		}
		if !t.ContainsKey(key) || bytes.Equal(key, t.StartKey) {
			return
		}
		right := t.Clone()
		right.ID = c.Split.GetNewTabletId()
		right.StartKey = key
		for i := range right.Replicas {
			right.Replicas[i].ID = c.Split.GetNewReplicaIds()[i]
		}
		t.EndKey = key
		t.Version++
		right.Version = t.Version
		t.Size /= 2
		right.Size = t.Size
		s.mustPut(t)
		s.mustPut(right)
		s.Applied["split"]++
		return
	case *pdpb.TabletCommand_Merge_:
		r := s.Cluster.Tablet(c.Merge.GetRightTabletId())
		if r == nil {
			return
		}
		t.EndKey = r.EndKey
		t.Version = max(t.Version, r.Version) + 1
		t.Size += r.Size
		s.Applied["merge"]++
	}
	s.mustPut(t)
}

func (s *Sim) mustPut(t *schedule.Tablet) {
	if _, err := s.Cluster.PutTablet(t); err != nil {
		panic(err)
	}
}

// Balance summarises how far the cluster is from the goal.
type Balance struct {
	MeanTablets, MeanLeaders       float64
	MinTablets, MaxTablets         int
	MinLeaders, MaxLeaders         int
	PlacementViolations, Unhealthy int
}

func (b Balance) String() string {
	return fmt.Sprintf("tablets %d..%d (mean %.0f) leaders %d..%d (mean %.0f) placement violations %d unhealthy %d",
		b.MinTablets, b.MaxTablets, b.MeanTablets, b.MinLeaders, b.MaxLeaders, b.MeanLeaders, b.PlacementViolations, b.Unhealthy)
}

// Within reports whether every store is within frac of the mean tablet and
// leader counts and no tablet violates placement or lacks replicas.
func (b Balance) Within(frac float64) bool {
	in := func(v int, mean float64) bool { return float64(v) >= mean*(1-frac) && float64(v) <= mean*(1+frac) }
	return in(b.MinTablets, b.MeanTablets) && in(b.MaxTablets, b.MeanTablets) &&
		in(b.MinLeaders, b.MeanLeaders) && in(b.MaxLeaders, b.MeanLeaders) &&
		b.PlacementViolations == 0 && b.Unhealthy == 0
}

// Measure computes the Balance over Up stores.
func (s *Sim) Measure() Balance {
	var b Balance
	n, tt, tl := 0, 0, 0
	for _, st := range s.Cluster.Stores() {
		if st.State != schedule.StoreUp {
			continue
		}
		ct, cl := s.Cluster.StoreTabletCount(st.ID), s.Cluster.StoreLeaderCount(st.ID)
		if n == 0 || ct < b.MinTablets {
			b.MinTablets = ct
		}
		if n == 0 || cl < b.MinLeaders {
			b.MinLeaders = cl
		}
		b.MaxTablets, b.MaxLeaders = max(b.MaxTablets, ct), max(b.MaxLeaders, cl)
		tt += ct
		tl += cl
		n++
	}
	b.MeanTablets, b.MeanLeaders = float64(tt)/float64(n), float64(tl)/float64(n)
	b.PlacementViolations = schedule.CountPlacementViolations(s.Cluster, s.Opts.Config.LocationLabels)
	for _, t := range s.Cluster.Tablets() {
		if t.VoterCount() != s.Opts.Config.MaxReplicas {
			b.Unhealthy++
		}
	}
	return b
}

// Run steps until the cluster is within frac of balance (checked every
// tick) or maxTicks pass, returning the ticks taken and whether it
// converged.
func (s *Sim) Run(frac float64, maxTicks int) (int, bool) {
	for s.Tick < maxTicks {
		s.Step()
		if s.Measure().Within(frac) {
			return s.Tick, true
		}
	}
	return s.Tick, false
}
