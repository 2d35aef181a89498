package admission

import "time"

// The raft log's fsync latency is the disk signal of the background
// rates (TiKV's slow score, CockroachDB's disk-bandwidth pacing of
// elastic work): bulk writes and the raft log share the disk, and the
// scheduler latency does not see a slow disk.

// minSlowLogSyncs is how many slow syncs an interval needs before the disk
// counts as unhealthy, so one slow sync among few does not halve the rates.
const minSlowLogSyncs = 3

// slowSync is added to logSyncs for a slow sync: the slow syncs count in
// the upper 32 bits, all syncs in the lower 32 (one atomic add per sync;
// Tick swaps the word out every interval, far below 2^32 syncs).
const slowSync = 1<<32 + 1

// ObserveLogSync records one raft-log sync that took d. It is on the raft
// worker's hot path: one atomic load and one atomic add, no lock.
func (c *Controller) ObserveLogSync(d time.Duration) {
	if int64(d) > c.logSyncThreshold.Load() {
		c.logSyncs.Add(slowSync)
	} else {
		c.logSyncs.Add(1)
	}
}

// sampleLogSyncsLocked takes the interval's syncs and reports whether the
// disk is unhealthy: the smoothed fraction of slow syncs exceeds
// MaxSlowLogSyncFraction and at least minSlowLogSyncs were slow.
func (c *Controller) sampleLogSyncsLocked() (unhealthy bool) {
	v := c.logSyncs.Swap(0)
	syncs, slow := v&(1<<32-1), v>>32
	c.mu.slowSyncFrac = smooth(c.mu.slowSyncFrac, float64(slow)/float64(max(syncs, 1)))
	return slow >= minSlowLogSyncs && c.mu.slowSyncFrac > c.mu.s.MaxSlowLogSyncFraction
}
