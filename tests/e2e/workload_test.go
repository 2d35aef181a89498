//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
)

// Workload shape. Few hot rows, as etcd's robustness tests use, so that
// faults hit rows that are being read and written concurrently.
const (
	registerRows    = 10
	counterRows     = 5
	setRows         = 5
	scanRows        = 1000
	registerWorkers = 4
	counterWorkers  = 2
	setWorkers      = 2
	thriftWorkers   = 1
	opTimeout       = 5 * time.Second
	fam             = "f"
)

var (
	colValue   = []byte("v")
	colCounter = []byte("n")
	colSet     = []byte("e")
)

// workloads runs every client worker and keeps their histories.
type workloads struct {
	pd         []string
	thriftAddr string
	// tls is root's client certificate: the workers act as root (an
	// admin: they create the tables) over mutual TLS, as every client of
	// the secure cluster must.
	tls    *security.Reloader
	seed   uint64
	t0     time.Time
	tables map[string]uint64 // name → table ID

	mu        sync.Mutex
	reg       []RegOp
	ctr       []CounterOp
	set       []SetOp
	thr       []SetOp
	scans     int
	scanErrs  int
	scanBad   []string
	other     []string // violations seen by workers directly
	scanWant  map[string]bool
	nextCli   atomic.Int64
	clients   []*kvclient.Client
	scanWrite atomic.Int64
}

func (w *workloads) now() int64 { return time.Since(w.t0).Nanoseconds() }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (w *workloads) open(ctx context.Context) (*kvclient.Client, error) {
	c, err := kvclient.Open(ctx, kvclient.Options{PD: w.pd, TLS: w.tls, RequestTimeout: opTimeout, Logger: quietLogger()})
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.clients = append(w.clients, c)
	w.mu.Unlock()
	return c, nil
}

func (w *workloads) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.clients {
		c.Close()
	}
	w.clients = nil
}

