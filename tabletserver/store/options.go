package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/hlc"
	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/transport"
)

// Options configure a Store. The zero value of every field means "default".
type Options struct {
	// StoreID identifies this store in the cluster. Required, non-zero.
	StoreID uint64
	// Dir holds the Pebble instance and snapshot scratch files. Required.
	Dir string
	// FS is the file system Pebble uses (tests pass an in-memory one).
	// Default: the OS file system.
	FS vfs.FS
	// Resolver maps store IDs to transport addresses. Required.
	Resolver transport.Resolver
	// TLS is the store's identity on the raft transport (see
	// transport.Options.TLS). nil: plaintext (--insecure).
	TLS *security.Reloader

	// TickInterval is one raft tick. Default 100ms.
	TickInterval time.Duration
	// ElectionTicks is the raft election timeout in ticks. Default 10.
	ElectionTicks int
	// DisableLeaseReads makes every read confirm leadership with a raft
	// round (ReadIndex) instead of using the leader lease (lease.go).
	DisableLeaseReads bool
	// HeartbeatTicks is the leader heartbeat interval in ticks. Default 2.
	HeartbeatTicks int
	// QuiesceAfterTicks is how many idle ticks a fully caught-up leader waits
	// before it stops ticking its group. Default ElectionTicks/2. Negative
	// disables quiescence.
	QuiesceAfterTicks int

	// RaftLogTruncateEntries: once the log holds more entries than this it
	// is truncated up to what every follower has. Default 10000.
	RaftLogTruncateEntries uint64
	// RaftLogMaxEntries: beyond this the log is truncated up to the applied
	// index even if a follower lags; that follower then gets a snapshot.
	// Default 4 × RaftLogTruncateEntries.
	RaftLogMaxEntries uint64
	// MaxInflightMsgs limits unacknowledged appends per follower. Default 256.
	MaxInflightMsgs int
	// MaxSizePerMsg limits the bytes of entries in one append. Default 1 MiB.
	MaxSizePerMsg uint64
	// BlockCacheBytes sizes Pebble's block cache (uncompressed blocks,
	// shared by data and raft log reads). Default 256 MiB: Pebble's own
	// default of 8 MiB made nearly every read of a 100 MiB data set miss
	// (docs/performance.md).
	BlockCacheBytes int64

	// Limits enforced on every request before it reaches raft.
	Limits Limits

	// SnapshotBytesPerSec limits outgoing snapshot bandwidth. Default 32 MiB/s.
	SnapshotBytesPerSec int64
	// IngestBytesPerSec limits how fast SSTs uploaded for bulk import are
	// taken in (each store receives its replicas' copies). Default 256
	// MiB/s (TiKV's import upload limit defaults to 512 MiB/s).
	IngestBytesPerSec int64
	// ExportBytesPerSec limits how fast backup exports read cells out of
	// this store, background work next to the foreground (export.go).
	// Default 64 MiB/s; negative: unlimited.
	ExportBytesPerSec int64
	// Admission tunes the store's admission control (internal/admission,
	// docs/qos.md): foreground CPU slots and write tokens, and the
	// adaptive rates of background work. The byte-rate limits above are
	// the background classes' ceilings unless Admission.Classes names
	// them. Admission.Disabled (`--admission=off`) restores fixed rates
	// and unlimited foreground admission.
	Admission admission.Settings
	// StoresInProcess is how many stores this process runs (the
	// playground runs several); their admission controllers share its CPU
	// (admission.Options.SharedBy). 0 or 1: this store alone.
	StoresInProcess int
	// GCSafePoint returns the cluster's GC safe point (gc.go): version GC
	// never removes a version at or above it, and does nothing while it
	// returns 0 (not known yet). nil: no bound (a store without a PD).
	GCSafePoint func() int64
	// MaxConcurrentSnapshots limits snapshots being sent at once. Default 2.
	MaxConcurrentSnapshots int
	// MaxConcurrentBulkReads limits the Scans marked as bulk reads
	// (admission.BulkReadHeader) the store serves at once; more get
	// ServerBusy. Each pins an engine snapshot for as long as it is
	// paced. Default 8.
	MaxConcurrentBulkReads int

	// ProposalTimeout bounds how long a write waits for its entry to apply
	// before it is reported as having an unknown outcome. Default 10s.
	ProposalTimeout time.Duration

	// CloseTimeout bounds how long Close waits for the store's goroutines
	// (the raft worker, the background loops, snapshot senders) to end;
	// past it Close names the ones still running. Default 10s.
	CloseTimeout time.Duration

	// MergeRecoveryAfter is how long a tablet frozen for a merge waits for
	// the merge's proposer before this store, if it leads the tablet,
	// finishes or rolls back the merge itself. Default 2m (the proposer's
	// deadline is 1m); negative disables recovery.
	MergeRecoveryAfter time.Duration

	// GCInterval is how often the leader of each tablet looks for cell
	// versions its families' GC policies make garbage. Default 1m;
	// negative disables background GC (reads still hide garbage).
	GCInterval time.Duration

	// DedupRetention is how long a tablet remembers a request ID's
	// response, measured in the tablet's own HLC time (gc.go). Default
	// DedupRetention (10 minutes).
	DedupRetention time.Duration

	// ClosedTimestampTarget is how far a tablet's closed timestamp trails
	// its leader's clock when writes carry it (docs/decisions.md, "Closed
	// timestamps"): reads at least this stale are served by any replica
	// at once. Default 3s.
	ClosedTimestampTarget time.Duration

	// Clock is the store's source of time: the Ready loop's ticks,
	// proposal expiry, leader leases, store liveness, the background
	// queues (GC, merge recovery, liveness pings) and the staged-SST
	// sweep. Default the real clock; tests pass a manual one
	// (k8s.io/utils/clock/testing.FakeClock) and step it by hand
	// (docs/decisions.md, "Time is injected"). Waits that only poll for
	// a condition and request deadlines stay on real time: they decide
	// nothing.
	Clock clock.WithTicker
	// WallClock is the physical clock behind commit timestamps. Default
	// Clock.Now. Correctness never depends on it.
	WallClock func() time.Time
	// MaxClockOffset bounds how far a timestamp from outside may lie ahead
	// of the leader's clock: a client-chosen cell timestamp or an ingest's
	// max timestamp beyond WallClock + MaxClockOffset is refused
	// (InvalidArgument), and the store's clock never moves further ahead
	// of its wall clock than this (docs/limits.md). Default 500ms, as
	// CockroachDB's maximum clock offset.
	MaxClockOffset time.Duration

	// ConsistencyCheckInterval is how often the leader of each tablet
	// checks that its replicas agree (consistency.go): one store-level
	// queue runs the due checks. Default 24h; negative disables periodic
	// checks (CheckTablet still runs on demand).
	ConsistencyCheckInterval time.Duration
	// ConsistencyCheckBytesPerSec paces the hashing of all checks on this
	// store, as background work. Default 8 MiB/s (CockroachDB's
	// consistency-check rate); negative: unpaced.
	ConsistencyCheckBytesPerSec int64
	// ConsistencyCheckConcurrency is how many replicas this store hashes
	// at once. Default 1.
	ConsistencyCheckConcurrency int
	// ConsistencyCheckTimeout bounds one check, collection of every
	// replica's hash included. Default 10m.
	ConsistencyCheckTimeout time.Duration

	// OnSplit, if set, is called on the leader once a split it proposed
	// applied, with every resulting tablet, the left one first (the node
	// reports them to the placement driver at once). It must not block.
	OnSplit func(tablets []*metapb.TabletDescriptor)

	// Logger gets structured logs. Default slog.Default().
	Logger *slog.Logger
	// Registry gets the store's metrics. Default: a private registry.
	Registry prometheus.Registerer

	// MinFreeBytes: below this much free space on the store's file system
	// the store is disk-full and refuses client writes (diskspace.go).
	// 0: 2% of the disk, between 64 MiB and 2 GiB; negative: no threshold
	// (only ENOSPC makes the store disk-full).
	MinFreeBytes int64
	// BallastBytes is the size of the ballast file reserved in Dir and
	// released when the store becomes disk-full. 0: 1% of the disk, at
	// most 1 GiB; negative: no ballast.
	BallastBytes int64
	// DiskProbeInterval is how often free space is checked (default 1s).
	DiskProbeInterval time.Duration

	// Knobs are test hooks; nil in production.
	Knobs *TestingKnobs
}

