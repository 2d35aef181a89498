package importer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// maxSSTBytes mirrors tabletserver/store.MaxIngestBytes (one SST rides in
// one raft entry); SSTs are cut below it.
const maxSSTBytes = 16 << 20

// Options configure one import job.
type Options struct {
	// PD lists placement-driver endpoints.
	PD []string
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

func (o *Options) defaults() error {
	if o.Table == "" {
		return errors.New("importer: no table given")
	}
	if o.WorkDir == "" {
		return errors.New("importer: no work directory given")
	}
	if len(o.Inputs) == 0 {
		return errors.New("importer: no input given")
	}
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
	switch o.OnDuplicate {
	case "":
		o.OnDuplicate = "error"
	case "error", "last":
	default:
		return fmt.Errorf("importer: --on-duplicate %q: want error or last", o.OnDuplicate)
	}
	if o.RejectFile == "" {
		o.RejectFile = filepath.Join(o.WorkDir, "rejects.txt")
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.NewEncoder == nil && (o.RowKey == "" || len(o.Mappings) == 0) {
		return errors.New("importer: a raw import needs --row-key and --map")
	}
	return nil
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
	cl      *cluster
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
	sum, err := run(ctx, o)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// Canceled: say so whatever layer noticed first (gRPC reports
		// its own status), so callers can tell an interrupted job.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return sum, err
}

func run(ctx context.Context, o Options) (*Summary, error) {
	if err := o.defaults(); err != nil {
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
	j := &job{o: o, files: files, started: time.Now()}
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
	j.cl, err = dialCluster(ctx, o.PD)
	if err != nil {
		return nil, err
	}
	defer j.cl.close()
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
	stop := j.reportProgress()
	defer stop()

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
		go func() { splitDone <- j.splitAndScatter(sctx) }()
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

func (j *job) reportProgress() func() {
	if j.o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(j.o.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				j.o.Progress(j.progress())
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		j.o.Progress(j.progress())
	}
}

// ---- phase 1: parse, encode, sort ----

func (j *job) parse(ctx context.Context) error {
	j.phase.Store("parse")
	dir := j.o.WorkDir
	// Leftovers of an interrupted parse are redone from scratch.
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".run") {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	_ = os.Remove(j.o.RejectFile)
	defer j.closeRejects()

	type result struct {
		runs    []string
		samples []Sample
		bytes   int64
	}
	results := make([]result, len(j.files))
	next := atomic.Int64{}
	budget := j.o.MemoryBytes / j.o.Parallel
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	fe := &firstError{cancel: cancel}
	for w := 0; w < min(j.o.Parallel, len(j.files)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(j.files) || ctx.Err() != nil {
					return
				}
				runs, samples, n, err := j.parseFile(ctx, i, budget)
				if err != nil {
					fe.set(err)
					return
				}
				results[i] = result{runs, samples, n}
			}
		}()
	}
	wg.Wait()
	if err := fe.get(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cp := j.cp
	cp.Runs, cp.Samples, cp.SortedBytes = nil, nil, 0
	for _, r := range results {
		cp.Runs = append(cp.Runs, r.runs...)
		cp.Samples = append(cp.Samples, r.samples...)
		cp.SortedBytes += r.bytes
	}
	cp.InputRows, cp.InputBytes, cp.Rejected = j.inputRows.Load(), j.inputBytes.Load(), j.rejected.Load()
	cp.Sorted = true
	j.publish()
	return cp.save(dir)
}

// parseWorker encodes records into its own sorter.
type parseWorker struct {
	j     *job
	file  int
	enc   Encoder
	s     *sorter
	rc    recordCells
	p     *sourceParser
	bytes int64
}

func (j *job) newParseWorker(file, w, budget int) (*parseWorker, error) {
	var enc Encoder
	var err error
	if j.o.NewEncoder != nil {
		enc, err = j.o.NewEncoder(j.schema, j.cp.Timestamp)
	} else {
		enc, err = NewRawEncoder(j.schema, j.o.RowKey, j.o.Mappings, j.cp.Timestamp)
	}
	if err != nil {
		return nil, err
	}
	s := newSorter(j.o.WorkDir, fmt.Sprintf("f%05d-%d", file, w), budget)
	s.sampleEvery = max(min(sampleBytes, j.o.SplitBytes/8), 1)
	return &parseWorker{j: j, file: file, enc: enc, s: s}, nil
}

// row encodes one record into the sorter. Its seq is its line: records of
// one file start on distinct, increasing lines whichever worker parses
// them, which is all the duplicate rule needs (a file of 2^40 lines would
// overflow into the file index).
func (w *parseWorker) row(rec *Record) error {
	w.rc.reset()
	if err := w.enc.Encode(rec, w.rc.emit); err != nil {
		return err
	}
	n, err := w.s.addRecord(&w.rc, uint64(w.file)<<40|uint64(rec.Line), uint32(rec.Line))
	if err != nil {
		return err
	}
	w.bytes += n
	w.j.inputRows.Add(1)
	return nil
}

// parseBatch is a batch of one file on its way through the parse workers;
// its rejects are kept, in input order, for the committer.
type parseBatch struct {
	b       *batch
	rejects []*InputError
	done    chan struct{}
}

// parseFile reads input file i and returns the runs its sorters wrote and
// the cell bytes added. One goroutine (this one) reads and cuts the file
// into batches of whole records; until the first good record has fixed
// the columns it parses them itself, then GOMAXPROCS workers, each with
// its own encoder and sorter (budget shared), parse the rest. Rejects are
// committed in input order, so the reject file, --max-errors and the
// error that fails the job are those of a serial parse.
func (j *job) parseFile(ctx context.Context, i int, budget int) ([]string, []Sample, int64, error) {
	f := j.files[i]
	var r io.Reader
	name := f.path
	if f.stdin {
		if j.o.Stdin == nil {
			return nil, nil, 0, errors.New("importer: input - (stdin) but no stdin reader")
		}
		r, name = j.o.Stdin, "<stdin>"
	} else {
		fh, err := os.Open(f.path)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("importer: %w", err)
		}
		defer fh.Close()
		r = fh
	}
	nw := max(runtime.GOMAXPROCS(0), 1)
	workers := make([]*parseWorker, nw)
	for w := range workers {
		var err error
		if workers[w], err = j.newParseWorker(i, w, budget/nw); err != nil {
			return nil, nil, 0, err
		}
	}
	finish := func(err error) ([]string, []Sample, int64, error) {
		if err != nil {
			return nil, nil, 0, err
		}
		var runs []string
		var samples []Sample
		var n int64
		for _, w := range workers {
			runs, samples, n = append(runs, w.s.runs...), append(samples, w.s.samples...), n+w.bytes
		}
		return runs, samples, n, nil
	}
	c := newCutter(r, j.o.Source)
	c.name = name
	c.read = func(n int) { j.inputBytes.Add(int64(n)) }
	readErr := func(err error) error { return readError(name, err) }

	// Serial until the columns are known (normally the first batch).
	w0 := workers[0]
	w0.p = &sourceParser{name: name, o: j.o.Source, row: w0.row, bad: j.reject, bind: func(cols []string) error {
		for _, w := range workers {
			if err := w.enc.Bind(cols); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	}}
	for !w0.p.bound {
		if err := ctx.Err(); err != nil {
			return finish(err)
		}
		b, err := c.next(nil)
		if err != nil {
			return finish(readErr(err))
		}
		if b == nil {
			err := w0.p.finish()
			if err == nil {
				err = w0.s.spill()
			}
			return finish(err)
		}
		if err := w0.p.parse(b); err != nil {
			return finish(err)
		}
	}

	// Parallel: the cutter (here) feeds the workers, the committer takes
	// the batches' rejects in input order. At most 2*nw batches are in
	// flight, their buffers recycled.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fe := &firstError{cancel: cancel}
	fail := fe.set
	work := make(chan *parseBatch, nw)
	ordered := make(chan *parseBatch, 2*nw)
	free := make(chan []byte, 3*nw+1)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pb *parseBatch
			p := w0.p.fork(w.row, func(ie *InputError) error {
				pb.rejects = append(pb.rejects, ie)
				return nil
			})
			for pb = range work {
				if ctx.Err() == nil {
					if err := p.parse(pb.b); err != nil {
						fail(err)
					}
				}
				close(pb.done)
			}
			if ctx.Err() == nil {
				if err := w.s.spill(); err != nil {
					fail(err)
				}
			}
		}()
	}
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for pb := range ordered {
			<-pb.done
			for _, ie := range pb.rejects {
				if ctx.Err() != nil {
					break
				}
				if err := j.reject(ie); err != nil {
					fail(err)
				}
			}
			select {
			case free <- pb.b.data:
			default:
			}
		}
	}()
	for ctx.Err() == nil {
		var buf []byte
		select {
		case buf = <-free:
		default:
		}
		b, err := c.next(buf)
		if err != nil {
			fail(readErr(err))
			break
		}
		if b == nil {
			break
		}
		pb := &parseBatch{b: b, done: make(chan struct{})}
		select {
		case ordered <- pb:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			close(pb.done)
			break
		}
		select {
		case work <- pb:
		case <-ctx.Done():
			close(pb.done)
		}
	}
	close(work)
	close(ordered)
	wg.Wait()
	<-committed
	if err := fe.get(); err != nil {
		return finish(err)
	}
	return finish(ctx.Err())
}