// setup creates the tables (pre-split, so that the workloads span several
// tablets from the start) and preloads the scan table.
func (w *workloads) setup(ctx context.Context) error {
	c, err := w.open(ctx)
	if err != nil {
		return err
	}
	fams := []kvclient.Family{{Name: fam, MaxVersions: 1}}
	specs := []struct {
		name  string
		split []string
	}{
		{"registers", []string{"r5"}},
		{"counters", []string{"c3"}},
		{"sets", []string{"s3"}},
		{"scan", []string{"k0250", "k0500", "k0750"}},
		{"thriftset", nil},
	}
	w.tables = map[string]uint64{}
	for _, s := range specs {
		var split [][]byte
		for _, r := range s.split {
			split = append(split, []byte(r))
		}
		var ti *kvclient.TableInfo
		err := testutils.Retry(ctx, time.Minute, func() error {
			var err error
			ti, err = c.CreateTable(ctx, s.name, fams, split...)
			if errors.Is(err, kvclient.ErrTableExists) {
				ti, err = c.DescribeTable(ctx, s.name)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("create table %s: %w", s.name, err)
		}
		w.tables[s.name] = ti.ID
	}
	tbl, err := c.Table(ctx, "scan")
	if err != nil {
		return err
	}
	w.scanWant = map[string]bool{}
	for i := 0; i < scanRows; i += 100 {
		var batch []kvclient.RowMutation
		for j := i; j < i+100; j++ {
			row := fmt.Sprintf("k%04d", j)
			w.scanWant[row] = true
			batch = append(batch, kvclient.RowMutation{Row: []byte(row), Mutations: []kvclient.Mutation{kvclient.SetCell(fam, colValue, []byte("0"))}})
		}
		if err := testutils.Retry(ctx, time.Minute, func() error { return errors.Join(tbl.BatchMutate(ctx, batch)...) }); err != nil {
			return fmt.Errorf("preload scan table: %w", err)
		}
	}
	return nil
}

// outcome classifies a write's error: kvclient says which are ambiguous;
// a write cut short because the run ended is unknown too.
func outcome(ctx context.Context, err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, kvclient.ErrAmbiguous), ctx.Err() != nil:
		return Unknown
	}
	return Fail
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// start launches every worker; they stop when ctx is done. wg tracks them.
func (w *workloads) start(ctx context.Context, wg *sync.WaitGroup) error {
	tables := map[string]*kvclient.Table{}
	for name := range w.tables {
		c, err := w.open(ctx)
		if err != nil {
			return err
		}
		if tables[name], err = c.Table(ctx, name); err != nil {
			return err
		}
	}
	worker := func(f func(id int, rng *rand.Rand, tbl *kvclient.Table), table string) {
		id := int(w.nextCli.Add(1) - 1)
		rng := rand.New(rand.NewPCG(w.seed, uint64(id)+1))
		var tbl *kvclient.Table
		if table != "" {
			// A client of its own: its own connections, client ID and
			// request IDs, as separate processes would have.
			c, err := w.open(ctx)
			if err == nil {
				tbl, err = c.Table(ctx, table)
			}
			if err != nil {
				tbl = tables[table]
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); f(id, rng, tbl) }()
	}
	for range registerWorkers {
		worker(w.registerWorker(ctx), "registers")
	}
	for range counterWorkers {
		worker(w.counterWorker(ctx), "counters")
	}
	for range setWorkers {
		worker(w.setWorker(ctx), "sets")
	}
	worker(w.scanWriter(ctx), "scan")
	worker(w.scanner(ctx), "scan")
	for range thriftWorkers {
		worker(w.thriftWorker(ctx), "")
	}
	return nil
}

func (w *workloads) registerWorker(ctx context.Context) func(int, *rand.Rand, *kvclient.Table) {
	return func(id int, rng *rand.Rand, tbl *kvclient.Table) {
		last := map[string]string{}
		for seq := 0; ctx.Err() == nil; seq++ {
			key := fmt.Sprintf("r%d", rng.IntN(registerRows))
			op := RegOp{Client: id, Key: key}
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			op.Call = w.now()
			switch p := rng.IntN(10); {
			case p < 4:
				op.Kind = OpRead
				r, err := tbl.Get(octx, []byte(key), kvclient.Columns(kvclient.Column{Family: fam, Qualifier: colValue}))
				op.Return = w.now()
				if err != nil {
					op.Outcome, op.Err = Fail, errString(err)
				} else {
					v, _ := r.Value(fam, colValue)
					op.Outcome, op.Value = OK, string(v)
					last[key] = op.Value
				}
			case p < 7:
				op.Kind, op.Value = OpWrite, fmt.Sprintf("%d-%d", id, seq)
				_, err := tbl.MutateRow(octx, []byte(key), kvclient.SetCell(fam, colValue, []byte(op.Value)))
				op.Return = w.now()
				op.Outcome, op.Err = outcome(ctx, err), errString(err)
				if err == nil {
					last[key] = op.Value
				}
			default:
				op.Kind, op.Value, op.Expect = OpCAS, fmt.Sprintf("%d-%d", id, seq), last[key]
				cond := kvclient.Condition{Family: fam, Qualifier: colValue, Op: kvclient.Equal, Value: []byte(op.Expect)}
				if op.Expect == "" {
					cond = kvclient.Condition{Family: fam, Qualifier: colValue, Op: kvclient.NotExists}
				}
				ok, err := tbl.CheckAndMutateRow(octx, []byte(key), cond, []kvclient.Mutation{kvclient.SetCell(fam, colValue, []byte(op.Value))}, nil)
				op.Return = w.now()
				op.Outcome, op.Err, op.Swapped = outcome(ctx, err), errString(err), ok
				if err == nil && ok {
					last[key] = op.Value
				}
			}
			cancel()
			w.mu.Lock()
			w.reg = append(w.reg, op)
			w.mu.Unlock()
		}
	}
}

func (w *workloads) counterWorker(ctx context.Context) func(int, *rand.Rand, *kvclient.Table) {
	return func(id int, rng *rand.Rand, tbl *kvclient.Table) {
		for ctx.Err() == nil {
			key := fmt.Sprintf("c%d", rng.IntN(counterRows))
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			v, err := tbl.Increment(octx, []byte(key), fam, colCounter, 1)
			cancel()
			op := CounterOp{Client: id, Key: key, Outcome: outcome(ctx, err), Value: v, Err: errString(err)}
			w.mu.Lock()
			w.ctr = append(w.ctr, op)
			w.mu.Unlock()
		}
	}
}

func (w *workloads) setWorker(ctx context.Context) func(int, *rand.Rand, *kvclient.Table) {
	return func(id int, rng *rand.Rand, tbl *kvclient.Table) {
		for seq := 0; ctx.Err() == nil; seq++ {
			key := fmt.Sprintf("s%d", rng.IntN(setRows))
			elem := fmt.Sprintf("%d-%d", id, seq)
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			v, err := tbl.Append(octx, []byte(key), fam, colSet, []byte(elem+SetElemSep))
			cancel()
			op := SetOp{Client: id, Key: key, Elem: elem, Outcome: outcome(ctx, err), Err: errString(err)}
			var bad string
			if err == nil {
				n := 0
				for _, e := range ParseSet(string(v)) {
					if e == elem {
						n++
					}
				}
				if n != 1 {
					bad = fmt.Sprintf("set %s: append of %q returned a value holding it %d times", key, elem, n)
				}
			}
			w.mu.Lock()
			w.set = append(w.set, op)
			if bad != "" {
				w.other = append(w.other, bad)
			}
			w.mu.Unlock()
		}
	}
}

// scanWriter keeps rewriting the scan table's rows (and adding new ones),
// so scans run over tablets that are changing.
func (w *workloads) scanWriter(ctx context.Context) func(int, *rand.Rand, *kvclient.Table) {
	return func(id int, rng *rand.Rand, tbl *kvclient.Table) {
		for seq := 0; ctx.Err() == nil; seq++ {
			row := fmt.Sprintf("k%04d", rng.IntN(scanRows))
			if seq%10 == 0 {
				row = fmt.Sprintf("k%04d-%d-%d", rng.IntN(scanRows), id, seq)
			}
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			_, err := tbl.MutateRow(octx, []byte(row), kvclient.SetCell(fam, colValue, []byte(fmt.Sprint(seq))))
			cancel()
			if err == nil {
				w.scanWrite.Add(1)
			}
		}
	}
}

// scanner runs full-table scans in small pages and checks each.
func (w *workloads) scanner(ctx context.Context) func(int, *rand.Rand, *kvclient.Table) {
	return func(id int, rng *rand.Rand, tbl *kvclient.Table) {
		for ctx.Err() == nil {
			rows, err := fullScan(ctx, tbl, 20+rng.IntN(100))
			w.mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					w.scanErrs++
				}
			} else {
				w.scans++
				w.scanBad = append(w.scanBad, CheckScan(rows, w.scanWant)...)
			}
			w.mu.Unlock()
		}
	}
}