// Limits bound request and reply sizes. Zero fields get the defaults of
// internal/limits, documented in docs/limits.md (Bigtable-like); a field
// may be set lower, never higher, so that clients, which know only the
// defaults, can read back whatever a server accepts.
type Limits struct {
	MaxRowKeyBytes    int // default 4 KiB
	MaxQualifierBytes int // default 16 KiB
	MaxValueBytes     int // default 8 MiB
	MaxMutationBytes  int // one row's mutations, default 16 MiB
	MaxBatchBytes     int // one BatchMutate, default 32 MiB
	MaxBatchRows      int // one BatchMutate, default 10000
	MaxReadRowBytes   int // cells one read returns of a row, default 32 MiB
	ScanPageBytes     int // one scan page (at least one row), default 4 MiB
}

// limitField is one Limits field, its default and ceiling.
type limitField struct {
	name string
	v    *int
	max  int
}

func (l *Limits) fields() []limitField {
	return []limitField{
		{"MaxRowKeyBytes", &l.MaxRowKeyBytes, limits.MaxRowKeyBytes},
		{"MaxQualifierBytes", &l.MaxQualifierBytes, limits.MaxQualifierBytes},
		{"MaxValueBytes", &l.MaxValueBytes, limits.MaxValueBytes},
		{"MaxMutationBytes", &l.MaxMutationBytes, limits.MaxMutationBytes},
		{"MaxBatchBytes", &l.MaxBatchBytes, limits.MaxBatchBytes},
		{"MaxBatchRows", &l.MaxBatchRows, limits.MaxBatchRows},
		{"MaxReadRowBytes", &l.MaxReadRowBytes, limits.MaxReadRowBytes},
		{"ScanPageBytes", &l.ScanPageBytes, limits.ScanPageBytes},
	}
}

