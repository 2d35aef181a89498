package store

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/proto/metapb"
)

// collector computes the store's gauges and the engine's metrics when
// Prometheus scrapes, so that nothing on a request or raft path keeps them
// up to date.
type collector struct {
	s                                     *Store
	tablets, leaders, quiescent, active   *prometheus.Desc
	pendingChanges                        *prometheus.Desc
	diskCapacity, diskAvailable, diskUsed *prometheus.Desc
	diskFull, storageFailed, ballast      *prometheus.Desc
	l0Files, l0Sublevels, debt, readAmp   *prometheus.Desc
	cacheHits, cacheMisses, walFsync      *prometheus.Desc
	flushes, ingestFlushes, flushedBytes  *prometheus.Desc
}

func newCollector(s *Store) *collector {
	d := func(subsystem, name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("shale", subsystem, name), help, nil, nil)
	}
	return &collector{
		s:              s,
		tablets:        d("store", "tablets", "Initialized tablet replicas on this store."),
		leaders:        d("store", "leaders", "Tablet replicas on this store that lead their raft group."),
		quiescent:      d("store", "tablets_quiescent", "Tablet replicas whose raft group is quiesced (not ticking)."),
		active:         d("store", "tablets_active", "Tablet replicas whose raft group is awake (ticking)."),
		pendingChanges: d("store", "pending_membership_changes", "Tablets led here whose membership change is under way (learners or a joint configuration)."),
		diskCapacity:   d("store", "disk_capacity_bytes", "Size of the file system holding the data directory."),
		diskAvailable:  d("store", "disk_available_bytes", "Bytes available to the store on the file system holding the data directory."),
		diskUsed:       d("store", "disk_used_bytes", "Bytes the engine uses on disk (tables, WAL, manifests)."),
		diskFull:       d("store", "disk_full", "1 while the store refuses writes for lack of disk space (or a failed engine), else 0."),
		storageFailed:  d("store", "storage_failed", "1 once an engine write failed and the store's raft worker stopped (restart after fixing the disk), else 0."),
		ballast:        d("store", "ballast_bytes", "Size of the store's ballast file (0 once released because the disk is full)."),
		l0Files:        d("pebble", "l0_files", "Sstables in level 0 of the engine."),
		l0Sublevels:    d("pebble", "l0_sublevels", "Sublevels of level 0 (its read amplification)."),
		debt:           d("pebble", "compaction_debt_bytes", "Estimated bytes to compact for the LSM to reach a stable state."),
		readAmp:        d("pebble", "read_amplification", "Sublevels and levels a point read may have to consult."),
		cacheHits:      d("pebble", "block_cache_hits_total", "Block cache hits."),
		cacheMisses:    d("pebble", "block_cache_misses_total", "Block cache misses."),
		walFsync:       d("pebble", "wal_fsync_seconds", "Latency of the engine's WAL fsyncs (Pebble's histogram, re-bucketed)."),
		flushes:        d("pebble", "flushes_total", "Memtable flushes of the engine, whatever started them."),
		ingestFlushes:  d("pebble", "ingest_flushes_total", "Flushes that carried ingested sstables: an ingest overlapped the memtable, so the memtable was flushed early."),
		flushedBytes:   d("pebble", "flushed_bytes_total", "Bytes of sstables written by memtable flushes."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tablets, c.leaders, c.quiescent, c.active, c.pendingChanges,
		c.diskCapacity, c.diskAvailable, c.diskUsed, c.l0Files, c.l0Sublevels, c.debt, c.readAmp,
		c.cacheHits, c.cacheMisses, c.walFsync, c.diskFull, c.storageFailed, c.ballast,
		c.flushes, c.ingestFlushes, c.flushedBytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	var tablets, leaders, quiescent, pending float64
	for _, r := range c.s.replicaList() {
		r.mu.Lock()
		if r.mu.desc != nil && !r.mu.destroyed {
			tablets++
			if r.mu.quiesced {
				quiescent++
			}
			if r.mu.isLeader {
				leaders++
				if membershipChanging(r.mu.desc) {
					pending++
				}
			}
		}
		r.mu.Unlock()
	}
	gauge(c.tablets, tablets)
	gauge(c.leaders, leaders)
	gauge(c.quiescent, quiescent)
	gauge(c.active, tablets-quiescent)
	gauge(c.pendingChanges, pending)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(c.s.opts.Dir, &fs); err == nil {
		gauge(c.diskCapacity, float64(fs.Blocks*uint64(fs.Bsize)))
		gauge(c.diskAvailable, float64(fs.Bavail*uint64(fs.Bsize)))
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(c.diskFull, b2f(c.s.disk.full.Load()))
	gauge(c.storageFailed, b2f(c.s.disk.failed.Load()))
	gauge(c.ballast, float64(c.s.disk.ballastBytes()))
	if c.s.disk.failed.Load() || c.s.enter() != nil {
		return // closed (the engine is gone) or failed (it may hang)
	}
	m := c.s.db.Metrics()
	c.s.exit()
	gauge(c.diskUsed, float64(m.DiskSpaceUsage()))
	gauge(c.l0Files, float64(m.Levels[0].TablesCount))
	gauge(c.l0Sublevels, float64(m.Levels[0].Sublevels))
	gauge(c.debt, float64(m.Compact.EstimatedDebt))
	gauge(c.readAmp, float64(m.ReadAmp()))
	counter(c.cacheHits, float64(m.BlockCache.Hits))
	counter(c.cacheMisses, float64(m.BlockCache.Misses))
	counter(c.flushes, float64(m.Flush.Count))
	counter(c.ingestFlushes, float64(m.Flush.AsIngestCount))
	counter(c.flushedBytes, float64(m.Levels[0].TableBytesFlushed))
	if h := walFsyncHistogram(c.walFsync, m); h != nil {
		ch <- h
	}
}

func membershipChanging(d *metapb.TabletDescriptor) bool {
	for _, r := range d.Replicas {
		if r.Role != metapb.ReplicaRole_VOTER {
			return true
		}
	}
	return false
}

// walFsyncHistogram re-buckets Pebble's WAL fsync histogram (nanoseconds,
// 100 fine buckets) onto metrics.DiskBuckets in seconds. A bucket's count
// is the cumulative count of the largest Pebble bound not above it, so
// counts are never overstated.
func walFsyncHistogram(d *prometheus.Desc, m *pebble.Metrics) prometheus.Metric {
	if m.LogWriter.FsyncLatency == nil {
		return nil
	}
	var pm dto.Metric
	if err := m.LogWriter.FsyncLatency.Write(&pm); err != nil || pm.Histogram == nil {
		return nil
	}
	src := pm.Histogram
	buckets := make(map[float64]uint64, len(metrics.DiskBuckets))
	i := 0
	var cum uint64
	for _, ub := range metrics.DiskBuckets {
		for i < len(src.Bucket) && src.Bucket[i].GetUpperBound()/1e9 <= ub {
			cum = src.Bucket[i].GetCumulativeCount()
			i++
		}
		buckets[ub] = cum
	}
	h, err := prometheus.NewConstHistogram(d, src.GetSampleCount(), src.GetSampleSum()/1e9, buckets)
	if err != nil {
		return nil
	}
	return h
}
