package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/admission"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/hlc"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/raftlog"
	"github.com/shaledb/shale/tabletserver/transport"
)

// ErrClosed is returned by operations on a closed store. It is a gRPC
// Unavailable status: the client should try another replica.
var ErrClosed = status.Error(codes.Unavailable, "store: closed")

// Store hosts the replicas of many tablets on one Pebble instance.
type Store struct {
	opts      Options
	db        *pebble.DB
	fs        vfs.FS
	clock     *hlc.Clock
	transport *transport.Transport
	log       *slog.Logger
	metrics   *storeMetrics
	checks    *checker    // consistency checks (consistency.go)
	suspects  suspects    // checks asked by clients' failed cell checksums (cellsum.go)
	lostWAL   atomic.Bool // a replica found acknowledged entries missing (corruption.go)
	admission *admission.Controller

	// applyMu: see the lock order in doc.go.
	applyMu sync.RWMutex
	// requests is held for reading by every request in flight; Close takes
	// it for writing before closing the engine.
	requests sync.RWMutex

	mu struct {
		sync.RWMutex
		replicas map[uint64]*replica
		schemas  map[uint64]*metapb.TableSchema
	}

	queue struct {
		sync.Mutex
		pending map[uint64]struct{}
		n       uint64 // enqueues so far, for tests (IdleForTest)
	}
	wake chan struct{}

	// awake are the replicas being ticked (not quiesced). Worker-owned.
	awake map[uint64]*replica

	liveness struct {
		sync.Mutex
		lastHeard map[uint64]time.Time
		dead      map[uint64]bool
		// busy: the store's last batch said its raft loop is stuck in a
		// long iteration (raft_busy); see holdsRaftClock.
		busy map[uint64]bool
	}

	snapshots struct {
		sync.Mutex
		outgoing map[uint64]*pebble.Snapshot
	}
	snapshotSem chan struct{}
	// bulkReads holds a token per bulk-read Scan being served (bulkread.go).
	bulkReads chan struct{}
	// ingest is the staging area of uploaded SSTs (ingest.go).
	ingest *ingestState
	// disk tracks free space and the disk-full state (diskspace.go).
	disk *diskState

	nextID atomic.Uint64
	// incarnation is random per Open: entries this run proposed carry it,
	// so their proposal IDs never match another run's or store's waiters.
	incarnation uint64
	flushEpoch  atomic.Uint64 // memtable flushes so far (see onFlush)
	events      eventLog      // recent tablet lifecycle events (events.go)
	clockWarn   atomic.Int64  // unix nanoseconds of the last clock warning (clock.go)
	// stopper runs the store's goroutines (Start, sendSnapshotAsync);
	// its ShouldQuiesce is the store's shutdown signal.
	stopper   *stop.Stopper
	startedAt time.Time // for dropsVote
	stopped   atomic.Bool
	// loop lets tests driving a manual Clock see the Ready loop's
	// progress: ticks counts the ticks it processed, busy is set while it
	// runs an iteration, which holds the mutex (uncontended outside tests,
	// which take it to hand a store several messages at once).
	loop struct {
		sync.Mutex
		ticks atomic.Uint64
		busy  atomic.Bool
		// since is when the running iteration started (Clock, unix
		// nanoseconds), 0 between iterations; see raftBusy.
		since atomic.Int64
	}
}

