package importer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/metapb"
)

// maxSSTBytes mirrors tabletserver/store.MaxIngestBytes (one SST rides in
// one raft entry); SSTs are cut below it.
const maxSSTBytes = 16 << 20

// Options configure one import job.
type Options struct {
	// PD lists placement-driver endpoints.
	PD []string
	// TLS is the client certificate to connect with (nil: plaintext).
	TLS *security.Reloader
	// Table is the target table; it must exist.
	Table string
	// Inputs are files, directories (their regular, non-hidden files) or
	// "-" for Stdin.
	Inputs []string
	Stdin  io.Reader
	Source SourceOptions

	// Raw-table mapping: the row-key column and column=family:qualifier.
	RowKey   string
	Mappings []Mapping
	// NewEncoder, if set, replaces the raw encoder (SQL tables). EncoderID
	// names it in the job's fingerprint.
	NewEncoder func(schema *metapb.TableSchema, ts int64) (Encoder, error)
	EncoderID  string

	// WorkDir holds sorted runs, the checkpoint and the reject file.
	// Re-running the same job with the same WorkDir resumes it. Required.
	WorkDir string
	// MemoryBytes bounds the sort buffers (all readers together). Default
	// 256 MiB.
	MemoryBytes int
	// Parallel is how many input files are read at once (each is parsed
	// by GOMAXPROCS workers). Default 2.
	Parallel int
	// SSTBytes is the target size of one SST. Default 8 MiB, at most 12.
	SSTBytes int
	// IngestParallel is how many SSTs are uploaded and ingested at once.
	// Default 4.
	IngestParallel int
	// SplitBytes is the target tablet size: the importer asks the PD to
	// split the table's range every SplitBytes of sorted data and to
	// spread the new tablets' leaders. 0: 64 MiB; negative: no splits.
	SplitBytes int64
	// MaxErrors is how many malformed rows are skipped (and written to
	// RejectFile) before the job fails. 0: the first one fails it.
	MaxErrors int64
	// RejectFile receives skipped rows as "file:line:col: error<TAB>row".
	// Default: WorkDir/rejects.txt.
	RejectFile string
	// OnDuplicate is "error" (default) or "last": what a row key given by
	// more than one input record does.
	OnDuplicate string
	// Progress, if set, is called every ProgressInterval (default 500ms)
	// and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	Logger           *slog.Logger
	// Hook, if set, is called at points of the pipeline (tests use it to
	// kill the job or change the cluster at chosen moments).
	Hook func(Event)
}

// Event is a point of the pipeline passed to Options.Hook.
type Event struct {
	// Name is "parsed", "sst" (an SST is built for a tablet, before
	// upload), "ingested" (the tablet took it; the checkpoint is not yet
	// written), "checkpointed" or "split" (the splits, which run during
	// the ingest, are done and recorded; it follows the last ingest).
	Name     string
	TabletID uint64
	SST      *SST
}

func (j *job) hook(ev Event) {
	if j.o.Hook != nil {
		j.hookMu.Lock() // hooks never run concurrently
		defer j.hookMu.Unlock()
		j.o.Hook(ev)
	}
}