func fullScan(ctx context.Context, tbl *kvclient.Table, page int) ([]string, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sc := tbl.Scan(sctx, kvclient.ScanOptions{PageRows: page})
	defer sc.Close()
	var rows []string
	for sc.Next() {
		rows = append(rows, string(sc.Row().Key))
	}
	return rows, sc.Err()
}

// thriftWorker adds unique rows through the Thrift gateway. A Thrift error
// does not say whether the put happened: every failed put is unknown.
func (w *workloads) thriftWorker(ctx context.Context) func(int, *rand.Rand, *kvclient.Table) {
	return func(id int, rng *rand.Rand, _ *kvclient.Table) {
		var (
			trans thrift.TTransport
			cl    *hbase.THBaseServiceClient
		)
		// The gateway's port is published on the host's 127.0.0.1, which
		// its node certificate names.
		cfg := &thrift.TConfiguration{ConnectTimeout: 2 * time.Second, SocketTimeout: opTimeout * 2, TLSConfig: w.tls.ClientTLS("127.0.0.1")}
		table := []byte("thriftset")
		for seq := 0; ctx.Err() == nil; seq++ {
			if cl == nil {
				trans = thrift.NewTBufferedTransport(thrift.NewTSSLSocketConf(w.thriftAddr, cfg), 8192)
				if err := trans.Open(); err != nil {
					sleepCtx(ctx, 200*time.Millisecond)
					continue
				}
				cl = hbase.NewTHBaseServiceClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(cfg))
			}
			row := fmt.Sprintf("t%d-%d", id, seq)
			octx, cancel := context.WithTimeout(ctx, opTimeout*2)
			err := cl.Put(octx, table, &hbase.TPut{Row: []byte(row), ColumnValues: []*hbase.TColumnValue{{Family: []byte(fam), Qualifier: colValue, Value: []byte(row)}}})
			cancel()
			op := SetOp{Client: id, Key: "thriftset", Elem: row, Outcome: OK}
			if err != nil {
				op.Outcome, op.Err = Unknown, errString(err)
				trans.Close()
				cl = nil
			}
			w.mu.Lock()
			w.thr = append(w.thr, op)
			w.mu.Unlock()
		}
		if trans != nil {
			trans.Close()
		}
	}
}