// Open opens (or creates) the store in opts.Dir and recovers every replica
// found on disk. The transport is created but not listening: register it on
// a gRPC server with Transport().Register, then call Start.
func Open(opts Options) (*Store, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	if err := fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{
		opts:        opts,
		fs:          fs,
		clock:       hlc.New(opts.WallClock, opts.MaxClockOffset),
		log:         opts.Logger.With("store", opts.StoreID),
		wake:        make(chan struct{}, 1),
		awake:       map[uint64]*replica{},
		stopper:     stop.New(),
		startedAt:   opts.Clock.Now(),
		snapshotSem: make(chan struct{}, opts.MaxConcurrentSnapshots),
		bulkReads:   make(chan struct{}, opts.MaxConcurrentBulkReads),
	}
	s.metrics = newMetrics(opts.Registry)
	adm, err := s.newAdmission()
	if err != nil {
		return nil, fmt.Errorf("store: admission settings: %w", err)
	}
	s.admission = adm
	s.checks = newChecker(s)
	// Every file the store and its engine write goes through spaceFS.
	s.openDisk(fs)
	fs = &spaceFS{FS: fs, d: s.disk}
	s.fs = fs
	s.disk.probe()
	s.mu.replicas = map[uint64]*replica{}
	s.mu.schemas = map[uint64]*metapb.TableSchema{}
	s.queue.pending = map[uint64]struct{}{}
	s.liveness.lastHeard = map[uint64]time.Time{}
	s.liveness.dead = map[uint64]bool{}
	s.liveness.busy = map[uint64]bool{}
	s.snapshots.outgoing = map[uint64]*pebble.Snapshot{}
	s.nextID.Store(uint64(opts.Clock.Now().UnixNano()))
	s.incarnation = newIncarnation()

	popts := &pebble.Options{
		FS:                 fs,
		Logger:             pebbleLogger{s.log},
		MemTableSize:       64 << 20,
		CacheSize:          opts.BlockCacheBytes,
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			FlushEnd: func(pebble.FlushInfo) { s.onFlush() },
			// Pebble's default stops the process (Logger.Fatalf).
			DataCorruption: s.onDataCorruption,
		},
	}
	popts.Levels[0].FilterPolicy = filterPolicy // later levels inherit it
	if k := opts.Knobs; k != nil && k.PebbleOptions != nil {
		k.PebbleOptions(popts)
	}
	db, err := pebble.Open(filepath.Join(opts.Dir, "engine"), popts)
	if err != nil {
		return nil, fmt.Errorf("store: open engine: %w", err)
	}
	s.db = db
	if err := s.checkIdent(); err != nil {
		db.Close()
		return nil, err
	}
	// A crash between a snapshot's ingest and the move of its raft state
	// left that state under its snapshot state keys: move it before any
	// replica is loaded.
	if err := s.foldSnapshotState(keys.SnapshotStatePrefix()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: finish an interrupted snapshot install: %w", err)
	}
	if err := fs.RemoveAll(s.snapshotDir()); err != nil && !os.IsNotExist(err) {
		db.Close()
		return nil, err
	}
	if err := fs.MkdirAll(s.snapshotDir(), 0o755); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.openIngest(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadSchemas(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadReplicas(); err != nil {
		db.Close()
		return nil, err
	}
	if s.transport, err = transport.New(transport.Options{
		StoreID:             opts.StoreID,
		Resolver:            opts.Resolver,
		TLS:                 opts.TLS,
		SnapshotBytesPerSec: opts.SnapshotBytesPerSec,
		Pace:                func(ctx context.Context, n int) error { return s.pace(ctx, admission.Snapshot, n) },
		Logger:              opts.Logger,
		RaftBusy:            s.raftBusy,
		Knobs:               opts.Knobs.transport(),
	}, (*transportHandler)(s)); err != nil {
		db.Close()
		return nil, err
	}
	opts.Registry.MustRegister(newCollector(s))
	return s, nil
}

func (k *TestingKnobs) transport() *transport.TestingKnobs {
	if k == nil {
		return nil
	}
	return k.Transport
}

// Transport returns the raft transport, to be registered on a gRPC server.
func (s *Store) Transport() *transport.Transport { return s.transport }

// StoreID returns the store's ID.
func (s *Store) StoreID() uint64 { return s.opts.StoreID }

// DB exposes the engine for tests and diagnostics.
func (s *Store) DB() *pebble.DB { return s.db }

// Start launches the raft worker and the background loops (liveness
// pings, version GC, merge recovery) as tasks of the store's Stopper. A
// store closed before Start starts nothing.
func (s *Store) Start() {
	ctx := context.Background()
	starts := []func(context.Context) error{s.startWorker, s.startLiveness, s.startGC, s.startMergeRecovery, s.startConsistency, s.startDiskMonitor, s.startAdmission}
	for _, start := range starts {
		if err := start(ctx); err != nil {
			s.log.Warn("store not started", "err", err)
			return
		}
	}
	// Recovered replicas may have committed-but-unapplied entries.
	s.mu.RLock()
	for id := range s.mu.replicas {
		s.enqueue(id)
	}
	s.mu.RUnlock()
	if k := s.opts.Knobs; k != nil && k.Started != nil {
		k.Started(s)
	}
}

// Close stops the store. In-flight requests fail; data already
// acknowledged is durable. If the store's goroutines do not end within
// Options.CloseTimeout, Close returns a *stop.StuckError naming them and
// leaves the engine open, as they may still be using it.
func (s *Store) Close() error {
	if !s.stopped.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CloseTimeout)
	defer cancel()
	stopErr := s.stopper.Stop(ctx)
	s.transport.Close()
	s.checks.drain() // tasks queued after the checksum workers stopped
	if stopErr != nil {
		// Waiters return on ShouldQuiesce; the replicas' state stays
		// with the stuck worker.
		s.log.Error("store goroutines did not stop; leaving the engine open", "timeout", s.opts.CloseTimeout, "err", stopErr)
		s.logStacks()
		return fmt.Errorf("store %d: close: %w", s.opts.StoreID, stopErr)
	}
	s.mu.Lock()
	for _, r := range s.mu.replicas {
		r.failAllWaiters(errs.Ambiguous("store %d closed before the write applied", s.opts.StoreID), ErrClosed)
	}
	s.mu.Unlock()
	// Wait for requests still using the engine.
	s.requests.Lock()
	defer s.requests.Unlock()
	s.snapshots.Lock()
	for id, snap := range s.snapshots.outgoing {
		snap.Close()
		delete(s.snapshots.outgoing, id)
	}
	s.snapshots.Unlock()
	err := s.db.Close()
	if err != nil && s.disk.failed.Load() {
		// The engine reports again the failure that stopped the store
		// (diskspace.go); what was acknowledged is durable.
		s.log.Warn("engine closed after a storage failure", "err", err)
		return nil
	}
	return err
}

