package admission

import (
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// Class is a kind of work the controller tells apart.
type Class int

// The classes. Foreground is the user's; the others are the store's own.
const (
	// Foreground: user reads and writes (the Tablet API).
	Foreground Class = iota
	// Snapshot: raft snapshots sent for rebalancing and repair.
	Snapshot
	// Ingest: SSTs uploaded for bulk import.
	Ingest
	// Export: cells read out for a backup.
	Export
	// Consistency: hashing replicas for consistency checks.
	Consistency
	// GC: MVCC version and request-ID (dedup) garbage collection.
	GC
	// NumClasses counts the classes.
	NumClasses
)

var classNames = [NumClasses]string{"foreground", "snapshot", "ingest", "export", "consistency", "gc"}

func (c Class) String() string {
	if c >= 0 && c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// ParseClass is the inverse of String.
func ParseClass(s string) (Class, error) {
	for i, n := range classNames {
		if n == s {
			return Class(i), nil
		}
	}
	return 0, fmt.Errorf("admission: unknown work class %q (one of %v)", s, classNames)
}

// writes reports background classes that write to the engine: they also
// yield while L0 is overloaded.
func (c Class) writes() bool { return c == Ingest || c == GC || c == Snapshot }

// ClassSettings tune one background class.
type ClassSettings struct {
	// MaxBytesPerSec is the class's ceiling: the rate it runs at while the
	// foreground is healthy, and always when admission is off. Negative:
	// unlimited (with admission on, the adaptive rate then tops out at
	// UnlimitedCeiling).
	MaxBytesPerSec int64 `json:"max_bytes_per_sec"`
	// MinBytesPerSec is the floor the adaptive rate never goes below, so
	// background work always finishes. 0: a sixty-fourth of the ceiling, at
	// least 1 MiB/s.
	MinBytesPerSec int64 `json:"min_bytes_per_sec"`
	// Weight scales how fast the class regains its rate after a cut (the
	// additive step is Weight×IncreaseFraction of the ceiling); AIMD
	// shares converge in proportion to it. 0: 1.
	Weight float64 `json:"weight"`
}

// UnlimitedCeiling is the adaptive ceiling of a class whose MaxBytesPerSec
// is unlimited.
const UnlimitedCeiling = 1 << 30

// Settings are the controller's tunables, all changeable at run time
// (Controller.Update). The zero value of a field means its default.
type Settings struct {
	// Disabled turns admission control off (`--admission=off`):
	// foreground requests are admitted without limit and background
	// classes run at their fixed ceilings (the behaviour before this
	// package).
	Disabled bool `json:"disabled"`
	// SchedLatencyTarget is the p99 Go scheduling latency above which the
	// node counts as CPU-overloaded: the foreground's CPU slots shrink.
	// Default 5ms.
	SchedLatencyTarget time.Duration `json:"sched_latency_target"`
	// BackgroundSchedLatencyTarget is the p99 Go scheduling latency above
	// which the background rates are cut (when it lasts two intervals).
	// It is lower than SchedLatencyTarget because background work is
	// elastic: it should use only the CPU the foreground leaves idle, and
	// a foreground that already queues for the processor is past that
	// point (CockroachDB's elastic CPU controller aims at 1ms). Default
	// 2ms.
	BackgroundSchedLatencyTarget time.Duration `json:"background_sched_latency_target"`
	// MinSlots and MaxSlots bound the foreground CPU slots (in-flight
	// requests). A slot is held while a request runs, raft commit
	// included, so there are many per core. Defaults 16 and 512 per
	// GOMAXPROCS.
	MinSlots int `json:"min_slots"`
	MaxSlots int `json:"max_slots"`
	// MaxQueue caps the foreground requests waiting for a slot or write
	// tokens, as a memory bound only: more get ServerBusy at once. The
	// queue is bounded by expected wait: a request queues for a slot only
	// when its position / slots × the smoothed service time fits its
	// budget (MaxQueueWait, and half its remaining deadline). Default
	// 64×MinSlots.
	MaxQueue int `json:"max_queue"`
	// MaxQueueWait bounds how long a foreground request waits (and never
	// past half its remaining deadline) before it gets ServerBusy.
	// Default 100ms.
	MaxQueueWait time.Duration `json:"max_queue_wait"`
	// MaxBackgroundWait bounds how long one Pace call yields to the
	// foreground before it goes on at its class's rate. Default 1s.
	MaxBackgroundWait time.Duration `json:"max_background_wait"`
	// L0SublevelThreshold, L0FileThreshold and CompactionDebtThreshold
	// say when Pebble's L0 is overloaded: at any of them writes are paced
	// by write tokens. Defaults 8 sublevels (Pebble stops writes at 12),
	// 500 files, 8 GiB.
	L0SublevelThreshold     int   `json:"l0_sublevel_threshold"`
	L0FileThreshold         int64 `json:"l0_file_threshold"`
	CompactionDebtThreshold int64 `json:"compaction_debt_threshold"`
	// LogSyncLatencyThreshold is the raft-log sync latency above which a
	// sync counts as slow. Default 10ms.
	LogSyncLatencyThreshold time.Duration `json:"log_sync_latency_threshold"`
	// MaxSlowLogSyncFraction is the smoothed fraction of slow raft-log
	// syncs above which the disk counts as overloaded and the background
	// rates are cut (when at least 3 syncs of the interval were slow).
	// In (0, 1]; default 0.02.
	MaxSlowLogSyncFraction float64 `json:"max_slow_log_sync_fraction"`
	// IncreaseFraction is the additive step of the background rates, a
	// fraction of the ceiling per healthy interval (times Weight).
	// Default 1/64.
	IncreaseFraction float64 `json:"increase_fraction"`
	// Classes tune the background classes, by Class.String(). Missing
	// classes keep their current settings.
	Classes map[string]ClassSettings `json:"classes"`
}

// Options configure a Controller: its settings and its inputs.
type Options struct {
	Settings
	// Interval is how often Tick adjusts slots, tokens and rates (the
	// store runs it). Default 250ms.
	Interval time.Duration
	// Clock times queue waits and service times. Default the real clock.
	Clock clock.WithTicker
	// SchedLatency returns the p99 Go scheduling latency since its last
	// call. Default: NewSchedSampler().P99.
	SchedLatency func() time.Duration
	// Engine returns the engine's L0 state. nil: writes are never paced
	// by tokens.
	Engine func() EngineStats
	// Registry gets the metrics. nil: not registered.
	Registry prometheus.Registerer
	// SharedBy is how many controllers (stores) share this process's CPU,
	// as the playground's do; 0 or 1: alone. They all read the one
	// process's scheduling latency and so cut and climb together: each
	// takes 1/SharedBy of a class's additive step and of its default
	// floor (never below 1 MiB/s), so that together they climb and settle
	// as one store does (docs/qos.md, "Several stores in one process").
	SharedBy int
}

// DefaultClassSettings are the background classes' defaults; a store
// fills the ceilings from its options.
func DefaultClassSettings() map[string]ClassSettings {
	return map[string]ClassSettings{
		Snapshot.String():    {MaxBytesPerSec: 32 << 20, Weight: 4},
		Ingest.String():      {MaxBytesPerSec: 256 << 20, Weight: 2},
		Export.String():      {MaxBytesPerSec: 64 << 20, Weight: 2},
		Consistency.String(): {MaxBytesPerSec: 8 << 20, Weight: 1},
		GC.String():          {MaxBytesPerSec: 32 << 20, Weight: 1},
	}
}

// withDefaults fills the zero fields of s.
func (s Settings) withDefaults() Settings {
	procs := runtime.GOMAXPROCS(0)
	if s.SchedLatencyTarget <= 0 {
		s.SchedLatencyTarget = 5 * time.Millisecond
	}
	if s.BackgroundSchedLatencyTarget <= 0 {
		s.BackgroundSchedLatencyTarget = 2 * time.Millisecond
	}
	if s.MinSlots <= 0 {
		s.MinSlots = 16 * procs
	}
	if s.MaxSlots <= 0 {
		s.MaxSlots = 512 * procs
	}
	if s.MaxQueue <= 0 {
		s.MaxQueue = 64 * s.MinSlots
	}
	if s.MaxQueueWait <= 0 {
		s.MaxQueueWait = 100 * time.Millisecond
	}
	if s.MaxBackgroundWait <= 0 {
		s.MaxBackgroundWait = time.Second
	}
	if s.L0SublevelThreshold <= 0 {
		s.L0SublevelThreshold = 8
	}
	if s.L0FileThreshold <= 0 {
		s.L0FileThreshold = 500
	}
	if s.CompactionDebtThreshold <= 0 {
		s.CompactionDebtThreshold = 8 << 30
	}
	if s.IncreaseFraction <= 0 {
		s.IncreaseFraction = 1.0 / 64
	}
	if s.LogSyncLatencyThreshold <= 0 {
		s.LogSyncLatencyThreshold = 10 * time.Millisecond
	}
	if s.MaxSlowLogSyncFraction == 0 {
		s.MaxSlowLogSyncFraction = 0.02
	}
	return s
}

// validate rejects contradictory settings (after withDefaults).
func (s Settings) validate() error {
	if s.MinSlots > s.MaxSlots {
		return fmt.Errorf("admission: min_slots %d is above max_slots %d", s.MinSlots, s.MaxSlots)
	}
	if s.IncreaseFraction > 1 {
		return fmt.Errorf("admission: increase_fraction %v is above 1", s.IncreaseFraction)
	}
	if !(s.MaxSlowLogSyncFraction > 0 && s.MaxSlowLogSyncFraction <= 1) {
		return fmt.Errorf("admission: max_slow_log_sync_fraction %v is outside (0, 1]; use e.g. 0.02 (2%% of raft-log syncs slow), or 0 for the default", s.MaxSlowLogSyncFraction)
	}
	for name, cs := range s.Classes {
		c, err := ParseClass(name)
		if err != nil {
			return err
		}
		if c == Foreground {
			return fmt.Errorf("admission: class foreground has no rate settings (it is admitted by slots and write tokens)")
		}
		if cs.MinBytesPerSec < 0 || cs.Weight < 0 {
			return fmt.Errorf("admission: class %s: min_bytes_per_sec and weight must not be negative", name)
		}
		if cs.MaxBytesPerSec > 0 && cs.MinBytesPerSec > cs.MaxBytesPerSec {
			return fmt.Errorf("admission: class %s: min_bytes_per_sec %d is above max_bytes_per_sec %d", name, cs.MinBytesPerSec, cs.MaxBytesPerSec)
		}
	}
	return nil
}

// ceiling is the class's adaptive ceiling in bytes per second.
func (cs ClassSettings) ceiling() float64 {
	if cs.MaxBytesPerSec <= 0 {
		return UnlimitedCeiling
	}
	return float64(cs.MaxBytesPerSec)
}

// floor is the class's adaptive floor in bytes per second, for one of
// sharedBy (at least 1) stores in a process (an explicit MinBytesPerSec
// is not divided: it is the operator's per-store floor).
func (cs ClassSettings) floor(sharedBy int) float64 {
	if cs.MinBytesPerSec > 0 {
		return min(float64(cs.MinBytesPerSec), cs.ceiling())
	}
	return min(max(cs.ceiling()/64/float64(sharedBy), 1<<20), cs.ceiling())
}

func (cs ClassSettings) weight() float64 {
	if cs.Weight <= 0 {
		return 1
	}
	return cs.Weight
}