// reject records a malformed row, or fails the job once MaxErrors is
// exceeded.
func (j *job) reject(ie *InputError) error {
	if n := j.rejected.Add(1); n > j.o.MaxErrors {
		if j.o.MaxErrors > 0 {
			return fmt.Errorf("%w (more than --max-errors=%d bad rows; see %s)", ie, j.o.MaxErrors, j.o.RejectFile)
		}
		return ie
	}
	j.rejectMu.Lock()
	defer j.rejectMu.Unlock()
	if j.rejectW == nil {
		f, err := os.Create(j.o.RejectFile)
		if err != nil {
			return err
		}
		j.rejectF, j.rejectW = f, bufio.NewWriter(f)
	}
	fmt.Fprintf(j.rejectW, "%s\t%s\n", ie.Error(), ie.Raw)
	return nil
}

func (j *job) closeRejects() {
	j.rejectMu.Lock()
	defer j.rejectMu.Unlock()
	if j.rejectW != nil {
		_ = j.rejectW.Flush()
		_ = j.rejectF.Sync()
		_ = j.rejectF.Close()
		j.rejectW, j.rejectF = nil, nil
	}
}

// ---- phase 2: split and scatter ----

// splitPoints picks row keys about every SplitBytes of sorted data.
func (j *job) splitPoints() [][]byte {
	if j.o.SplitBytes < 0 || len(j.cp.Samples) == 0 {
		return nil
	}
	samples := slices.Clone(j.cp.Samples)
	sort.Slice(samples, func(a, b int) bool { return bytes.Compare(samples[a].Key, samples[b].Key) < 0 })
	var out [][]byte
	var acc int64
	for _, s := range samples {
		acc += s.Bytes
		if acc < j.o.SplitBytes {
			continue
		}
		row, err := keys.RowPrefix(s.Key)
		if err != nil {
			continue
		}
		if len(out) > 0 && bytes.Compare(row, out[len(out)-1]) <= 0 {
			continue
		}
		out = append(out, bytes.Clone(row))
		acc = 0
	}
	return out
}

