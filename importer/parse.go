package importer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
)

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
	g := j.stopper.NewGroup()
	fe := &firstError{cancel: cancel}
	for w := 0; w < min(j.o.Parallel, len(j.files)); w++ {
		g.Go(ctx, "importer.parse", func(ctx context.Context) {
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
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
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
	g := j.stopper.NewGroup()
	for _, w := range workers {
		g.Go(ctx, "importer.parse-worker", func(ctx context.Context) {
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
		})
	}
	// The committer.
	g.Go(ctx, "importer.parse-commit", func(ctx context.Context) {
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
	})
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
	if err := g.Wait(); err != nil {
		fail(err)
	}
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