// Progress is a snapshot of a running job.
type Progress struct {
	Phase         string        `json:"phase"` // parse, split, ingest, verify, done
	InputBytes    int64         `json:"input_bytes"`
	InputTotal    int64         `json:"input_total"` // 0 when unknown (stdin)
	InputRows     int64         `json:"input_rows"`
	Rejected      int64         `json:"rejected"`
	SortedBytes   int64         `json:"sorted_bytes"`
	IngestedBytes int64         `json:"ingested_bytes"`
	IngestedRows  int64         `json:"ingested_rows"`
	SSTs          int64         `json:"ssts"`
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// Summary is a finished job's account.
type Summary struct {
	Table        string
	Timestamp    int64
	InputRows    int64
	InputBytes   int64
	Rows         int64 // distinct rows imported
	Cells        int64
	Bytes        int64 // cell bytes ingested
	Rejected     int64
	Duplicates   int64
	SSTs         int64
	Recuts       int64
	VerifiedRows int64
	// Checksum digests the imported cells (the sum of keys.CellDigest);
	// VerifiedChecksum is the same digest of the table's cells at
	// Timestamp, computed by the tablet servers.
	Checksum, VerifiedChecksum string
	Resumed                    bool
	Duration                   time.Duration
	RejectFile                 string
}

func (s *Summary) String() string {
	secs := max(s.Duration.Seconds(), 1e-9)
	return fmt.Sprintf("imported %d rows (%d cells, %.1f MiB) into %q in %s: %.0f rows/s, %.1f MiB/s; %d SSTs, %d re-cut; %d rejected, %d duplicate rows; verified %d rows at timestamp %d",
		s.Rows, s.Cells, float64(s.Bytes)/(1<<20), s.Table, s.Duration.Round(time.Millisecond), float64(s.Rows)/secs, float64(s.Bytes)/(1<<20)/secs,
		s.SSTs, s.Recuts, s.Rejected, s.Duplicates, s.VerifiedRows, s.Timestamp)
}

type inputFile struct {
	path  string
	size  int64
	mtime int64
	stdin bool
}

// EnsureDefaults returns a copy of o with zero (or negative) fields set to
// their defaults, Source's included. SSTBytes is capped below what one raft
// entry carries.
func (o Options) EnsureDefaults() Options {
	o.Source = o.Source.EnsureDefaults()
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = 256 << 20
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.IngestParallel <= 0 {
		o.IngestParallel = 4
	}
	if o.SSTBytes <= 0 {
		o.SSTBytes = 8 << 20
	}
	o.SSTBytes = min(o.SSTBytes, maxSSTBytes*3/4)
	if o.SplitBytes == 0 {
		o.SplitBytes = 64 << 20
	}
	if o.OnDuplicate == "" {
		o.OnDuplicate = "error"
	}
	if o.RejectFile == "" && o.WorkDir != "" {
		o.RejectFile = filepath.Join(o.WorkDir, "rejects.txt")
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Validate rejects a job that cannot run, naming the missing or bad
// setting.
func (o Options) Validate() error {
	switch {
	case o.Table == "":
		return errors.New("importer: no table given")
	case o.WorkDir == "":
		return errors.New("importer: no work directory given")
	case len(o.Inputs) == 0:
		return errors.New("importer: no input given")
	}
	switch o.OnDuplicate {
	case "", "error", "last":
	default:
		return fmt.Errorf("importer: --on-duplicate %q: want error or last", o.OnDuplicate)
	}
	if o.NewEncoder == nil && (o.RowKey == "" || len(o.Mappings) == 0) {
		return errors.New("importer: a raw import needs --row-key and --map")
	}
	return o.Source.Validate()
}

func listInputs(inputs []string) ([]inputFile, error) {
	var out []inputFile
	stdin := false
	for _, in := range inputs {
		if in == "-" {
			if stdin {
				return nil, errors.New("importer: stdin given twice")
			}
			stdin = true
			out = append(out, inputFile{path: "-", stdin: true})
			continue
		}
		fi, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("importer: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, inputFile{path: in, size: fi.Size(), mtime: fi.ModTime().UnixNano()})
			continue
		}
		ents, err := os.ReadDir(in)
		if err != nil {
			return nil, fmt.Errorf("importer: %w", err)
		}
		n := 0
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, err
			}
			out = append(out, inputFile{path: filepath.Join(in, e.Name()), size: info.Size(), mtime: info.ModTime().UnixNano()})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("importer: directory %s holds no input files", in)
		}
	}
	return out, nil
}

// job is one run of Run.
type job struct {
	o       Options
	files   []inputFile
	cl      *cluster         // the placement driver
	kv      *kvclient.Client // routing, store connections, retries, verify
	schema  *metapb.TableSchema
	cp      *checkpoint
	started time.Time
	verify  *verifier // scans what is ingested, trailing the ingest
	// splits are the planned split points (row keys, increasing); SSTs
	// never span one, so a split under an SST in flight leaves its bytes
	// as they are (staged copies stay valid).
	splits [][]byte
	// rawSSTs: an SST's blocks did not compress, so later ones are
	// written without compression.
	rawSSTs atomic.Bool

	// stopper owns the job's goroutines. It is the job's own and is
	// stopped only after run returns, so it never refuses a task while
	// the job runs.
	stopper *stop.Stopper

	phase      atomic.Value // string
	inputBytes atomic.Int64
	inputTotal int64
	inputRows  atomic.Int64
	rejected   atomic.Int64
	// Ingest progress, mirrored from the checkpoint for the reporter.
	sortedBytes, ingestedBytes, ingestedRows, ssts atomic.Int64

	hookMu   sync.Mutex
	rejectMu sync.Mutex
	rejectW  *bufio.Writer
	rejectF  *os.File
}

// Run imports the inputs into the table, resuming from the work
// directory's checkpoint if there is one.
func Run(ctx context.Context, o Options) (*Summary, error) {
	stopper := stop.New()
	sum, err := run(ctx, o, stopper)
	// Every goroutine of the job has been joined by now; Stop checks it.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := stopper.Stop(sctx); serr != nil {
		return nil, errors.Join(err, fmt.Errorf("importer: %w", serr))
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// Canceled: say so whatever layer noticed first (gRPC reports
		// its own status), so callers can tell an interrupted job.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return sum, err
}

func run(ctx context.Context, o Options, stopper *stop.Stopper) (*Summary, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	files, err := listInputs(o.Inputs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockWorkDir(o.WorkDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	j := &job{o: o, files: files, started: time.Now(), stopper: stopper}
	j.phase.Store("start")
	for _, f := range files {
		j.inputTotal += f.size
	}
	fp := fingerprint(&o, files)
	cp, err := loadCheckpoint(o.WorkDir)
	if err != nil {
		return nil, err
	}
	resumed := cp != nil
	if cp != nil && cp.Fingerprint != fp {
		return nil, fmt.Errorf("importer: work directory %s belongs to another job (different table, options or input files); use another --work-dir or remove it", o.WorkDir)
	}
	if cp == nil {
		cp = &checkpoint{Version: 1, Fingerprint: fp}
	}
	j.cp = cp
	if cp.Done {
		return j.summary(resumed), nil
	}
	j.cl, err = dialCluster(ctx, o.PD, o.TLS)
	if err != nil {
		return nil, err
	}
	defer j.cl.close()
	if j.kv, err = kvclient.Open(ctx, kvclient.Options{PD: o.PD, TLS: o.TLS, Logger: o.Logger}); err != nil {
		return nil, err
	}
	defer j.kv.Close()
	if j.schema, err = j.cl.table(ctx, o.Table); err != nil {
		return nil, err
	}
	if cp.TableID != 0 && cp.TableID != j.schema.TableId {
		return nil, fmt.Errorf("importer: table %q was recreated since this job started (id %d, now %d); remove the work directory to start over", o.Table, cp.TableID, j.schema.TableId)
	}
	cp.TableID = j.schema.TableId
	if cp.Timestamp == 0 {
		if cp.Timestamp, err = j.cl.timestamp(ctx); err != nil {
			return nil, err
		}
		if err := cp.save(o.WorkDir); err != nil {
			return nil, err
		}
	}
	j.publish()
	stopProgress := j.reportProgress(ctx)
	defer stopProgress()

	if !cp.Sorted {
		if err := j.parse(ctx); err != nil {
			return nil, err
		}
	}
	j.hook(Event{Name: "parsed"})
	// Splitting and ingesting overlap: each split waits for the PD to
	// hand the operator to a store and hear back (a heartbeat or two), so
	// splitting first left the cluster idle for seconds per round. SSTs
	// cut for a tablet that splits before they land are re-cut (an epoch
	// mismatch), and cells ingested before a split simply end up in
	// whichever half holds their keys.
	j.splits = j.splitPoints()
	splitDone := make(chan error, 1)
	sctx, stopSplit := context.WithCancel(ctx)
	defer stopSplit()
	if cp.Split {
		splitDone <- nil
	} else {
		if err := j.stopper.RunAsyncTask(sctx, "importer.split", func(ctx context.Context) { splitDone <- j.splitAndScatter(ctx) }); err != nil {
			splitDone <- err
		}
	}
	j.phase.Store("ingest")
	vctx, stopVerify := context.WithCancel(ctx)
	defer stopVerify()
	j.verify = j.startVerifier(vctx)
	err = j.ingestAll(ctx)
	close(j.verify.upTo) // ingestAll's workers are done: no more advances
	if err != nil {
		stopSplit()
		stopVerify()
		<-j.verify.done
	}
	splitErr := <-splitDone
	if err != nil {
		return nil, err
	}
	if splitErr != nil {
		stopVerify()
		<-j.verify.done
		return nil, splitErr
	}
	if !cp.Split {
		cp.Split = true
		if err := cp.save(o.WorkDir); err != nil {
			return nil, err
		}
		j.hook(Event{Name: "split"})
	}
	j.phase.Store("verify")
	if err := j.finishVerify(j.verify); err != nil {
		return nil, err
	}
	cp.Done = true
	if err := cp.save(o.WorkDir); err != nil {
		return nil, err
	}
	for _, r := range cp.Runs {
		_ = os.Remove(filepath.Join(o.WorkDir, r))
	}
	j.phase.Store("done")
	return j.summary(resumed), nil
}

// lockWorkDir takes an exclusive lock on the work directory, so two
// importers never share one; the kernel drops it when the process dies.
func lockWorkDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("importer: another import is using work directory %s", dir)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (j *job) summary(resumed bool) *Summary {
	cp := j.cp
	s := &Summary{
		Table: j.o.Table, Timestamp: cp.Timestamp, InputRows: cp.InputRows, InputBytes: cp.InputBytes,
		Rows: cp.RowsIngested, Cells: cp.CellsIngested, Bytes: cp.BytesIngested, Rejected: cp.Rejected,
		Duplicates: cp.Duplicates, SSTs: cp.SSTs, Recuts: cp.Recuts, VerifiedRows: cp.VerifiedRows, Checksum: cp.Checksum, VerifiedChecksum: cp.VerifiedChecksum,
		Resumed: resumed, Duration: time.Since(j.started),
	}
	if cp.Rejected > 0 {
		s.RejectFile = j.o.RejectFile
	}
	return s
}

func (j *job) progress() Progress {
	return Progress{
		Phase: j.phase.Load().(string), InputBytes: j.inputBytes.Load(), InputTotal: j.inputTotal,
		InputRows: j.inputRows.Load(), Rejected: j.rejected.Load(), Elapsed: time.Since(j.started),
		SortedBytes: j.sortedBytes.Load(), IngestedBytes: j.ingestedBytes.Load(),
		IngestedRows: j.ingestedRows.Load(), SSTs: j.ssts.Load(),
	}
}

// publish copies the checkpoint's counters to the progress counters.
func (j *job) publish() {
	cp := j.cp
	if cp.Sorted {
		j.inputBytes.Store(cp.InputBytes)
		j.inputRows.Store(cp.InputRows)
		j.rejected.Store(cp.Rejected)
		j.sortedBytes.Store(cp.SortedBytes)
	}
	j.ingestedBytes.Store(cp.BytesIngested)
	j.ingestedRows.Store(cp.RowsIngested)
	j.ssts.Store(cp.SSTs)
}

// reportProgress calls Options.Progress every ProgressInterval, and once
// more from the returned stop function.
func (j *job) reportProgress(ctx context.Context) func() {
	if j.o.Progress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	report := func(context.Context) { j.o.Progress(j.progress()) }
	g := j.stopper.NewGroup()
	g.Go(ctx, "importer.progress", func(ctx context.Context) { stop.Periodically(ctx, j.o.ProgressInterval, report) })
	return func() {
		cancel()
		_ = g.Wait() // so that the last report comes last
		j.o.Progress(j.progress())
	}
}
