package sim

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/stretchr/testify/require"
)

var (
	flagTablets = flag.Int("sim.tablets", 0, "tablets in TestSimConverges (default 100000, 10000 under -race)")
	flagVerbose = flag.Bool("sim.v", false, "log balance every tick")
)

// simOptions are the knobs of the convergence scenario. The skewed start
// needs ~270,000 replica moves, all sent at first from stores 1..10; with
// the production limits (4 snapshots per store) that is hours of simulated
// snapshot traffic, so the limits are raised: the scenario tests that the
// decisions converge, not transfer throughput.
// The seed is 42, the one the limits were tuned on, unless SHALE_TEST_SEED
// says otherwise.
func simOptions(tb testing.TB, tablets int) Options {
	return Options{
		Stores:  100,
		Tablets: tablets,
		Seed:    int64(testutils.SeedOr(tb, 42)),
		Config: schedule.Config{
			MaxSnapshotsPerStore: 256,
			TabletScheduleLimit:  8000,
			LeaderScheduleLimit:  4000,
			ReplicaScheduleLimit: 4000,
		},
	}
}

const maxTicks = 400

func TestSimConverges(t *testing.T) {
	n := defaultSimTablets
	if *flagTablets > 0 {
		n = *flagTablets
	}
	s, err := New(simOptions(t, n))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d stores, %d tablets; start: %s", s.Opts.Stores, n, s.Measure())
	converged := false
	for s.Tick < maxTicks && !converged {
		res := s.Step()
		b := s.Measure()
		if *flagVerbose || s.Tick%25 == 0 {
			t.Logf("tick %d: +%d ops (%d running, %d rejected): %s", s.Tick, res.Total(), s.Co.Controller.Len(), res.Rejected, b)
		}
		converged = b.Within(0.2)
	}
	b := s.Measure()
	t.Logf("tick %d: %s; applied %v", s.Tick, b, s.Applied)
	require.True(t, converged, "not converged after %d ticks: %s", s.Tick, b)
	for _, k := range []schedule.OpKind{schedule.KindBalanceTablet, schedule.KindBalanceLeader} {
		require.Zero(t, s.Co.Controller.EndedCount(k, schedule.OpTimedOut), "%s timeouts", k)
	}
}

// TestSimDeterministic runs the same seed twice and compares every operator.
func TestSimDeterministic(t *testing.T) {
	trace := func() string {
		s, err := New(simOptions(t, 3000))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		s.Trace = func(op *schedule.Operator) { fmt.Fprintln(h, op.String()) }
		for range 30 {
			s.Step()
		}
		fmt.Fprintln(h, s.Measure())
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	require.Equal(t, trace(), trace())
}

// BenchmarkScheduleRound measures one full scheduling round (all checkers
// over every tablet, then all schedulers) at 100 stores × 100k tablets.
// "skewed" is the starting layout of the simulation (many operators
// proposed), "balanced" the steady state (checkers find nothing).
func BenchmarkScheduleRound(b *testing.B) {
	for _, bal := range []bool{false, true} {
		name := "skewed"
		if bal {
			name = "balanced"
		}
		b.Run(name, func(b *testing.B) {
			opts := simOptions(b, 100_000)
			opts.Balanced = bal
			s, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			ops := 0
			for range b.N {
				b.StopTimer()
				co := schedule.NewCoordinator(s.Opts.Config, s, rand.New(rand.NewSource(1)))
				b.StartTimer()
				ops += co.Round(s.Cluster, s.Now).Total()
			}
			b.ReportMetric(float64(ops)/float64(b.N), "ops/round")
		})
	}
}

// TestSimLeadersSettleUnderNoisyLoad models a playground-sized cluster
// under a steady YCSB load: 4 stores, 12 tablets whose read QPS (means
// 100..400, about 3,000 in all) is redrawn every 1-second heartbeat with
// ±30% noise. Once the first minute has passed, the leader balancer and
// the hot scheduler must not keep moving leaders on that noise, undoing
// each other's moves: every transfer interrupts the tablet's foreground
// requests (they retry on the new leader). Before the fix the two
// schedulers moved 1,615 leaders in these ten minutes (seed 7).
func TestSimLeadersSettleUnderNoisyLoad(t *testing.T) {
	seed := int64(testutils.SeedOr(t, 7))
	s, err := New(Options{Stores: 4, Tablets: 12, Zones: 4, Balanced: true, Seed: seed, Tick: time.Second})
	require.NoError(t, err)
	rnd := rand.New(rand.NewSource(seed))
	means := make([]float64, 12)
	for i := range means {
		means[i] = 100 + 300*rnd.Float64()
	}
	transfers := 0
	s.Trace = func(op *schedule.Operator) {
		if s.Tick > 60 && (op.Kind == schedule.KindBalanceLeader || op.Kind == schedule.KindHot) {
			transfers++
		}
	}
	for s.Tick < 660 {
		for i, tab := range s.Cluster.Tablets() {
			c := tab.Clone()
			c.ReadQPS, c.WriteQPS = means[i]*(0.7+0.6*rnd.Float64()), 0
			s.mustPut(c)
		}
		s.Step()
	}
	b := s.Measure()
	t.Logf("seed %d: %d leader moves in minutes 1..11; %s", seed, transfers, b)
	require.LessOrEqual(t, b.MaxLeaders-b.MinLeaders, 2, "leaders stay balanced: %s", b)
	require.LessOrEqual(t, transfers, 20, "leaders moved on noise")
}