func (j *job) splitAndScatter(ctx context.Context) error {
	points := j.splitPoints()
	if len(points) == 0 {
		return nil
	}
	// One request: the PD splits each tablet at all the points inside it
	// in one raft command and returns once it routes every new tablet.
	sctx, cancel := context.WithTimeout(ctx, splitTimeout)
	err := j.cl.splitKeys(sctx, points)
	cancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil {
		// Best effort: the ingest works with whatever tablets exist.
		j.o.Logger.Warn("split failed", "points", len(points), "err", err)
	}
	start := keys.TablePrefix(j.schema.TableId)
	tablets, err := j.cl.tablets(ctx, start, keys.PrefixEnd(start))
	if err != nil {
		return err
	}
	// Spread leaders round-robin over each tablet's replicas.
	for i, t := range tablets {
		reps := t.GetTablet().GetReplicas()
		if len(reps) < 2 {
			continue
		}
		to := reps[i%len(reps)].StoreId
		if to != t.LeaderStoreId {
			if err := j.cl.transferLeader(ctx, t.Tablet.TabletId, to); err != nil {
				j.o.Logger.Debug("leader scatter failed", "tablet", t.Tablet.TabletId, "err", err)
			}
		}
	}
	return nil
}

// splitTimeout bounds the split phase's request to the PD.
const splitTimeout = time.Minute

// ---- phase 3: build SSTs per tablet, upload, ingest ----