// TestingKnobs let tests reach inside the store. Nil in production.
type TestingKnobs struct {
	// Transport knobs are passed to the store's transport.
	Transport *transport.TestingKnobs
	// DisableTruncationMinMatch makes the leader ignore followers' progress
	// when truncating, so a lagging follower needs a snapshot sooner.
	DisableTruncationMinMatch bool
	// InReady, if set, runs inside every Ready-loop iteration, which
	// counts as busy while it runs: a test sleeps in it to model a store
	// stuck writing a large entry to a slow disk.
	InReady func()
	// AbandonMergeAfterPrepare makes Merge return right after freezing
	// the right tablet, as if its proposer had died there.
	AbandonMergeAfterPrepare bool
	// AfterBootstrapWrite, if set, runs right after BootstrapTablet wrote
	// a new replica's initial state, before the replica is registered.
	AfterBootstrapWrite func()
	// BeforeDestroyData, if set, runs when a replica has been stopped and
	// its data and tombstone are about to be written.
	BeforeDestroyData func(tabletID uint64)
	// Started, if set, is called with the store once Start has launched
	// it, so an in-process test can inspect a store a node opened.
	Started func(*Store)
	// OnFatal, if set, is told of a fatal storage error instead of the
	// process panicking; the goroutine that hit it (the raft worker, for
	// an apply) then exits, so the store stops applying as a stopped
	// process would, while the test inspects it.
	OnFatal func(what string, err error)
	// PebbleOptions, if set, adjusts the engine's options before Open
	// (tests shrink file sizes so that one tablet's data has SSTs of its
	// own to corrupt).
	PebbleOptions func(*pebble.Options)
	// IngestTruncateBytes, if positive, replaces ingestTruncateBytes (how
	// many bytes of applied ingest entries make a replica truncate its
	// log), so a test reaches the rule with a small SST.
	IngestTruncateBytes uint64
	// BeforeGCPropose, if set, runs when a version-GC pass has chosen
	// garbage from its snapshot and is about to propose deleting it, so
	// a test can write in between.
	BeforeGCPropose func(tabletID uint64)
	// WhileIngesting, if set, runs as a replica applies an ingest, right
	// before the engine ingests the file: on the raft worker for a carried
	// file, on the replica's ingest goroutine for a staged one.
	WhileIngesting func(tabletID uint64)
	// WhileInstallingSnapshot, if set, runs on the raft worker as it
	// installs a snapshot of the tablet, after the engine ingested it and
	// before the replica's raft state moves to its tablet-local keys and
	// is published. An error stops the install there (the store fails,
	// as a crash at that point would).
	WhileInstallingSnapshot func(tabletID uint64) error
}

