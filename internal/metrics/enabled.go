package metrics

import (
	"os"
	"sync/atomic"
)

// disabled turns off per-request collection (latency histograms and
// per-event counters on hot paths); scrape-time collectors still answer.
// It exists to measure what collection costs (docs/performance.md): set
// SHALE_METRICS=off in a process's environment, or call SetEnabled.
var disabled atomic.Bool

func init() { disabled.Store(os.Getenv("SHALE_METRICS") == "off") }

// Enabled reports whether hot-path collection is on.
func Enabled() bool { return !disabled.Load() }

// SetEnabled turns hot-path collection on or off (for benchmarks).
func SetEnabled(on bool) { disabled.Store(!on) }