// maxStackDump bounds the goroutine dump of logStacks.
const maxStackDump = 256 << 10

// logStacks logs the stacks of every goroutine of the process (the first
// maxStackDump bytes), so that a task that outlived CloseTimeout shows
// where it waits: the name in the StuckError alone does not say.
func (s *Store) logStacks() {
	buf := make([]byte, maxStackDump)
	n := runtime.Stack(buf, true)
	s.log.Error("goroutine stacks at the stuck close", "truncated", n == len(buf), "stacks", string(buf[:n]))
}

// enter registers a request; it fails once the store is closing. Every
// entry point that touches the engine calls it and defers exit.
func (s *Store) enter() error {
	s.requests.RLock()
	if s.stopped.Load() {
		s.requests.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) exit() {
	s.requests.RUnlock()
}

func (s *Store) snapshotDir() string { return filepath.Join(s.opts.Dir, "snapshots") }

// checkIdent refuses to open a directory that belongs to another store, or
// whose cells are in a data format this build does not read. A new store
// records its identity and data format in one synced batch.
func (s *Store) checkIdent() error {
	v, closer, err := s.db.Get(keys.StoreIdentKey())
	if errors.Is(err, pebble.ErrNotFound) {
		ident := &metapb.Store{StoreId: s.opts.StoreID}
		b, _ := proto.Marshal(ident)
		wb := s.db.NewBatch()
		defer wb.Close()
		if err := wb.Set(keys.StoreIdentKey(), b, nil); err != nil {
			return err
		}
		if err := wb.Set(keys.StoreDataFormatKey(), binary.BigEndian.AppendUint32(nil, cellvalue.FormatVersion), nil); err != nil {
			return err
		}
		return wb.Commit(pebble.Sync)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	var ident metapb.Store
	if err := proto.Unmarshal(v, &ident); err != nil {
		return fmt.Errorf("store: corrupt store identity: %w", err)
	}
	if ident.StoreId != s.opts.StoreID {
		return fmt.Errorf("store: %s belongs to store %d, not %d", s.opts.Dir, ident.StoreId, s.opts.StoreID)
	}
	return s.checkDataFormat()
}

// DataFormatError is the error opening a store whose cells are in a data
// format this build does not read.
type DataFormatError struct {
	Dir         string
	Found, Want uint32 // Found 0: the store predates recorded formats
}

func (e *DataFormatError) Error() string {
	if e.Found == 0 {
		return fmt.Sprintf("store: %s was created by an older Shale build whose cell values have no envelope (data format %d, docs/decisions.md \"MVCC tombstones\"); this build cannot read it. Back its tables up with the older build (shale backup), remove the store directory, start this build on an empty directory and restore (shale restore)", e.Dir, e.Want)
	}
	return fmt.Sprintf("store: %s holds cells in data format %d; this build reads format %d only. Run a build that reads format %d, or back the tables up with it and restore them into a store created by this build", e.Dir, e.Found, e.Want, e.Found)
}

// checkDataFormat refuses a store without this build's data format.
func (s *Store) checkDataFormat() error {
	v, closer, err := s.db.Get(keys.StoreDataFormatKey())
	if errors.Is(err, pebble.ErrNotFound) {
		return &DataFormatError{Dir: s.opts.Dir, Want: cellvalue.FormatVersion}
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 4 {
		return fmt.Errorf("store: corrupt data format record (%d bytes) in %s", len(v), s.opts.Dir)
	}
	if f := binary.BigEndian.Uint32(v); f != cellvalue.FormatVersion {
		return &DataFormatError{Dir: s.opts.Dir, Found: f, Want: cellvalue.FormatVersion}
	}
	return nil
}

func (s *Store) loadSchemas() error {
	prefix := keys.TableSchemaPrefix()
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		var ts metapb.TableSchema
		if err := proto.Unmarshal(iter.Value(), &ts); err != nil {
			return fmt.Errorf("store: corrupt table schema: %w", err)
		}
		s.mu.schemas[ts.TableId] = &ts
	}
	return iter.Error()
}

// loadReplicas recreates every initialized replica from its descriptor.
func (s *Store) loadReplicas() error {
	lo, hi := []byte{0x02}, []byte{0x03}
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer iter.Close()
	var descs []*metapb.TabletDescriptor
	for iter.First(); iter.Valid(); iter.Next() {
		tabletID, suffix, err := keys.DecodeTabletLocalKey(iter.Key())
		if err != nil {
			return err
		}
		if suffix != 'd' {
			continue
		}
		var d metapb.TabletDescriptor
		if err := proto.Unmarshal(iter.Value(), &d); err != nil {
			return fmt.Errorf("store: corrupt descriptor of tablet %d: %w", tabletID, err)
		}
		descs = append(descs, &d)
	}
	if err := iter.Error(); err != nil {
		return err
	}
	for _, d := range descs {
		rep := replicaOnStore(d, s.opts.StoreID)
		if rep == nil {
			// Removed before its data was destroyed; finish the job.
			if err := s.destroyReplicaData(d.TabletId, d, 0); err != nil {
				return err
			}
			continue
		}
		if _, err := s.newReplica(d.TabletId, rep.ReplicaId, d); err != nil {
			return err
		}
	}
	s.log.Info("store opened", "tablets", len(descs))
	return nil
}

// newReplica builds a replica (initialized when desc != nil) and registers
// it. It fails if the tablet already has one. The caller must not hold s.mu.
func (s *Store) newReplica(tabletID, replicaID uint64, desc *metapb.TabletDescriptor) (*replica, error) {
	r, created, err := s.getOrCreateReplica(tabletID, replicaID, desc)
	if err == nil && !created {
		err = fmt.Errorf("store: tablet %d already has a replica", tabletID)
	}
	return r, err
}

// getOrCreateReplica returns the tablet's replica, creating it (from desc,
// or uninitialized) when there is none; the check and the registration are
// one atomic step, as raft traffic may create the same replica concurrently.
func (s *Store) getOrCreateReplica(tabletID, replicaID uint64, desc *metapb.TabletDescriptor) (*replica, bool, error) {
	return s.getOrCreateReplicaWith(tabletID, replicaID, desc, nil)
}

// getOrCreateReplicaWith is getOrCreateReplica that, when it creates the
// replica, first runs write (if set) under the same lock: a bootstrap's
// initial state reaches the disk only together with its replica, so a
// peer's message can never create an uninitialized replica that loads
// that state without its descriptor (kvnemesis: such a replica applied a
// split with no descriptor and crashed the store).
func (s *Store) getOrCreateReplicaWith(tabletID, replicaID uint64, desc *metapb.TabletDescriptor, write func() error) (*replica, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.mu.replicas[tabletID]; ok {
		return old, false, nil
	}
	if write != nil {
		if err := write(); err != nil {
			return nil, false, err
		}
	}
	r := &replica{
		s:               s,
		tabletID:        tabletID,
		replicaID:       replicaID,
		log:             s.log.With("tablet", tabletID, "replica", replicaID),
		proposals:       map[uint64]*proposal{},
		readBatches:     map[uint64]readBatch{},
		inboundSnapshot: map[uint64]string{},
	}
	r.mu.peers = map[uint64]uint64{}
	if err := r.loadState(desc); err != nil {
		return nil, false, err
	}
	s.mu.replicas[tabletID] = r
	return r, true, nil
}

// loadState opens the raft storage and RawNode from what is on disk.
func (r *replica) loadState(desc *metapb.TabletDescriptor) error {
	var cs = confStateFromDesc(&metapb.TabletDescriptor{})
	if desc != nil {
		cs = confStateFromDesc(desc)
		if err := getProto(r.s.db, keys.AppliedStateKey(r.tabletID), &r.applied); err != nil {
			return err
		}
		r.s.observeTimestamp(r.applied.MaxTimestamp, r.tabletID)
	}
	st, err := raftlog.Open(r.s.db, r.tabletID, cs, r.makeSnapshot)
	if err != nil {
		return err
	}
	r.storage = st
	if err := checkLogIntact(r.tabletID, st); err != nil {
		return err
	}
	r.appliedDesc = desc
	r.s.event(r.tabletID, "replica %d (re)started: applied %d, log truncated at %d, descriptor %v", r.replicaID, r.applied.Index, st.Truncated().Index, desc)
	r.mu.Lock()
	r.mu.desc = desc
	r.mu.applied = r.applied.Index
	r.mu.mergingInto = r.applied.MergingInto
	r.mu.frozenAt = r.s.opts.Clock.Now()
	r.mu.closed, r.mu.floor = r.applied.ClosedTimestamp, r.applied.HistoryFloor
	if desc != nil {
		for _, rep := range desc.Replicas {
			r.mu.peers[rep.ReplicaId] = rep.StoreId
		}
	}
	r.mu.Unlock()
	r.publishHealth()
	return r.newRawNode()
}

// getProto reads a proto record from the engine or a snapshot of it; a
// missing key leaves m empty.
func getProto(db pebble.Reader, key []byte, m proto.Message) error {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	return proto.Unmarshal(v, m)
}

func setProto(b *pebble.Batch, key []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return b.Set(key, v, nil)
}

// replicaList copies the store's replicas, so callers can visit them
// without holding s.mu.
func (s *Store) replicaList() []*replica {
	s.mu.RLock()
	defer s.mu.RUnlock()
	reps := make([]*replica, 0, len(s.mu.replicas))
	for _, r := range s.mu.replicas {
		reps = append(reps, r)
	}
	return reps
}

// getReplica returns the replica of tabletID, or nil.
func (s *Store) getReplica(tabletID uint64) *replica {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.replicas[tabletID]
}

// replicaForRequest finds the initialized replica a request is for.
func (s *Store) replicaForRequest(tabletID uint64) (*replica, error) {
	if s.stopped.Load() {
		return nil, ErrClosed
	}
	r := s.getReplica(tabletID)
	if r == nil || r.descriptor() == nil {
		return nil, errs.TabletNotFound(tabletID, s.opts.StoreID)
	}
	return r, nil
}

// enqueue marks a replica as having work for the worker.
func (s *Store) enqueue(tabletID uint64) {
	s.queue.Lock()
	s.queue.pending[tabletID] = struct{}{}
	s.queue.n++
	s.queue.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// BootstrapTablet creates the first replica state of a tablet on this store.
// Every store listed in desc must be bootstrapped with the same descriptor;
// the resulting group starts at log index 5 / term 5 with the listed voters.
func (s *Store) BootstrapTablet(desc *metapb.TabletDescriptor) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	rep := replicaOnStore(desc, s.opts.StoreID)
	if rep == nil {
		return errs.InvalidArgument("tablet %d has no replica on store %d", desc.TabletId, s.opts.StoreID)
	}
	if desc.Epoch == nil {
		desc.Epoch = &metapb.Epoch{Version: 1, ConfVersion: 1}
	}
	if r := s.getReplica(desc.TabletId); r != nil {
		if d := r.descriptor(); d != nil {
			if proto.Equal(d, desc) {
				return nil // idempotent
			}
			return errs.InvalidArgument("tablet %d already exists on store %d", desc.TabletId, s.opts.StoreID)
		}
		// A peer's message created it before we were told to bootstrap:
		// give it state on the worker, keeping any vote it cast.
		if err := s.checkNoOverlap(desc, 0); err != nil {
			return err
		}
		ctx, cancel := s.requestContext(context.Background())
		defer cancel()
		return r.runOnWorker(ctx, func(r *replica) error {
			if r.mu.desc != nil {
				return nil
			}
			b := s.db.NewBatch()
			defer b.Close()
			if err := writeInitialStateKeepingVote(s.db, b, desc, nil); err != nil {
				return err
			}
			if err := b.Commit(pebble.Sync); err != nil {
				return err
			}
			r.setReplicaID(rep.ReplicaId)
			return r.loadState(desc)
		})
	}
	if err := s.checkNoOverlap(desc, 0); err != nil {
		return err
	}
	r, created, err := s.getOrCreateReplicaWith(desc.TabletId, rep.ReplicaId, desc, func() error {
		b := s.db.NewBatch()
		defer b.Close()
		if err := writeInitialState(b, desc, nil); err != nil {
			return err
		}
		if err := s.guardEngine(func() error { return b.Commit(pebble.Sync) }); err != nil {
			return err
		}
		if k := s.opts.Knobs; k != nil && k.AfterBootstrapWrite != nil {
			k.AfterBootstrapWrite()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !created {
		// A peer's message created it since we looked: start over, as
		// for a replica that was there first.
		return s.BootstrapTablet(desc)
	}
	s.enqueue(r.tabletID)
	return nil
}

// raftInitialIndex/Term: a new group's log starts here, as CockroachDB's
// does, so that an uninitialized replica (index 0) is recognisably behind.
const (
	raftInitialIndex = 5
	raftInitialTerm  = 5
)

// writeInitialState writes the state of a brand-new tablet replica. A
// split's right-hand tablet inherits (from) its parent's timestamps: its
// max timestamp, closed timestamp and history floor hold for its range
// too (docs/decisions.md, "Closed timestamps"); nil for a fresh tablet.
func writeInitialState(b *pebble.Batch, desc *metapb.TabletDescriptor, from *raftcmdpb.AppliedState) error {
	id := desc.TabletId
	if err := setProto(b, keys.DescriptorKey(id), desc); err != nil {
		return err
	}
	if err := setProto(b, keys.AppliedStateKey(id), &raftcmdpb.AppliedState{Index: raftInitialIndex, Term: raftInitialTerm, MaxTimestamp: from.GetMaxTimestamp(),
		ClosedTimestamp: from.GetClosedTimestamp(), HistoryFloor: from.GetHistoryFloor()}); err != nil {
		return err
	}
	if err := setProto(b, keys.RaftTruncatedStateKey(id), &raftcmdpb.TruncatedState{Index: raftInitialIndex, Term: raftInitialTerm}); err != nil {
		return err
	}
	hs := hardState(raftInitialTerm, 0, raftInitialIndex)
	v, err := hs.Marshal()
	if err != nil {
		return err
	}
	return b.Set(keys.RaftHardStateKey(id), v, nil)
}

// checkNoOverlap fails if desc's range overlaps an initialized replica of
// another tablet on this store.
func (s *Store) checkNoOverlap(desc *metapb.TabletDescriptor, except uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id, r := range s.mu.replicas {
		if id == desc.TabletId || id == except {
			continue
		}
		d := r.descriptor()
		if d != nil && rangesOverlap(d.StartKey, d.EndKey, desc.StartKey, desc.EndKey) {
			return errs.InvalidArgument("tablet %d's range overlaps tablet %d on store %d", desc.TabletId, id, s.opts.StoreID)
		}
	}
	return nil
}

// PutTableSchema installs or updates a table schema (newest version wins).
func (s *Store) PutTableSchema(ts *metapb.TableSchema) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if ts.TableId == 0 {
		return errs.InvalidArgument("table id must be non-zero")
	}
	seen := map[string]bool{}
	for _, f := range ts.Families {
		if f.Name == "" {
			return errs.InvalidArgument("table %d: column family name must not be empty", ts.TableId)
		}
		if seen[f.Name] {
			return errs.InvalidArgument("table %d: duplicate column family %q", ts.TableId, f.Name)
		}
		if f.MaxAgeMs < 0 {
			return errs.InvalidArgument("table %d: family %q: max age must not be negative", ts.TableId, f.Name)
		}
		seen[f.Name] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.mu.schemas[ts.TableId]; ok && old.Version > ts.Version {
		return nil
	}
	v, err := proto.Marshal(ts)
	if err != nil {
		return err
	}
	if err := s.guardEngine(func() error { return s.db.Set(keys.TableSchemaKey(ts.TableId), v, pebble.Sync) }); err != nil {
		return err
	}
	s.mu.schemas[ts.TableId] = proto.Clone(ts).(*metapb.TableSchema)
	return nil
}

// schema returns the table's schema or a TableNotFound error.
func (s *Store) schema(tableID uint64) (*metapb.TableSchema, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ts, ok := s.mu.schemas[tableID]
	if !ok {
		return nil, errs.TableNotFound(tableID)
	}
	return ts, nil
}

// requestContext bounds a request by the proposal timeout.
func (s *Store) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.ProposalTimeout)
}
