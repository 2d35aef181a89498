package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Options configure one backup.
type Options struct {
	PD  []string
	TLS *security.Reloader
	// To is the destination URL (file:///dir or s3://bucket/prefix?...).
	// Running a backup again with the same To resumes it.
	To string
	// Tables to back up (names); empty: every table.
	Tables []string
	// At is the timestamp; 0: the placement driver's now.
	At int64
	// Since is the URL of an earlier backup of this cluster: this one is
	// then incremental on top of it.
	Since string
	// Parallel is how many pieces are exported at once (default 4), at
	// most PerStore (default 2) from one store.
	Parallel, PerStore int
	// FileBytes is the target size of one file (default 8 MiB).
	FileBytes int
	// SafePointTTL is the TTL of the service safe point (renewed every
	// third of it). Default 5 minutes.
	SafePointTTL time.Duration
	// ShaleVersion is recorded in the manifest.
	ShaleVersion string
	// Progress, if set, is called every ProgressInterval (default 500ms)
	// and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	Logger           *slog.Logger
	// Hook, if set, is called at points of the run (tests kill it there):
	// "file" after a file is written, "piece" after a piece's record.
	// It is called from the run's workers, concurrently when Parallel > 1.
	Hook func(event string)
}

func (o Options) withDefaults() Options {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.PerStore <= 0 {
		o.PerStore = 2
	}
	if o.FileBytes <= 0 {
		o.FileBytes = 8 << 20
	}
	if o.SafePointTTL <= 0 {
		o.SafePointTTL = 5 * time.Minute
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ShaleVersion == "" {
		o.ShaleVersion = "dev"
	}
	return o
}

// Progress is a snapshot of a running backup or restore.
type Progress struct {
	Phase   string        `json:"phase"` // backup | restore | verify | done
	Pieces  int64         `json:"pieces"`
	Pending int64         `json:"pending"` // pieces known still to do
	Files   int64         `json:"files"`
	Bytes   int64         `json:"bytes"` // file bytes written or read
	Cells   int64         `json:"cells"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Fraction is how far the run is, from 0 to 1 (pieces done of those known).
func (p Progress) Fraction() float64 {
	if p.Phase == "done" {
		return 1
	}
	if p.Pieces+p.Pending == 0 {
		return 0
	}
	return float64(p.Pieces) / float64(p.Pieces+p.Pending)
}

// jobRecord is the backup's fixed parameters, written before any data.
type jobRecord struct {
	ID        string    `json:"id"`
	Timestamp int64     `json:"timestamp"`
	Since     int64     `json:"since_timestamp,omitempty"`
	Parent    string    `json:"parent,omitempty"`
	ParentID  string    `json:"parent_id,omitempty"`
	Started   time.Time `json:"started"`
	Tables    []*Table  `json:"tables"` // without pieces
	// TableSince: per table ID, the since timestamp its export uses (0:
	// a table the parent does not hold is backed up in full).
	TableSince map[uint64]int64 `json:"table_since,omitempty"`
}

// pieceRecord is a finished piece, written once its files are.
type pieceRecord struct {
	TableID uint64 `json:"table_id"`
	Piece   *Piece `json:"piece"`
}

type backupJob struct {
	o       Options
	st      *storage
	pd      *pdclient.Client
	kv      *kvclient.Client
	rec     *jobRecord
	started time.Time

	mu     sync.Mutex
	pieces map[uint64][]*Piece // by table ID
	slots  map[uint64]chan struct{}

	nPieces, pending, files, bytes, cells atomic.Int64
}

// Summary is a finished backup's account.
type Summary struct {
	URL       string
	ID        string
	Timestamp int64
	Since     int64
	Tables    int
	Pieces    int
	Files     int
	Bytes     int64
	Cells     uint64
	Resumed   bool
	Duration  time.Duration
}

// Run takes (or resumes) the backup Options describe.
func Run(ctx context.Context, o Options) (*Summary, error) {
	o = o.withDefaults()
	st, err := openStorage(ctx, o.To, true)
	if err != nil {
		return nil, err
	}
	defer st.close()
	if ok, err := st.exists(ctx, manifestName); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	} else if ok {
		return nil, fmt.Errorf("backup: %s already holds a finished backup; choose another destination", o.To)
	}
	pd, err := pdclient.New(o.PD, 0, pdclient.WithTLS(o.TLS))
	if err != nil {
		return nil, err
	}
	defer pd.Close()
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: o.PD, TLS: o.TLS, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	defer kv.Close()
	j := &backupJob{o: o, st: st, pd: pd, kv: kv, started: time.Now(), pieces: map[uint64][]*Piece{}, slots: map[uint64]chan struct{}{}}
	resumed, err := j.loadOrStart(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopRenew, err := j.holdSafePoint(ctx, cancel)
	if err != nil {
		return nil, err
	}
	defer stopRenew()
	stopProgress := j.reportProgress(ctx)
	if err := j.exportAll(ctx); err != nil {
		stopProgress()
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return nil, cause
		}
		return nil, err
	}
	m, err := j.finish(ctx)
	stopProgress()
	if err != nil {
		return nil, err
	}
	j.releaseSafePoint()
	sum := &Summary{URL: o.To, ID: m.ID, Timestamp: m.Timestamp, Since: m.Since, Tables: len(m.Tables), Resumed: resumed, Duration: time.Since(j.started)}
	for _, t := range m.Tables {
		sum.Pieces += len(t.Pieces)
		sum.Cells += t.Cells
		for _, p := range t.Pieces {
			sum.Files += len(p.Files)
			for _, f := range p.Files {
				sum.Bytes += f.Size
			}
		}
	}
	return sum, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// loadOrStart reads the job record of an interrupted backup, or fixes the
// timestamp, the tables and the parent and writes one.
func (j *backupJob) loadOrStart(ctx context.Context) (bool, error) {
	data, err := j.st.read(ctx, jobName)
	if err == nil {
		rec := &jobRecord{}
		if err := json.Unmarshal(data, rec); err != nil {
			return false, &CorruptFileError{URL: j.st.url, File: jobName, Reason: err.Error()}
		}
		if j.o.At != 0 && j.o.At != rec.Timestamp {
			return false, fmt.Errorf("backup: %s holds an unfinished backup at timestamp %d, not %d; resume it without --at or choose another destination", j.o.To, rec.Timestamp, j.o.At)
		}
		if j.o.Since != rec.Parent {
			return false, fmt.Errorf("backup: %s holds an unfinished backup with --since %q; resume it with the same --since", j.o.To, rec.Parent)
		}
		if len(j.o.Tables) > 0 {
			var names []string
			for _, t := range rec.Tables {
				names = append(names, t.Name)
			}
			want := slices.Clone(j.o.Tables)
			slices.Sort(want)
			slices.Sort(names)
			if !slices.Equal(want, names) {
				return false, fmt.Errorf("backup: %s holds an unfinished backup of tables %v; resume it with the same tables", j.o.To, names)
			}
		}
		j.rec = rec
		return true, j.loadPieces(ctx)
	}
	if !isNotFound(err) {
		return false, fmt.Errorf("backup: reading %s: %w", jobName, err)
	}
	rec := &jobRecord{ID: newID(), Started: time.Now().UTC(), TableSince: map[uint64]int64{}}
	var parent *Manifest
	if j.o.Since != "" {
		pst, err := openStorage(ctx, j.o.Since, false)
		if err != nil {
			return false, err
		}
		parent, err = readManifest(ctx, pst)
		pst.close()
		if err != nil {
			return false, err
		}
		rec.Since, rec.Parent, rec.ParentID = parent.Timestamp, j.o.Since, parent.ID
	}
	if rec.Tables, err = j.tables(ctx); err != nil {
		return false, err
	}
	for _, t := range rec.Tables {
		if parent != nil && parentHolds(parent, t.ID) {
			rec.TableSince[t.ID] = parent.Timestamp
		}
	}
	j.rec = rec
	if rec.Timestamp = j.o.At; rec.Timestamp == 0 {
		// Hold the cluster's GC safe point where it is before taking
		// "now": the safe point trails the clock closely (GCLifeTime),
		// and could pass a fresh timestamp before it is registered.
		if err := j.pinCurrentSafePoint(ctx); err != nil {
			return false, err
		}
		resp, err := j.pd.GetTimestamp(ctx, &pdpb.GetTimestampRequest{Count: 1})
		if err != nil {
			return false, fmt.Errorf("backup: a timestamp from the placement driver: %w", err)
		}
		rec.Timestamp = resp.First
	}
	if rec.Timestamp <= rec.Since {
		return false, fmt.Errorf("backup: timestamp %d is not after the previous backup's %d", rec.Timestamp, rec.Since)
	}
	// The safe point first: the job record promises a backup at ts.
	if err := j.renewSafePoint(ctx); err != nil {
		return false, err
	}
	data, err = json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return false, err
	}
	return false, j.st.write(ctx, jobName, data)
}

func parentHolds(m *Manifest, tableID uint64) bool {
	for _, t := range m.Tables {
		if t.ID == tableID {
			return true
		}
	}
	return false
}

// tables resolves Options.Tables (all tables when empty).
func (j *backupJob) tables(ctx context.Context) ([]*Table, error) {
	var schemas []*metapb.TableSchema
	if len(j.o.Tables) == 0 {
		resp, err := j.pd.ListTables(ctx, &pdpb.ListTablesRequest{})
		if err != nil {
			return nil, fmt.Errorf("backup: listing tables: %w", err)
		}
		schemas = resp.Tables
	} else {
		for _, name := range j.o.Tables {
			resp, err := j.pd.GetTable(ctx, &pdpb.GetTableRequest{Name: name})
			if status.Code(err) == codes.NotFound || (err == nil && resp.Table == nil) {
				return nil, fmt.Errorf("backup: table %q does not exist", name)
			}
			if err != nil {
				return nil, fmt.Errorf("backup: looking up table %q: %w", name, err)
			}
			schemas = append(schemas, resp.Table)
		}
	}
	var out []*Table
	for _, s := range schemas {
		js, err := protojson.Marshal(s)
		if err != nil {
			return nil, err
		}
		out = append(out, &Table{Name: s.Name, ID: s.TableId, Schema: js})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	if len(out) == 0 {
		return nil, errors.New("backup: no tables to back up")
	}
	return out, nil
}

// SafePointError: the placement driver refused the backup's GC safe point
// (the cluster's GC safe point passed the backup's timestamp, e.g. a
// killed backup resumed after its TTL): versions it needs may be gone.
type SafePointError struct {
	Timestamp int64
	Reason    string
}

func (e *SafePointError) Error() string {
	return fmt.Sprintf("backup: the cluster may have collected versions the backup at timestamp %d needs (%s); start a new backup in another destination", e.Timestamp, e.Reason)
}

func (j *backupJob) serviceID() string { return "backup-" + j.rec.ID }

// pinCurrentSafePoint registers the backup's service safe point at the
// cluster's current GC safe point (retrying while it moves), so the GC
// safe point stays put until the backup moves its own up to its timestamp.
func (j *backupJob) pinCurrentSafePoint(ctx context.Context) error {
	ttl := int64(max(j.o.SafePointTTL/time.Second, 1))
	for attempt := 0; ; attempt++ {
		cur, err := j.pd.GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		if err != nil {
			return fmt.Errorf("backup: reading the cluster's GC safe point: %w", err)
		}
		_, err = j.pd.UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: j.serviceID(), SafePoint: cur.GcSafePoint, TtlSeconds: ttl})
		if err == nil {
			return nil
		}
		if status.Code(err) != codes.FailedPrecondition || attempt >= 20 {
			return fmt.Errorf("backup: registering the backup's GC safe point: %w", err)
		}
	}
}

// renewSafePoint registers (or renews) the backup's service safe point.
func (j *backupJob) renewSafePoint(ctx context.Context) error {
	ttl := int64(max(j.o.SafePointTTL/time.Second, 1))
	_, err := j.pd.UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: j.serviceID(), SafePoint: j.rec.Timestamp, TtlSeconds: ttl})
	if status.Code(err) == codes.FailedPrecondition {
		return &SafePointError{Timestamp: j.rec.Timestamp, Reason: status.Convert(err).Message()}
	}
	if err != nil {
		return fmt.Errorf("backup: registering the backup's GC safe point: %w", err)
	}
	return nil
}

// holdSafePoint registers the safe point and renews it every third of
// its TTL until the returned stop; a refused renewal cancels the backup.
func (j *backupJob) holdSafePoint(ctx context.Context, cancel context.CancelCauseFunc) (func(), error) {
	if err := j.renewSafePoint(ctx); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { //stop:joined by the returned func
		defer wg.Done()
		t := time.NewTicker(j.o.SafePointTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := j.renewSafePoint(ctx); err != nil {
					var lost *SafePointError
					if errors.As(err, &lost) {
						cancel(err)
						return
					}
					j.o.Logger.Warn("renewing the backup's GC safe point failed; retrying", "err", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }, nil
}

func (j *backupJob) releaseSafePoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = j.pd.UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: j.serviceID()})
}

// loadPieces reads the records of the pieces a killed run finished.
func (j *backupJob) loadPieces(ctx context.Context) error {
	names, err := j.st.list(ctx, piecesPrefix)
	if err != nil {
		return fmt.Errorf("backup: listing finished pieces: %w", err)
	}
	for _, n := range names {
		data, err := j.st.read(ctx, n)
		if err != nil {
			return fmt.Errorf("backup: reading %s: %w", n, err)
		}
		pr := &pieceRecord{}
		if err := json.Unmarshal(data, pr); err != nil || pr.Piece == nil {
			// A record is written whole or not at all by the blob
			// store; an unreadable one is re-exported.
			j.o.Logger.Warn("unreadable piece record; its range is exported again", "name", n)
			continue
		}
		j.pieces[pr.TableID] = append(j.pieces[pr.TableID], pr.Piece)
		j.nPieces.Add(1)
	}
	return nil
}

// span is a key range still to export.
type span struct {
	table      *Table
	start, end []byte
}

// gaps returns the parts of each table's key range no piece covers.
func (j *backupJob) gaps() []span {
	var out []span
	for _, t := range j.rec.Tables {
		lo := keys.TablePrefix(t.ID)
		hi := keys.PrefixEnd(lo)
		ps := slices.Clone(j.pieces[t.ID])
		sort.Slice(ps, func(a, b int) bool { return bytes.Compare(ps[a].Start, ps[b].Start) < 0 })
		at := lo
		for _, p := range ps {
			if bytes.Compare(p.Start, at) > 0 {
				out = append(out, span{t, at, p.Start})
			}
			if bytes.Compare(p.End, at) > 0 {
				at = p.End
			}
		}
		if bytes.Compare(at, hi) < 0 {
			out = append(out, span{t, at, hi})
		}
	}
	return out
}

// exportAll exports every gap, Parallel at once; a piece that ends before
// its gap (a tablet boundary) queues the rest.
func (j *backupJob) exportAll(ctx context.Context) error {
	queue := j.gaps()
	j.pending.Store(int64(len(queue)))
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		inFlight int
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWake := context.AfterFunc(ctx, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
	defer stopWake()
	var wg sync.WaitGroup
	for w := 0; w < j.o.Parallel; w++ {
		wg.Add(1)
		go func() { //stop:joined below
			defer wg.Done()
			for {
				mu.Lock()
				for len(queue) == 0 && inFlight > 0 && firstErr == nil && ctx.Err() == nil {
					cond.Wait()
				}
				if len(queue) == 0 || firstErr != nil || ctx.Err() != nil {
					mu.Unlock()
					cond.Broadcast()
					return
				}
				sp := queue[0]
				queue = queue[1:]
				inFlight++
				mu.Unlock()
				rest, err := j.exportSpan(ctx, sp)
				mu.Lock()
				inFlight--
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if rest != nil {
					queue = append(queue, *rest)
				} else {
					j.pending.Add(-1)
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// slot limits the exports running against one store.
func (j *backupJob) slot(store uint64) chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.slots[store]
	if !ok {
		s = make(chan struct{}, j.o.PerStore)
		j.slots[store] = s
	}
	return s
}

// exportSpan exports the first tablet's worth of sp and returns the rest
// of sp, if any.
func (j *backupJob) exportSpan(ctx context.Context, sp span) (*span, error) {
	bo := retry.NewExponential(50*time.Millisecond, 2*time.Second)
	var lastErr error
	for attempt := 0; attempt < 60; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		route, err := j.kv.RouteKey(ctx, sp.start, attempt > 0)
		if err != nil {
			lastErr = err
			if err := bo.Wait(ctx, 0); err != nil {
				return nil, err
			}
			continue
		}
		for _, store := range candidates(route, attempt) {
			p, err := j.exportFrom(ctx, sp, route, store)
			if err == nil {
				if bytes.Compare(p.End, sp.end) < 0 {
					return &span{sp.table, p.End, sp.end}, nil
				}
				return nil, nil
			}
			lastErr = err
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			j.o.Logger.Debug("export failed", "tablet", route.Desc.TabletId, "store", store, "err", err)
			if act := retry.Classify(err); act == retry.RefreshRoute || act == retry.Fail {
				if act == retry.Fail && !isRetryable(err) {
					return nil, fmt.Errorf("backup: exporting tablet %d from store %d: %w", route.Desc.TabletId, store, err)
				}
				break
			}
		}
		if err := bo.Wait(ctx, 0); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("backup: giving up on the range at %x after many attempts: %w", sp.start, lastErr)
}

// isRetryable: errors worth another replica or route even though the
// shared policy calls them final (a checksum mismatch in transfer).
func isRetryable(err error) bool {
	var ce *transferError
	return errors.As(err, &ce)
}

type transferError struct{ msg string }

func (e *transferError) Error() string { return e.msg }

// candidates orders a tablet's replicas: followers first (shuffled), then
// the leader; every other attempt tries the leader only.
func candidates(r kvclient.Route, attempt int) []uint64 {
	var fol []uint64
	for _, rep := range r.Desc.GetReplicas() {
		if rep.StoreId != r.Leader {
			fol = append(fol, rep.StoreId)
		}
	}
	mathrand.Shuffle(len(fol), func(a, b int) { fol[a], fol[b] = fol[b], fol[a] })
	if r.Leader == 0 {
		return fol
	}
	if attempt%2 == 1 {
		return []uint64{r.Leader}
	}
	return append(fol, r.Leader)
}

// exportFrom runs one Export on one store and writes its files and the
// piece's record.
func (j *backupJob) exportFrom(ctx context.Context, sp span, route kvclient.Route, store uint64) (*Piece, error) {
	slot := j.slot(store)
	select {
	case slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-slot }()
	cl, err := j.kv.TabletConn(ctx, store)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := cl.Export(sctx, &kvpb.ExportRequest{
		Header:  &kvpb.RequestHeader{TabletId: route.Desc.TabletId, Epoch: route.Desc.Epoch},
		TableId: sp.table.ID, StartKey: sp.start, EndKey: sp.end,
		Ts: j.rec.Timestamp, SinceTs: j.rec.TableSince[sp.table.ID],
		MaxFileBytes: uint64(j.o.FileBytes), AllowFollower: true,
	})
	if err != nil {
		return nil, err
	}
	pieceID := newID()
	p := &Piece{Start: sp.start, Tablet: route.Desc.TabletId, Store: store}
	var buf bytes.Buffer
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return nil, &transferError{"backup: the export stream ended without its last message"}
		}
		if err != nil {
			return nil, err
		}
		buf.Write(msg.Chunk)
		if buf.Len() > maxObjectBytes {
			return nil, &transferError{fmt.Sprintf("backup: store %d sent a file of more than %d bytes", store, maxObjectBytes)}
		}
		if msg.FileDone {
			f, err := j.writeFile(ctx, sp.table.ID, pieceID, len(p.Files), msg, buf.Bytes())
			if err != nil {
				return nil, err
			}
			p.Files = append(p.Files, f)
			buf.Reset()
		}
		if msg.Done {
			if bytes.Compare(msg.CoveredEnd, sp.start) <= 0 {
				return nil, &transferError{fmt.Sprintf("backup: store %d exported nothing of the range at %x", store, sp.start)}
			}
			p.End = minEnd(msg.CoveredEnd, sp.end)
			p.Cells, p.Digest = msg.StateCells, msg.StateDigest
			return p, j.recordPiece(ctx, sp.table.ID, pieceID, p)
		}
	}
}

func minEnd(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// writeFile checks a received file and writes it to the backup.
func (j *backupJob) writeFile(ctx context.Context, tableID uint64, pieceID string, n int, msg *kvpb.ExportResponse, data []byte) (*File, error) {
	sum := sha256.Sum256(data)
	if !bytes.Equal(sum[:], msg.Sha256) || uint64(len(data)) != msg.Size {
		return nil, &transferError{fmt.Sprintf("backup: a file arrived damaged (%d bytes, sha256 %x; the store sent %d bytes, sha256 %x)", len(data), sum, msg.Size, msg.Sha256)}
	}
	f := &File{
		Name: fmt.Sprintf("%s%d/%s-%03d.sst", dataPrefix, tableID, pieceID, n), Kind: msg.Kind,
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Cells: msg.KeyCount,
		Smallest: msg.Smallest, Largest: msg.Largest, MaxTimestamp: msg.MaxTimestamp,
	}
	if err := j.st.write(ctx, f.Name, data); err != nil {
		return nil, fmt.Errorf("backup: writing %s: %w", f.Name, err)
	}
	j.files.Add(1)
	j.bytes.Add(f.Size)
	if f.Kind == "data" {
		j.cells.Add(int64(f.Cells))
	}
	j.hook("file")
	return f, nil
}

func (j *backupJob) hook(ev string) {
	if j.o.Hook != nil {
		j.o.Hook(ev)
	}
}

func (j *backupJob) recordPiece(ctx context.Context, tableID uint64, pieceID string, p *Piece) error {
	data, err := json.Marshal(&pieceRecord{TableID: tableID, Piece: p})
	if err != nil {
		return err
	}
	if err := j.st.write(ctx, fmt.Sprintf("%s%d-%s.json", piecesPrefix, tableID, pieceID), data); err != nil {
		return fmt.Errorf("backup: recording a finished piece: %w", err)
	}
	j.mu.Lock()
	j.pieces[tableID] = append(j.pieces[tableID], p)
	j.mu.Unlock()
	j.nPieces.Add(1)
	j.hook("piece")
	return nil
}

// finish writes the manifest, then removes the checkpoint and any file a
// killed run left that no piece lists.
func (j *backupJob) finish(ctx context.Context) (*Manifest, error) {
	m := &Manifest{Format: formatVersion, ID: j.rec.ID, ShaleVersion: j.o.ShaleVersion, Timestamp: j.rec.Timestamp,
		Since: j.rec.Since, Parent: j.rec.Parent, ParentID: j.rec.ParentID, Started: j.rec.Started, Finished: time.Now().UTC()}
	listed := map[string]bool{}
	for _, t := range j.rec.Tables {
		t := *t
		t.Since = j.rec.TableSince[t.ID]
		t.Pieces = slices.Clone(j.pieces[t.ID])
		sort.Slice(t.Pieces, func(a, b int) bool { return bytes.Compare(t.Pieces[a].Start, t.Pieces[b].Start) < 0 })
		var digest uint64
		for _, p := range t.Pieces {
			t.Cells += p.Cells
			digest += p.Digest
			for _, f := range p.Files {
				listed[f.Name] = true
			}
		}
		t.Digest = fmt.Sprintf("%016x", digest)
		m.Tables = append(m.Tables, &t)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := j.st.write(ctx, manifestName, data); err != nil {
		return nil, fmt.Errorf("backup: writing the manifest: %w", err)
	}
	// The manifest is the backup; what follows is tidying.
	if names, err := j.st.list(ctx, dataPrefix); err == nil {
		for _, n := range names {
			if !listed[n] {
				_ = j.st.delete(ctx, n)
			}
		}
	}
	if names, err := j.st.list(ctx, "checkpoint/"); err == nil {
		for _, n := range names {
			_ = j.st.delete(ctx, n)
		}
	}
	return m, nil
}

func (j *backupJob) progress(phase string) Progress {
	return Progress{Phase: phase, Pieces: j.nPieces.Load(), Pending: j.pending.Load(), Files: j.files.Load(), Bytes: j.bytes.Load(), Cells: j.cells.Load(), Elapsed: time.Since(j.started)}
}

// reportProgress calls Options.Progress until the returned stop, which
// reports once more.
func (j *backupJob) reportProgress(ctx context.Context) func() {
	return runReporter(ctx, j.o.Progress, j.o.ProgressInterval, func(final bool) Progress {
		if final {
			return j.progress("done")
		}
		return j.progress("backup")
	})
}

// runReporter calls report every interval until the returned stop.
func runReporter(ctx context.Context, report func(Progress), every time.Duration, snap func(final bool) Progress) func() {
	if report == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { //stop:joined by the returned func
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				report(snap(false))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			report(snap(true))
		})
	}
}