// chunk is a run of whole rows, about SSTBytes, that one worker cuts into
// SSTs at tablet boundaries and ingests; its totals go to the checkpoint
// once every earlier chunk is in.
type chunk struct {
	seq   int
	cells []entry
	rows  []int // start index in cells of each row
	arena []byte
	size  int

	// Totals, filled in by ingestChunk.
	lastKey                                  []byte
	nRows, nCells, bytes, ssts, recuts, dups int64
}

func (p *chunk) addRow(cells []entry, sizeHint int) {
	if p.arena == nil {
		// One allocation per chunk: a chunk ends at the first row past
		// sizeHint, so growth (and the re-slicing below) is rare.
		p.arena = make([]byte, 0, sizeHint+sizeHint/8)
	}
	p.rows = append(p.rows, len(p.cells))
	base := p.arena
	for _, c := range cells {
		off := len(p.arena)
		p.arena = append(p.arena, c.key...)
		p.arena = append(p.arena, c.value...)
		p.cells = append(p.cells, entry{key: p.arena[off : off+len(c.key) : off+len(c.key)], value: p.arena[off+len(c.key) : len(p.arena) : len(p.arena)]})
		p.size += len(c.key) + len(c.value)
	}
	if cap(base) > 0 && &base[:1][0] == &p.arena[:1][0] {
		return // the arena did not move
	}
	// Re-slice after growth moved the arena (only then: doing it for every
	// row made filling a chunk quadratic in its cell count).
	off := 0
	for i := range p.cells {
		kl, vl := len(p.cells[i].key), len(p.cells[i].value)
		p.cells[i].key = p.arena[off : off+kl : off+kl]
		p.cells[i].value = p.arena[off+kl : off+kl+vl : off+kl+vl]
		off += kl + vl
	}
}

func (p *chunk) rowEnd(i int) int {
	if i+1 < len(p.rows) {
		return p.rows[i+1]
	}
	return len(p.cells)
}

