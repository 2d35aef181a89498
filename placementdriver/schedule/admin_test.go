package schedule

import (
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A store's own snapshot limit overrides MaxSnapshotsPerStore, in the
// schedulers' choice of targets and in the Controller.
func TestStoreSnapshotLimit(t *testing.T) {
	cfg := testConfig()
	cfg.LocationLabels = nil
	cfg.TabletScheduleLimit = 100
	cfg.MaxSnapshotsPerStore = 4
	stores := []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, "")}
	stores[3].SnapshotLimit = 1 // the empty store takes one snapshot at a time
	tabs := keyed(1, 20, 1, 2, 3)
	f := newFixture(cfg, stores, tabs...)
	f.ctl.SetStoreLimits(map[uint64]int{4: 1})
	ops := NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	require.Len(t, ops, 1, "store 4 may receive one snapshot")
	require.NoError(t, f.ctl.AddOperator(ops[0], t0))
	extra := NewMoveOperator(f.c, tabs[10], f.alloc, KindBalanceTablet, 1, 4)
	require.ErrorIs(t, f.ctl.AddOperator(extra, t0), ErrSnapshotLimit)

	// Without the override the default applies again.
	f.ctl.SetStoreLimits(nil)
	require.NoError(t, f.ctl.AddOperator(extra, t0))
}

// A paused scheduler proposes nothing until its pause ends; checkers
// still run.
func TestPausedSchedulerSkipped(t *testing.T) {
	cfg := testConfig()
	cfg.LocationLabels = nil
	stores := []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, "")}
	tabs := keyed(1, 20, 1, 2, 3)
	for _, name := range []string{"balance-tablet", "balance-leader"} {
		f := newFixture(cfg, stores, tabs...)
		co := NewCoordinator(cfg, f.alloc, rand.New(rand.NewSource(1)))
		require.NotNil(t, co.Scheduler("balance-tablet"))
		require.Nil(t, co.Scheduler("nope"))
		co.Paused["balance-tablet"] = t0.Add(time.Minute)
		co.Paused[name] = t0.Add(time.Minute)
		res := co.Round(f.c, t0)
		require.Zero(t, res.AddedOf(KindBalanceTablet), "paused until t0+1m")
		require.True(t, co.IsPaused("balance-tablet", t0))
		require.False(t, co.IsPaused("balance-tablet", t0.Add(time.Minute)))
		res = co.Round(f.c, t0.Add(time.Minute))
		require.NotZero(t, res.AddedOf(KindBalanceTablet), "the pause is over")
	}
}
