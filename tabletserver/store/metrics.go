package store

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/metrics"
)

type metrics_ struct{}

type storeMetrics struct {
	readyIterations  prometheus.Counter
	raftSyncs        prometheus.Counter
	entriesAppended  prometheus.Counter
	entriesApplied   prometheus.Counter
	proposals        prometheus.Counter
	reads            prometheus.Counter
	leaseReads       prometheus.Counter
	followerReads    prometheus.Counter
	closedWaits      prometheus.Counter
	closeProposals   prometheus.Counter
	snapshotsSent    prometheus.Counter
	leadershipsWon   prometheus.Counter
	snapshotsApplied prometheus.Counter
	clockRefused     prometheus.Counter
	diskFullRefused  prometheus.Counter
	diskFullEvents   prometheus.Counter
	enospc           prometheus.Counter
	stagedMissing    prometheus.Counter
	ingestApply      prometheus.Observer
	snapshotInstall  prometheus.Observer
	stagedFetched    prometheus.Counter

	readyPass       prometheus.Observer
	logSync         prometheus.Observer
	proposalCommit  prometheus.Observer
	proposalApply   prometheus.Observer
	snapSentBytes   prometheus.Counter
	snapRecv        prometheus.Counter
	snapRecvBytes   prometheus.Counter
	gcVersions      prometheus.Counter
	gcDedup         prometheus.Counter
	gcScannedBytes  *prometheus.CounterVec
	gcSkipped       prometheus.Counter
	gcDeferred      prometheus.Counter
	sentMessagesVec *prometheus.CounterVec
	sentBytesVec    *prometheus.CounterVec
	// peers caches the per-destination-store handles. Worker only.
	peers map[uint64]peerCounters
}

type peerCounters struct{ messages, bytes prometheus.Counter }

func newMetrics(reg prometheus.Registerer) *storeMetrics {
	c := func(name, help string) prometheus.Counter {
		ctr := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shale", Subsystem: "store", Name: name, Help: help})
		reg.MustRegister(ctr)
		return ctr
	}
	h := func(name, help string, buckets []float64) prometheus.Observer {
		o := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "shale", Subsystem: "store", Name: name, Help: help, Buckets: buckets})
		reg.MustRegister(o)
		return o
	}
	cvl := func(name, help, label string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shale", Subsystem: "store", Name: name, Help: help}, []string{label})
		reg.MustRegister(v)
		return v
	}
	cv := func(name, help string) *prometheus.CounterVec { return cvl(name, help, "to_store") }
	m := &storeMetrics{
		readyIterations:  c("raft_ready_iterations_total", "Iterations of the raft Ready loop that had work."),
		raftSyncs:        c("raft_log_syncs_total", "Fsyncs of the raft log (one per Ready iteration at most: group commit)."),
		entriesAppended:  c("raft_entries_appended_total", "Raft entries written to the log."),
		entriesApplied:   c("raft_entries_applied_total", "Raft entries applied to the state machine."),
		proposals:        c("proposals_total", "Commands proposed by leaders on this store."),
		reads:            c("reads_total", "Get and Scan requests served."),
		leaseReads:       c("lease_reads_total", "Reads served under the leader lease, without a raft round."),
		followerReads:    c("follower_reads_total", "Reads at a timestamp served by a replica that is not the tablet's leader."),
		closedWaits:      c("closed_timestamp_waits_total", "Reads at a timestamp that waited for the tablet to close it."),
		closeProposals:   c("close_proposals_total", "Raft commands proposed only to advance a tablet's closed timestamp."),
		snapshotsSent:    c("snapshots_sent_total", "Raft snapshots streamed to other stores."),
		leadershipsWon:   c("raft_leaderships_won_total", "Times a replica on this store became its tablet's raft leader (elections and transfers). A steady rate while nothing is moved or fails is leadership churn."),
		snapshotsApplied: c("snapshots_applied_total", "Raft snapshots ingested."),
		clockRefused:     c("clock_updates_refused_total", "Applied timestamps the store's clock did not take in: more than MaxClockOffset ahead of its wall clock."),
		diskFullRefused:  c("disk_full_refused_writes_total", "Client writes, uploads and snapshots refused because the store's disk is full."),
		diskFullEvents:   c("disk_full_events_total", "Times the store became disk-full (free space below its threshold, ENOSPC, or a failed engine)."),
		stagedMissing:    c("ingest_staged_missing_total", "By-reference ingest entries a replica could not apply at once because its staged file was missing (it fetches the file from a peer)."),
		stagedFetched:    c("ingest_staged_fetched_total", "Staged SSTs fetched from a peer store by a replica that lacked them."),
		enospc:           c("enospc_errors_total", "File writes of the store or its engine that failed with ENOSPC (each is retried once after the ballast is released)."),

		ingestApply:     h("ingest_apply_seconds", "Time a replica took to ingest a staged SST off the raft worker (checksum, engine ingest, marker); the tablet's later entries wait meanwhile, other tablets do not.", metrics.DiskBuckets),
		snapshotInstall: h("snapshot_install_seconds", "Time the raft worker spent installing one received snapshot (writing its raft state, the engine's ingest); every tablet of the store waits meanwhile.", metrics.DiskBuckets),
		readyPass:       h("raft_ready_pass_seconds", "Time of one Ready-loop pass that had work: append, fsync, send, apply.", metrics.DiskBuckets),
		logSync:         h("raft_log_sync_seconds", "Time to commit one raft log batch with fsync.", metrics.DiskBuckets),
		proposalCommit:  h("raft_proposal_commit_seconds", "Time from handing a command to raft on the leader to seeing it committed.", metrics.RPCBuckets),
		proposalApply:   h("raft_proposal_apply_seconds", "Time from handing a command to raft on the leader to its apply batch being written.", metrics.RPCBuckets),
		snapSentBytes:   c("snapshots_sent_bytes_total", "Key and value bytes of raft snapshots streamed to other stores."),
		snapRecv:        c("snapshots_received_total", "Raft snapshots received from other stores (accepted or not)."),
		snapRecvBytes:   c("snapshots_received_bytes_total", "Key and value bytes of raft snapshots received from other stores."),
		gcVersions:      c("gc_deleted_versions_total", "Cell versions deleted by MVCC garbage collection (max versions, max age)."),
		gcDedup:         c("gc_deleted_dedup_records_total", "Expired request-ID (exactly-once) records deleted by garbage collection."),
		gcScannedBytes:  cvl("gc_scanned_bytes_total", "Bytes of keys and values garbage collection passes read (paced in the gc admission class), by why the tablet was read: unmarked (no earlier pass on this replica, and 64 KiB written since it started), written, overdue, policy (schema or max age), manual.", "reason"),
		gcSkipped:       c("gc_skipped_tablets_total", "Garbage collection passes skipped because nothing could have made garbage in the tablet since its last clean pass."),
		gcDeferred:      c("gc_deferred_tablets_total", "Tablets the GC queue left for a later round: too little written since their last pass to be worth reading them whole."),
		sentMessagesVec: cv("raft_sent_messages_total", "Raft messages sent, by destination store (snapshots not included)."),
		sentBytesVec:    cv("raft_sent_bytes_total", "Bytes of raft messages sent, by destination store (snapshots not included)."),
		peers:           map[uint64]peerCounters{},
	}
	for _, why := range gcWhys {
		m.gcScannedBytes.WithLabelValues(why) // exported from the start
	}
	return m
}

