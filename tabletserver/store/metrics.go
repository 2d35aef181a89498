package store

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	readyIterations  prometheus.Counter
	raftSyncs        prometheus.Counter
	entriesAppended  prometheus.Counter
	entriesApplied   prometheus.Counter
	proposals        prometheus.Counter
	reads            prometheus.Counter
	leaseReads       prometheus.Counter
	snapshotsSent    prometheus.Counter
	snapshotsApplied prometheus.Counter
	clockRefused     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		ctr := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shale", Subsystem: "store", Name: name, Help: help})
		reg.MustRegister(ctr)
		return ctr
	}
	return &metrics{
		readyIterations:  c("raft_ready_iterations_total", "Iterations of the raft Ready loop that had work."),
		raftSyncs:        c("raft_log_syncs_total", "Fsyncs of the raft log (one per Ready iteration at most: group commit)."),
		entriesAppended:  c("raft_entries_appended_total", "Raft entries written to the log."),
		entriesApplied:   c("raft_entries_applied_total", "Raft entries applied to the state machine."),
		proposals:        c("proposals_total", "Commands proposed by leaders on this store."),
		reads:            c("reads_total", "Get and Scan requests served."),
		leaseReads:       c("lease_reads_total", "Reads served under the leader lease, without a raft round."),
		snapshotsSent:    c("snapshots_sent_total", "Raft snapshots streamed to other stores."),
		snapshotsApplied: c("snapshots_applied_total", "Raft snapshots ingested."),
		clockRefused:     c("clock_updates_refused_total", "Applied timestamps the store's clock did not take in: more than MaxClockOffset ahead of its wall clock."),
	}
}

// Syncs returns the number of raft log fsyncs so far (for benchmarks).
func (s *Store) Syncs() float64 { return counterValue(s.metrics.raftSyncs) }

// LeaseReads returns the number of reads served under a leader lease.
func (s *Store) LeaseReads() float64 { return counterValue(s.metrics.leaseReads) }

// Proposals returns the number of commands proposed so far.
func (s *Store) Proposals() float64 { return counterValue(s.metrics.proposals) }

// SnapshotsApplied returns the number of raft snapshots ingested so far.
func (s *Store) SnapshotsApplied() float64 { return counterValue(s.metrics.snapshotsApplied) }