func (j *job) ingestAll(ctx context.Context) error {
	cp := j.cp
	m, err := newMerger(j.o.WorkDir, cp.Runs)
	if err != nil {
		return err
	}
	defer m.close()
	rs := &rowStream{
		m:         m,
		onDupLast: j.o.OnDuplicate == "last",
		rowOf:     keys.RowPrefix,
		dupErr: func(row []byte, a, b entry) error {
			_, r, _ := keys.DecodeRowKey(row)
			return fmt.Errorf("importer: duplicate row key %q: %s:%d and %s:%d (use --on-duplicate=last to keep the last)",
				r, j.fileName(a.seq), a.line, j.fileName(b.seq), b.line)
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Chunks of about SSTBytes go to IngestParallel workers; the
	// checkpoint advances over the longest prefix of finished chunks, so
	// a resumed job redoes at most the chunks that were in flight (which
	// is harmless: their cells are identical).
	work := make(chan *chunk)
	resumeKey := cp.DoneKey // workers advance cp.DoneKey under mu
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		fe       = &firstError{cancel: cancel}
		finished = map[int]*chunk{}
		next     int
	)
	fail := fe.set
	complete := func(c *chunk) {
		mu.Lock()
		defer mu.Unlock()
		finished[c.seq] = c
		for {
			d, ok := finished[next]
			if !ok {
				return
			}
			delete(finished, next)
			next++
			cp.DoneKey = d.lastKey
			cp.RowsIngested += d.nRows
			cp.CellsIngested += d.nCells
			cp.BytesIngested += d.bytes
			cp.SSTs += d.ssts
			cp.Recuts += d.recuts
			cp.Duplicates += d.dups
			if err := cp.save(j.o.WorkDir); err != nil {
				fail(err)
				return
			}
			if j.verify != nil && d.lastKey != nil {
				j.verify.advance(d.lastKey)
			}
			j.hook(Event{Name: "checkpointed"})
		}
	}
	for w := 0; w < j.o.IngestParallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if err := j.ingestChunk(ctx, c); err != nil {
					fail(err)
					continue
				}
				complete(c)
			}
		}()
	}
	var sum cellSum
	var dec keys.CellDecoder // a row's cells share its decoded parts
	produce := func() error {
		var dups int64
		seq := 0
		c := &chunk{}
		send := func() error {
			c.seq, c.dups = seq, rs.duplicates-dups
			dups = rs.duplicates
			seq++
			select {
			case work <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
			c = &chunk{}
			return nil
		}
		for {
			cells, err := rs.nextRow()
			if err != nil {
				return err
			}
			if cells == nil {
				break
			}
			for _, c := range cells {
				d, err := dec.Decode(c.key)
				if err != nil {
					return err
				}
				sum.add(d.Row, d.Family, d.Qualifier, c.value)
			}
			if resumeKey != nil && bytes.Compare(cells[len(cells)-1].key, resumeKey) <= 0 {
				dups = rs.duplicates
				continue // ingested before a restart
			}
			c.addRow(cells, j.o.SSTBytes)
			if c.size >= j.o.SSTBytes {
				if err := send(); err != nil {
					return err
				}
			}
		}
		if len(c.cells) > 0 {
			return send()
		}
		return nil
	}
	err = produce()
	close(work)
	wg.Wait()
	firstErr := fe.get()
	if err == nil && firstErr == nil {
		cp.Checksum = sum.String()
	}
	if err != nil {
		if firstErr != nil && errors.Is(err, context.Canceled) {
			return firstErr
		}
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// firstError keeps the first error a group of goroutines reports and
// cancels their context when it arrives (errgroup's rule, for goroutines
// that report from several places and go on draining their queues).
type firstError struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.cancel()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (j *job) fileName(seq uint64) string {
	i := int(seq >> 40)
	if i < len(j.files) {
		if j.files[i].stdin {
			return "<stdin>"
		}
		return j.files[i].path
	}
	return "?"
}

// location is where the importer believes a tablet is.
type location struct {
	desc   *metapb.TabletDescriptor
	leader uint64
}

func (l location) containsRow(rowKey []byte) bool {
	return bytes.Compare(rowKey, l.desc.StartKey) >= 0 && (len(l.desc.EndKey) == 0 || bytes.Compare(rowKey, l.desc.EndKey) < 0)
}

// containsCell reports whether the row of a cell key lies in l.
func (l location) containsCell(cellKey []byte) bool {
	row, err := keys.RowPrefix(cellKey)
	return err == nil && l.containsRow(row)
}

// ingestChunk ingests every row of p, cutting SSTs at tablet boundaries
// and re-cutting when a tablet splits or moves under an SST.
func (j *job) ingestChunk(ctx context.Context, p *chunk) error {
	var hint *location
	var shownBytes int64
	row := 0
	for row < len(p.rows) {
		firstRow, err := keys.RowPrefix(p.cells[p.rows[row]].key)
		if err != nil {
			return err
		}
		loc := hint
		hint = nil
		if loc == nil || !loc.containsRow(firstRow) {
			info, err := j.cl.tablet(ctx, firstRow)
			if err != nil {
				if err := j.backoff(ctx, 0); err != nil {
					return err
				}
				continue
			}
			loc = &location{desc: info.Tablet, leader: info.LeaderStoreId}
		}
		b := newSSTBuilder(!j.rawSSTs.Load(), j.o.SSTBytes)
		end := row
		// The first planned split point above firstRow ends the SST too.
		var splitAt []byte
		if i, _ := slices.BinarySearchFunc(j.splits, firstRow, bytes.Compare); i < len(j.splits) {
			if splitAt = j.splits[i]; bytes.Equal(splitAt, firstRow) {
				splitAt = nil
				if i+1 < len(j.splits) {
					splitAt = j.splits[i+1]
				}
			}
		}
		for end < len(p.rows) {
			rk, err := keys.RowPrefix(p.cells[p.rows[end]].key)
			if err != nil {
				return err
			}
			if !loc.containsRow(rk) || (splitAt != nil && bytes.Compare(rk, splitAt) >= 0) {
				break
			}
			for _, c := range p.cells[p.rows[end]:p.rowEnd(end)] {
				if err := b.Add(c.key, c.value, j.cp.Timestamp); err != nil {
					return err
				}
			}
			end++
		}
		sst, err := b.Finish()
		if err != nil {
			return err
		}
		if !b.ValuesCompress() && sst.KeyCount > 1000 {
			// The data does not compress: stop paying for the attempts.
			j.rawSSTs.Store(true)
		}
		if len(sst.Data) > maxSSTBytes {
			return fmt.Errorf("importer: an SST for tablet %d grew to %d bytes (limit %d); lower --sst-size", loc.desc.TabletId, len(sst.Data), maxSSTBytes)
		}
		j.hook(Event{Name: "sst", TabletID: loc.desc.TabletId, SST: sst})
		next, err := j.ingestOne(ctx, loc, sst)
		if err != nil {
			return err
		}
		if next != nil { // re-cut for the tablet's new shape
			p.recuts++
			hint = next
			continue
		}
		j.hook(Event{Name: "ingested", TabletID: loc.desc.TabletId, SST: sst})
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, c := range p.cells[p.rows[row]:p.rowEnd(end-1)] {
			p.bytes += int64(len(c.key) + len(c.value))
		}
		p.nRows += int64(end - row)
		p.nCells += int64(sst.KeyCount)
		p.ssts++
		// The display moves per SST; the checkpoint per finished prefix.
		j.ingestedRows.Add(int64(end - row))
		j.ingestedBytes.Add(p.bytes - shownBytes)
		shownBytes = p.bytes
		j.ssts.Add(1)
		p.lastKey = bytes.Clone(sst.Largest)
		row = end
	}
	return nil
}

func (j *job) backoff(ctx context.Context, attempt int) error {
	d := min(50*time.Millisecond<<min(attempt, 5), time.Second)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// ingestOne uploads sst to every replica of loc and has the leader ingest
// it. It returns a new location when the SST must be re-cut (the tablet
// split, merged or moved since it was cut), nil when it is in.
func (j *job) ingestOne(ctx context.Context, loc *location, sst *SST) (*location, error) {
	leader := loc.leader
	staged := map[uint64]bool{} // stores holding the file
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if attempt > 0 && attempt%8 == 0 {
			j.o.Logger.Warn("ingest retrying", "tablet", loc.desc.TabletId, "attempt", attempt, "err", lastErr)
		}
		if attempt >= 200 {
			return nil, fmt.Errorf("importer: giving up on tablet %d after %d attempts: %w", loc.desc.TabletId, attempt, lastErr)
		}
		if leader == 0 {
			// Unknown leader: ask the PD again, else try the replicas.
			if info, err := j.cl.tablet(ctx, loc.desc.StartKey); err == nil && info.Tablet.TabletId == loc.desc.TabletId {
				leader = info.LeaderStoreId
			}
			if leader == 0 && len(loc.desc.Replicas) > 0 {
				leader = loc.desc.Replicas[attempt%len(loc.desc.Replicas)].StoreId
			}
			if leader == 0 {
				if err := j.backoff(ctx, attempt); err != nil {
					return nil, err
				}
				continue
			}
		}
		cl, err := j.cl.client(ctx, leader)
		if err != nil {
			lastErr = err
			leader = 0
			if err := j.backoff(ctx, attempt); err != nil {
				return nil, err
			}
			continue
		}
		if !staged[leader] {
			t0 := time.Now()
			err := j.stage(ctx, loc, leader, cl, sst, staged)
			j.o.Logger.Debug("SST staged", "tablet", loc.desc.TabletId, "bytes", len(sst.Data), "stores", len(staged), "took", time.Since(t0), "err", err)
			if err != nil {
				lastErr = err
				if next, err := j.route(ctx, err, loc, &leader, sst, attempt); next != nil || err != nil {
					return next, err
				}
				continue
			}
		}
		req := IngestRequest(loc.desc.TabletId, loc.desc.Epoch, j.schema.TableId, sst)
		for id := range staged {
			req.StagedStoreIds = append(req.StagedStoreIds, id)
		}
		t0 := time.Now()
		resp, err := cl.IngestSST(ctx, req)
		j.o.Logger.Debug("SST ingest", "tablet", loc.desc.TabletId, "by_reference", len(staged) >= len(loc.desc.Replicas), "took", time.Since(t0), "err", err)
		if err == nil {
			if resp.KeyCount != sst.KeyCount {
				return nil, fmt.Errorf("importer: tablet %d acknowledged %d cells of an SST of %d", loc.desc.TabletId, resp.KeyCount, sst.KeyCount)
			}
			return nil, nil
		}
		lastErr = err
		prev := leader
		next, rerr := j.route(ctx, err, loc, &leader, sst, attempt)
		if next != nil || rerr != nil {
			return next, rerr
		}
		if r, _ := classify(err); r == routeReupload {
			delete(staged, prev) // the leader lost it (restart or sweep)
		}
	}
}

// stage uploads sst, at once, to loc's leader (through cl) and to every
// replica of loc that does not hold it yet, and records in staged the
// stores that do. It returns the leader's upload error. A follower that
// cannot take the file is left out: the leader then carries the file in
// the raft entry instead of naming it (tabletserver/store/ingest.go).
func (j *job) stage(ctx context.Context, loc *location, leader uint64, cl kvpb.TabletClient, sst *SST, staged map[uint64]bool) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var leaderErr error
	upload := func(id uint64) {
		defer wg.Done()
		var err error
		if id == leader {
			_, err = UploadSST(ctx, cl, loc.desc.TabletId, sst)
		} else {
			// A follower that is down or partitioned must not hold up
			// the ingest for long.
			fctx, cancel := context.WithTimeout(ctx, followerUploadTimeout+time.Duration(len(sst.Data)>>20)*time.Second)
			defer cancel()
			var fcl kvpb.TabletClient
			if fcl, err = j.cl.client(fctx, id); err == nil {
				_, err = UploadSST(fctx, fcl, loc.desc.TabletId, sst)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			staged[id] = true
		case id == leader:
			leaderErr = err
		default:
			j.o.Logger.Debug("follower upload failed; the SST will travel in the raft entry", "tablet", loc.desc.TabletId, "store", id, "err", err)
		}
	}
	// The targets are chosen before any upload starts: the uploads write
	// to staged.
	targets := []uint64{leader}
	for _, rep := range loc.desc.Replicas {
		if rep.StoreId != leader && !staged[rep.StoreId] {
			targets = append(targets, rep.StoreId)
		}
	}
	for _, id := range targets {
		wg.Add(1)
		go upload(id)
	}
	wg.Wait()
	return leaderErr
}

// followerUploadTimeout (plus a second per MiB) bounds a follower's upload.
const followerUploadTimeout = 5 * time.Second

// route reacts to an error of an upload or ingest: it may change *leader,
// return a location to re-cut for, or a fatal error.
func (j *job) route(ctx context.Context, err error, loc *location, leader *uint64, sst *SST, attempt int) (*location, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r, nl := classify(err)
	switch r {
	case routeFatal:
		return nil, fmt.Errorf("importer: tablet %d: %w", loc.desc.TabletId, err)
	case routeLeader:
		*leader = nl.LeaderStoreId
		if *leader == 0 {
			return nil, j.backoff(ctx, attempt)
		}
		return nil, nil
	case routeRecut:
		// The leader's answer names the tablet's current shape; when the
		// SST still fits in it (SSTs are cut at the planned split
		// points), retry there at once rather than wait for the PD to
		// hear of the split: the bytes, and so the staged copies, are
		// the same.
		if em, ok := errs.Detail(err).(*errorpb.EpochMismatch); ok && *leader != 0 && sst != nil {
			for _, d := range em.Current {
				nl := &location{desc: d, leader: *leader}
				if d.TabletId == loc.desc.TabletId && !sameDesc(d, loc.desc) && nl.containsCell(sst.Smallest) && nl.containsCell(sst.Largest) {
					return nl, nil
				}
			}
		}
		if err := j.backoff(ctx, 0); err != nil {
			return nil, err
		}
		return j.relocate(ctx, loc)
	case routeReupload:
		if attempt < 2 {
			return nil, nil
		}
		return nil, j.backoff(ctx, attempt)
	default:
		j.cl.forget(*leader)
		*leader = 0
		return nil, j.backoff(ctx, attempt)
	}
}

// relocate asks the PD for the tablet now holding loc's first row; while
// the PD still reports the old shape, it waits.
func (j *job) relocate(ctx context.Context, loc *location) (*location, error) {
	for attempt := 0; attempt < 100; attempt++ {
		info, err := j.cl.tablet(ctx, loc.desc.StartKey)
		if err == nil && !sameDesc(info.Tablet, loc.desc) {
			return &location{desc: info.Tablet, leader: info.LeaderStoreId}, nil
		}
		if err := j.backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
	// The PD still shows the shape the store refused; try it again (the
	// store may have refused because it had not caught up).
	return &location{desc: loc.desc}, nil
}

func sameDesc(a, b *metapb.TabletDescriptor) bool {
	return a.TabletId == b.TabletId && a.GetEpoch().GetVersion() == b.GetEpoch().GetVersion() &&
		a.GetEpoch().GetConfVersion() == b.GetEpoch().GetConfVersion()
}

// ---- phase 4: verify ----

// cellSum digests cells (row, family, qualifier, value): the wrapping sum
// of keys.CellDigest over them, so the input's digest can be compared with
// the one the tablet servers compute over the table (kvclient.Digest)
// without shipping the data back.
type cellSum struct {
	d   keys.CellDigester
	sum uint64
}

func (c *cellSum) add(row []byte, family string, qualifier, value []byte) {
	c.sum += c.d.CellDigest(row, family, qualifier, value)
}

func (c *cellSum) String() string { return fmt.Sprintf("%016x", c.sum) }

// verifier counts the table's rows that hold a cell at the job's
// timestamp: every imported row does (a later write adds a newer version;
// a row deleted meanwhile, or a version collected by a 1-version family
// after a newer write, would be missing, which is why this is reported and
// not an error unless nothing at all is found). It trails the ingest: each
// key sent on upTo is the last cell of the checkpointed prefix, and the
// rows up to it are scanned while later chunks are still being ingested;
// when upTo closes, the rest of the table is scanned. Scanning in key
// order keeps the digest comparable with the importer's.
type verifier struct {
	upTo chan []byte // capacity 1; the sender replaces an unread key
	done chan struct{}
	n    int64
	sum  uint64 // of the rows' cell digests
	err  error
}

func (j *job) startVerifier(ctx context.Context) *verifier {
	v := &verifier{upTo: make(chan []byte, 1), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		v.err = j.runVerifier(ctx, v)
	}()
	return v
}

// advance tells the verifier that every row up to cell key k is in. Only
// one goroutine calls it at a time (ingestAll's complete, under its lock).
func (v *verifier) advance(k []byte) {
	select {
	case <-v.upTo: // not read yet: replace it
	default:
	}
	v.upTo <- k
}

func (j *job) runVerifier(ctx context.Context, v *verifier) error {
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: j.o.PD})
	if err != nil {
		return err
	}
	defer cl.Close()
	t, err := cl.Table(ctx, j.o.Table)
	if err != nil {
		return err
	}
	ts := j.cp.Timestamp
	var from []byte // row to start the next scan at; nil: the table's first
	scan := func(to []byte) error {
		// The servers digest the cells; only row keys come back.
		sc := t.Scan(ctx, kvclient.ScanOptions{Start: from, End: to, Read: []kvclient.ReadOption{kvclient.TimeRange(ts, ts+1), kvclient.Digest()}})
		defer sc.Close()
		for sc.Next() {
			row := sc.Row()
			if row.CellCount == 0 {
				continue
			}
			v.n++
			v.sum += row.CellDigest
		}
		return sc.Err()
	}
	for k := range v.upTo {
		d, err := keys.DecodeCellKey(k)
		if err != nil {
			return err
		}
		to := append(bytes.Clone(d.Row), 0) // the first row after d.Row
		if from != nil && bytes.Compare(to, from) <= 0 {
			continue
		}
		if err := scan(to); err != nil {
			return err
		}
		from = to
	}
	return scan(nil)
}

// finishVerify waits for v's last scan (ingestAll is over and closed
// v.upTo) and checks its result.
func (j *job) finishVerify(v *verifier) error {
	<-v.done
	if v.err != nil {
		return fmt.Errorf("importer: verifying: %w", v.err)
	}
	ts := j.cp.Timestamp
	n := v.n
	j.cp.VerifiedRows = n
	j.cp.VerifiedChecksum = fmt.Sprintf("%016x", v.sum)
	switch {
	case n == 0 && j.cp.RowsIngested > 0:
		return fmt.Errorf("importer: verification found none of the %d imported rows at timestamp %d", j.cp.RowsIngested, ts)
	case n == j.cp.RowsIngested && j.cp.Checksum != "" && j.cp.VerifiedChecksum != j.cp.Checksum:
		// Every row is there but some cell differs: never expected.
		return fmt.Errorf("importer: verification: the table's cells at timestamp %d differ from the input (digest %s, expected %s)", ts, j.cp.VerifiedChecksum, j.cp.Checksum)
	}
	return nil
}