// EnsureDefaults returns o with every zero field set to its default.
func (o Options) EnsureDefaults() Options {
	if o.TickInterval <= 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.ElectionTicks <= 0 {
		o.ElectionTicks = 10
	}
	if o.HeartbeatTicks <= 0 {
		o.HeartbeatTicks = 2
	}
	if o.QuiesceAfterTicks == 0 {
		o.QuiesceAfterTicks = o.ElectionTicks / 2
	}
	if o.RaftLogTruncateEntries == 0 {
		o.RaftLogTruncateEntries = 10000
	}
	if o.RaftLogMaxEntries == 0 {
		o.RaftLogMaxEntries = 4 * o.RaftLogTruncateEntries
	}
	if o.MaxInflightMsgs <= 0 {
		o.MaxInflightMsgs = 256
	}
	if o.BlockCacheBytes <= 0 {
		o.BlockCacheBytes = 256 << 20
	}
	if o.MaxSizePerMsg == 0 {
		o.MaxSizePerMsg = 1 << 20
	}
	if o.IngestBytesPerSec == 0 {
		o.IngestBytesPerSec = 256 << 20
	}
	if o.SnapshotBytesPerSec == 0 {
		o.SnapshotBytesPerSec = 32 << 20
	}
	if o.MaxConcurrentSnapshots <= 0 {
		o.MaxConcurrentSnapshots = 2
	}
	if o.MaxConcurrentBulkReads <= 0 {
		o.MaxConcurrentBulkReads = 8
	}
	if o.ProposalTimeout <= 0 {
		o.ProposalTimeout = 10 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.MergeRecoveryAfter == 0 {
		o.MergeRecoveryAfter = 2 * time.Minute
	}
	if o.DiskProbeInterval <= 0 {
		o.DiskProbeInterval = time.Second
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Minute
	}
	if o.DedupRetention <= 0 {
		o.DedupRetention = DedupRetention
	}
	if o.ClosedTimestampTarget <= 0 {
		o.ClosedTimestampTarget = 3 * time.Second
	}
	if o.ConsistencyCheckInterval == 0 {
		o.ConsistencyCheckInterval = 24 * time.Hour
	}
	if o.ConsistencyCheckBytesPerSec == 0 {
		o.ConsistencyCheckBytesPerSec = 8 << 20
	}
	if o.ConsistencyCheckConcurrency <= 0 {
		o.ConsistencyCheckConcurrency = 1
	}
	if o.ConsistencyCheckTimeout <= 0 {
		o.ConsistencyCheckTimeout = 10 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.WallClock == nil {
		o.WallClock = o.Clock.Now
	}
	if o.MaxClockOffset <= 0 {
		o.MaxClockOffset = hlc.DefaultMaxOffset
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	for _, f := range o.Limits.fields() {
		if *f.v <= 0 {
			*f.v = f.max
		}
	}
	return o
}

// Validate rejects missing or contradictory options (after EnsureDefaults).
func (o Options) Validate() error {
	for _, f := range o.Limits.fields() {
		if *f.v > f.max {
			return fmt.Errorf("store: Limits.%s is %d; it may be at most %d (clients read with that limit; see docs/limits.md)", f.name, *f.v, f.max)
		}
	}
	switch {
	case o.StoreID == 0:
		return errors.New("store: StoreID must be set")
	case o.Dir == "":
		return errors.New("store: Dir must be set")
	case o.Resolver == nil:
		return errors.New("store: Resolver must be set")
	case o.ElectionTicks <= o.HeartbeatTicks:
		return errors.New("store: ElectionTicks must exceed HeartbeatTicks")
	case o.RaftLogMaxEntries < o.RaftLogTruncateEntries:
		return errors.New("store: RaftLogMaxEntries must be at least RaftLogTruncateEntries")
	}
	return nil
}

// filterPolicy is the engine's SST filter: bloom filters with 10 bits per
// key (about 1% false positives) on every level and in snapshot SSTs. Every
// write looks up its request ID, which is almost always absent, and a point
// Get then skips each SST whose filter says no.
var filterPolicy = bloom.FilterPolicy(10)