// peer returns the counters of one destination store, creating them on
// first use. Worker only.
func (m *storeMetrics) peer(store uint64) peerCounters {
	p, ok := m.peers[store]
	if !ok {
		l := strconv.FormatUint(store, 10)
		p = peerCounters{messages: m.sentMessagesVec.WithLabelValues(l), bytes: m.sentBytesVec.WithLabelValues(l)}
		m.peers[store] = p
	}
	return p
}

// Syncs returns the number of raft log fsyncs so far (for benchmarks).
func (s *Store) Syncs() float64 { return counterValue(s.metrics.raftSyncs) }

// LeaseReads returns the number of reads served under a leader lease.
func (s *Store) LeaseReads() float64 { return counterValue(s.metrics.leaseReads) }

// FollowerReads returns the number of reads at a timestamp served by a
// replica that was not its tablet's leader.
func (s *Store) FollowerReads() float64 { return counterValue(s.metrics.followerReads) }

// Proposals returns the number of commands proposed so far.
func (s *Store) Proposals() float64 { return counterValue(s.metrics.proposals) }

// SnapshotsApplied returns the number of raft snapshots ingested so far.
func (s *Store) SnapshotsApplied() float64 { return counterValue(s.metrics.snapshotsApplied) }

// GCDeleted returns how many cell versions and request-ID records garbage
// collection has deleted so far.
func (s *Store) GCDeleted() (versions, dedupRecords float64) {
	return counterValue(s.metrics.gcVersions), counterValue(s.metrics.gcDedup)
}

// GCPasses returns the bytes garbage collection passes have read so far
// and how many passes skipped a clean tablet.
func (s *Store) GCPasses() (scannedBytes, skipped float64) {
	for _, why := range gcWhys {
		scannedBytes += counterValue(s.metrics.gcScannedBytes.WithLabelValues(why))
	}
	return scannedBytes, counterValue(s.metrics.gcSkipped)
}
