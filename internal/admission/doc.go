// Package admission decides, on every tablet server, which work runs now,
// which waits and which is refused, so that foreground latency holds while
// the store does its own housekeeping (issue 22; docs/qos.md).
//
// Work comes in classes (Class): Foreground (user reads and writes) and
// the background classes Snapshot, Ingest, Export, Consistency and GC.
// One Controller per store admits them:
//
//   - Foreground requests take a CPU slot for as long as they run
//     (Admit/Ticket.Release). The number of slots follows the Go
//     scheduler's latency (runtime/metrics /sched/latencies:seconds, as
//     CockroachDB's kvSlotAdjuster and elastic CPU control do): fewer when
//     runnable goroutines wait longer than SchedLatencyTarget, more when
//     the slots are all in use and the scheduler keeps up. Writes also take
//     byte tokens; while Pebble's L0 is overloaded (sublevels, file count
//     or compaction debt over their thresholds) the tokens per interval
//     are what compactions drained out of L0, as CockroachDB's store
//     write tokens. A request that finds no slot or token waits in a
//     FIFO, at most MaxQueueWait and never past half its deadline; it
//     queues for a slot only when its expected wait (position / slots ×
//     smoothed service time) fits that budget. Otherwise, past the wait,
//     or with the queue at its memory bound (MaxQueue), it gets
//     errs.ServerBusy with a retry-after hint, which kvclient and the
//     Thrift gateway honour.
//   - Background work calls Pace before each chunk of bytes. It yields
//     first: it waits while foreground requests queue (background writers
//     also while L0 is overloaded), at most MaxBackgroundWait per call so
//     that it always finishes, and it is paced by a rate per class that
//     follows the foreground's health (AIMD): the rate grows by
//     Weight×IncreaseFraction of its ceiling every healthy interval and
//     halves every unhealthy one, never below its floor. Scheduling lag
//     (one interval's p99 over BackgroundSchedLatencyTarget, lower than
//     the foreground's target: background work is elastic, as in
//     CockroachDB) must last two intervals in a row to cut; a single
//     lagging interval holds the rates. A slow disk
//     makes an interval unhealthy too: the store reports each raft-log
//     fsync (ObserveLogSync), and too large a smoothed fraction of slow
//     ones cuts the rates (not the foreground's slots or tokens).
//     Stores that share one process (Options.SharedBy) read the same
//     scheduling latency and move in step, so each takes its share of
//     the additive step and of the default floor.
//
// Tick runs the controllers once (every Interval, from the store's
// Stopper); its inputs are injected (Options.SchedLatency, Options.Engine,
// Options.Clock), so the tests drive it deterministically.
//
// Settings change at run time (Controller.Update; the tablet server's
// PUT /admission). Disabled (`--admission=off`) admits every
// foreground request and paces background work at its fixed ceiling only,
// as before this package: the benchmark runs both side by side.
//
// Quotas (per table or user limits stored in PD) are a separate layer: a
// quota check runs before Admit and does not change this package.
package admission
