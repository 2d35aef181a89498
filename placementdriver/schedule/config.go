package schedule

import (
	"errors"
	"time"
)

// Config holds the scheduling knobs. Zero values mean "default" and are
// filled by EnsureDefaults; a negative limit means "unlimited".
type Config struct {
	// MaxReplicas is the number of voters per tablet. Default 3.
	MaxReplicas int
	// LocationLabels are the store label keys that form failure domains,
	// most general first, e.g. ["zone", "rack", "host"]. Empty: any store is
	// as good as any other.
	LocationLabels []string

	// SplitSize: tablets larger than this (bytes) are split at the middle
	// key the leader chooses. Default 96 MiB.
	SplitSize uint64
	// SplitQPS: a tablet whose read+write QPS exceeds this for
	// SplitHotReports consecutive reports (Tablet.HotReports) is split at
	// its LoadSplitKey. Default 3000; negative disables load split.
	SplitQPS float64
	// SplitHotReports: consecutive hot reports needed. Default 3.
	SplitHotReports int
	// MergeSize: adjacent tablets both smaller than this (bytes) are merged.
	// Default 20 MiB.
	MergeSize uint64
	// DisableMerge turns the merge checker off.
	DisableMerge bool
	// SplitMergeInterval: a tablet whose range changed more recently than
	// this is not merged, so fresh splits (and pre-split tables, whose
	// tablets look empty at first) are not undone. Default 1h.
	SplitMergeInterval time.Duration

	// MaxSnapshotsPerStore bounds the add-learner steps in flight that
	// touch a store, as receiver (the learner's store) or sender (the
	// tablet's leader). Default 4.
	MaxSnapshotsPerStore int

	// Concurrency limits per operator kind (operators in flight).
	TabletScheduleLimit  int // balance-tablet; default 8
	LeaderScheduleLimit  int // balance-leader; default 8
	ReplicaScheduleLimit int // replica-repair and placement; default 64
	HotScheduleLimit     int // hot; default 4
	MergeScheduleLimit   int // merge (including the replica alignment before it); default 8

	// BalanceTolerance: stores are balanced when the difference between the
	// fullest and the emptiest is at most this fraction of the mean (and
	// never less than one tablet or leader). Default 0.05.
	BalanceTolerance float64
	// HotTabletQPS: tablets below this read+write QPS are never moved by
	// the hot scheduler. Default 100.
	HotTabletQPS float64
	// HotTolerance: the hot scheduler acts while the store whose leaders
	// serve the most QPS is above the mean by more than this fraction,
	// and only on moves that lower that store's load by more than it.
	// Wider than BalanceTolerance because QPS is a noisy measure (one
	// heartbeat's worth) where counts are exact: at 5% the scheduler
	// chased noise. Default 0.2.
	HotTolerance float64
	// HotRounds: consecutive scheduling rounds the same store must stay
	// that far above the mean before the hot scheduler moves a leader off
	// it, as PD's hot degree: one noisy report is not a hot spot.
	// Default 3.
	HotRounds int

	// LeaderMoveCooldown: the hot scheduler leaves a tablet whose leader
	// balance-leader or hot moved less than this ago (its QPS is measured
	// afresh on the new leader), and balance-leader leaves one that hot
	// moved (it would undo the move): without it the two chased each
	// other on a noisy load, each move interrupting the tablet's
	// requests. Repair and drain are not held back. Default 2 min.
	LeaderMoveCooldown time.Duration

	// MaxStoreDownTime: a Down store's replicas are replaced once
	// Store.DownFor reaches this. Default 30 min.
	MaxStoreDownTime time.Duration

	// LeaderTimeout bounds operators made only of leader transfers; Timeout
	// bounds all others (snapshots take a while). Defaults 1 min and 10 min.
	LeaderTimeout, Timeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{}.EnsureDefaults() }

// EnsureDefaults returns a copy with zero fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setInt(&c.MaxReplicas, 3)
	setInt(&c.SplitHotReports, 3)
	setInt(&c.HotRounds, 3)
	setInt(&c.MaxSnapshotsPerStore, 4)
	setInt(&c.TabletScheduleLimit, 8)
	setInt(&c.LeaderScheduleLimit, 8)
	setInt(&c.ReplicaScheduleLimit, 64)
	setInt(&c.HotScheduleLimit, 4)
	setInt(&c.MergeScheduleLimit, 8)
	if c.SplitSize == 0 {
		c.SplitSize = 96 << 20
	}
	if c.SplitQPS == 0 {
		c.SplitQPS = 3000
	}
	if c.SplitMergeInterval == 0 {
		c.SplitMergeInterval = time.Hour
	}
	if c.MergeSize == 0 {
		c.MergeSize = 20 << 20
	}
	if c.BalanceTolerance == 0 {
		c.BalanceTolerance = 0.05
	}
	if c.HotTabletQPS == 0 {
		c.HotTabletQPS = 100
	}
	if c.HotTolerance == 0 {
		c.HotTolerance = 0.2
	}
	if c.MaxStoreDownTime == 0 {
		c.MaxStoreDownTime = 30 * time.Minute
	}
	if c.LeaderMoveCooldown == 0 {
		c.LeaderMoveCooldown = 2 * time.Minute
	}
	if c.LeaderTimeout == 0 {
		c.LeaderTimeout = time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	return c
}

// Validate rejects impossible combinations (call after EnsureDefaults).
func (c Config) Validate() error {
	switch {
	case c.MaxReplicas < 1:
		return errors.New("schedule: MaxReplicas must be at least 1")
	case c.MergeSize*2 > c.SplitSize:
		return errors.New("schedule: MergeSize must be at most half of SplitSize, or merged tablets split again")
	case c.BalanceTolerance < 0:
		return errors.New("schedule: BalanceTolerance must not be negative")
	case c.HotTolerance < 0:
		return errors.New("schedule: HotTolerance must not be negative")
	}
	return nil
}

// limit returns the concurrency limit for a kind; < 0 means unlimited.
func (c Config) limit(k OpKind) int {
	switch k {
	case KindBalanceTablet:
		return c.TabletScheduleLimit
	case KindBalanceLeader:
		return c.LeaderScheduleLimit
	case KindReplicaRepair, KindPlacement:
		return c.ReplicaScheduleLimit
	case KindHot:
		return c.HotScheduleLimit
	case KindMerge:
		return c.MergeScheduleLimit
	}
	return -1
}