// finalState reads every row once the cluster is healed and the workers
// have stopped; the register reads join the history. It retries each read
// for up to a minute: an unavailable cluster at this point is a finding.
func (w *workloads) finalState(ctx context.Context) (ctr map[string]int64, sets map[string][]string, err error) {
	c, err := w.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	get := func(table, row string, col []byte) ([]byte, error) {
		tbl, err := c.Table(ctx, table)
		if err != nil {
			return nil, err
		}
		var v []byte
		err = testutils.Retry(ctx, time.Minute, func() error {
			octx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			r, err := tbl.Get(octx, []byte(row), kvclient.Columns(kvclient.Column{Family: fam, Qualifier: col}))
			if err == nil {
				v, _ = r.Value(fam, col)
			}
			return err
		})
		return v, err
	}
	client := int(w.nextCli.Add(1) - 1)
	for i := range registerRows {
		key := fmt.Sprintf("r%d", i)
		call := w.now()
		v, err := get("registers", key, colValue)
		if err != nil {
			return nil, nil, fmt.Errorf("final read of register %s: %w", key, err)
		}
		w.reg = append(w.reg, RegOp{Client: client, Key: key, Kind: OpRead, Value: string(v), Outcome: OK, Call: call, Return: w.now()})
	}
	ctr = map[string]int64{}
	for i := range counterRows {
		key := fmt.Sprintf("c%d", i)
		v, err := get("counters", key, colCounter)
		if err != nil {
			return nil, nil, fmt.Errorf("final read of counter %s: %w", key, err)
		}
		if len(v) == 8 {
			ctr[key] = int64(binary.BigEndian.Uint64(v))
		} else if len(v) == 0 {
			ctr[key] = 0
		} else {
			return nil, nil, fmt.Errorf("counter %s holds %d bytes", key, len(v))
		}
	}
	sets = map[string][]string{}
	for i := range setRows {
		key := fmt.Sprintf("s%d", i)
		v, err := get("sets", key, colSet)
		if err != nil {
			return nil, nil, fmt.Errorf("final read of set %s: %w", key, err)
		}
		sets[key] = ParseSet(string(v))
	}
	tt, err := c.Table(ctx, "thriftset")
	if err != nil {
		return nil, nil, err
	}
	var rows []string
	if err := testutils.Retry(ctx, time.Minute, func() error {
		var err error
		rows, err = fullScan(ctx, tt, 500)
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("final scan of thriftset: %w", err)
	}
	sets["thriftset"] = rows
	st, err := c.Table(ctx, "scan")
	if err != nil {
		return nil, nil, err
	}
	if err := testutils.Retry(ctx, time.Minute, func() error {
		rows, err = fullScan(ctx, st, 100)
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("final scan of the scan table: %w", err)
	}
	w.scans++
	w.scanBad = append(w.scanBad, CheckScan(rows, w.scanWant)...)
	return ctr, sets, nil
}

// tally counts a history's outcomes.
type tally struct{ OK, Fail, Unknown int }

func (t *tally) add(o Outcome) {
	switch o {
	case OK:
		t.OK++
	case Fail:
		t.Fail++
	default:
		t.Unknown++
	}
}

func (t tally) Total() int { return t.OK + t.Fail + t.Unknown }

func (t tally) String() string {
	return fmt.Sprintf("%d (ok %d, fail %d, unknown %d)", t.Total(), t.OK, t.Fail, t.Unknown)
}

// errorSummary lists the most common error messages of failed operations.
func errorSummary(errs []string, n int) string {
	count := map[string]int{}
	for _, e := range errs {
		if i := strings.Index(e, ": rpc error"); i > 0 {
			e = e[:i]
		}
		count[e]++
	}
	keys := sortedKeys(count)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", count[k], k))
	}
	if len(parts) > n {
		parts = parts[:n]
	}
	return strings.Join(parts, "\n    ")
}
