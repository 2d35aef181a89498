package kvnemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/kvclient"
)

// opTimeout bounds one operation; an operation still running well past it
// has hung (see watchdog).
const opTimeout = 20 * time.Second

// writeMethods are the Tablet API's writes, whose responses the clients'
// interceptors lose.
var writeMethods = map[string]bool{"MutateRow": true, "CheckAndMutateRow": true, "ReadModifyWriteRow": true, "BatchMutate": true}

// oldTimestamps are explicit timestamps far in the past (µs), shared by the
// Go client and the Thrift gateway (1, 2, 3 and 5 ms there).
var oldTimestamps = []int64{1000, 2000, 3000, 5000}

// worker is one client issuing random operations through kvclient.
type worker struct {
	id   int
	rng  *rand.Rand
	h    *history
	tbl  *kvclient.Table
	keys keyspace
	seq  int
}

func (w *worker) value() string {
	w.seq++
	return fmt.Sprintf("v%d.%d", w.id, w.seq)
}

func (w *worker) row() string { return pick(w.rng, w.keys.current()) }

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// outcome classifies a write's error: ok, unknown (it may have applied)
// or failed (it certainly did not: the client returns ErrAmbiguous
// whenever it cannot tell).
func outcome(err error) (record, unknown bool) {
	switch {
	case err == nil:
		return true, false
	case errors.Is(err, kvclient.ErrAmbiguous):
		return true, true
	}
	return false, false
}

// mutations draws one row's mutation list. Sets on colZ carry explicit
// timestamps near now; sets elsewhere are server-timestamped or old.
func (w *worker) mutations(n int) []mutation {
	var ms []mutation
	for range n {
		switch r := w.rng.IntN(20); {
		case r < 11:
			m := mutation{Kind: mutSet, Col: pick(w.rng, []string{colA, colB, colC}), Val: w.value()}
			if w.rng.IntN(4) == 0 {
				m.TS = pick(w.rng, oldTimestamps)
			}
			ms = append(ms, m)
		case r < 14:
			// Within the maximum clock offset (500 ms) of the leader's
			// clock, which is never behind this machine's wall clock.
			ms = append(ms, mutation{Kind: mutSet, Col: colZ, Val: w.value(), TS: time.Now().UnixMicro() + w.rng.Int64N(250_000)})
		case r < 17:
			ms = append(ms, mutation{Kind: mutDeleteColumn, Col: pick(w.rng, []string{colA, colB, colC, colZ})})
		case r < 19:
			ms = append(ms, mutation{Kind: mutDeleteFamily, Fam: pick(w.rng, []string{famF, famG})})
		default:
			ms = append(ms, mutation{Kind: mutDeleteRow})
		}
	}
	return ms
}

func toClient(ms []mutation) []kvclient.Mutation {
	out := make([]kvclient.Mutation, 0, len(ms))
	for _, m := range ms {
		f, q := splitCol(m.Col)
		switch m.Kind {
		case mutSet:
			out = append(out, kvclient.SetCellAt(f, q, []byte(m.Val), m.TS))
		case mutDeleteColumn:
			out = append(out, kvclient.DeleteColumn(f, q))
		case mutDeleteFamily:
			out = append(out, kvclient.DeleteFamily(m.Fam))
		case mutDeleteRow:
			out = append(out, kvclient.DeleteRow())
		}
	}
	return out
}

// readSpec draws a projection: every column, one family, a few columns,
// or colZ in a time range; 1 to 3 versions.
func (w *worker) readSpec(row string) (input, []kvclient.ReadOption) {
	in := input{Row: row, Kind: opRead, Versions: 1 + w.rng.IntN(3)}
	opts := []kvclient.ReadOption{kvclient.MaxVersions(uint32(in.Versions))}
	switch w.rng.IntN(5) {
	case 0:
		in.Cols = []string{colA, colB, colZ, colN, colL}
		opts = append(opts, kvclient.Families(famF))
	case 1:
		in.Cols = []string{colC}
		opts = append(opts, kvclient.Families(famG))
	case 2:
		in.Cols = []string{pick(w.rng, allColumns), pick(w.rng, allColumns)}
		slices.Sort(in.Cols)
		in.Cols = slices.Compact(in.Cols)
		var cols []kvclient.Column
		for _, c := range in.Cols {
			f, q := splitCol(c)
			cols = append(cols, kvclient.Column{Family: f, Qualifier: q})
		}
		opts = append(opts, kvclient.Columns(cols...))
	case 3:
		now := time.Now().UnixMicro()
		in.Cols = []string{colZ}
		in.TRStart, in.TREnd = now-w.rng.Int64N(2_000_000), now+w.rng.Int64N(300_000)+1
		f, q := splitCol(colZ)
		opts = append(opts, kvclient.Columns(kvclient.Column{Family: f, Qualifier: q}), kvclient.TimeRange(in.TRStart, in.TREnd))
	}
	return in, opts
}

func rowCells(r *kvclient.Row) map[string][]string {
	out := map[string][]string{}
	if r == nil {
		return out
	}
	for _, c := range r.Cells {
		col := c.Family + ":" + string(c.Qualifier)
		out[col] = append(out[col], string(c.Value))
	}
	return out
}

// step runs one random operation.
func (w *worker) step(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	switch r := w.rng.IntN(100); {
	case r < 18:
		w.get(ctx)
	case r < 26:
		w.scan(ctx)
	case r < 46:
		w.mutateRow(ctx)
	case r < 58:
		w.batchMutate(ctx)
	case r < 70:
		w.checkAndMutate(ctx)
	case r < 80:
		w.increment(ctx)
	case r < 89:
		w.appendOp(ctx)
	case r < 99 || w.rng.IntN(10) > 0:
		w.badTimestamp(ctx)
	default:
		w.bigValue(ctx) // one operation in a thousand
	}
}

// bigValue writes a value at the largest size the server accepts to a row
// of its own (outside the model's rows) and reads it back by get and by
// scan: every value the server takes must come back.
func (w *worker) bigValue(ctx context.Context) {
	row := fmt.Sprintf("big%d", w.id)
	val := make([]byte, limits.MaxValueBytes)
	seed := byte(w.rng.IntN(256))
	for i := range val {
		val[i] = byte(i*7) + seed
	}
	f, q := splitCol(colB)
	_, err := w.tbl.MutateRow(ctx, []byte(row), kvclient.SetCell(f, q, val))
	w.h.count("big-value")
	if err != nil {
		w.checkReadable(row, "write", err)
		return
	}
	r, err := w.tbl.Get(ctx, []byte(row), kvclient.Columns(kvclient.Column{Family: f, Qualifier: q}))
	if err != nil {
		w.checkReadable(row, "get", err)
	} else if got, _ := r.Value(f, q); !bytes.Equal(got, val) {
		w.h.violate("get of %s returned %d bytes, not the %d-byte value just written", row, len(got), len(val))
	}
	sc := w.tbl.Scan(ctx, kvclient.ScanOptions{Start: []byte(row), End: []byte(row + "\x00"), Read: []kvclient.ReadOption{kvclient.Columns(kvclient.Column{Family: f, Qualifier: q})}})
	var got []byte
	for sc.Next() {
		got, _ = sc.Row().Value(f, q)
	}
	err = sc.Err()
	sc.Close()
	if err != nil {
		w.checkReadable(row, "scan", err)
	} else if !bytes.Equal(got, val) {
		w.h.violate("scan of %s returned %d bytes, not the %d-byte value just written", row, len(got), len(val))
	}
}

// checkReadable fails the run on an error that says a value the server
// accepted cannot travel back (a message size limit); timeouts under
// faults are not failures.
func (w *worker) checkReadable(row, what string, err error) {
	if status.Code(errors.Unwrap(err)) == codes.ResourceExhausted || strings.Contains(err.Error(), "larger than max") {
		w.h.violate("%s of the largest value in %s failed: %v", what, row, err)
	}
}

func (w *worker) get(ctx context.Context) {
	in, opts := w.readSpec(w.row())
	in.Desc = "kv get"
	call := w.h.now()
	r, err := w.tbl.Get(ctx, []byte(in.Row), opts...)
	ret := w.h.now()
	w.h.count("get")
	if err == nil {
		w.h.add(w.id, in, output{Read: rowCells(r)}, call, ret)
	}
}

// scan reads a random key range forward or backward, sometimes with a
// limit. Every row of the range the scan passed without returning it was
// empty at some point during the scan.
func (w *worker) scan(ctx context.Context) {
	a, b := w.row(), w.row()
	if a > b {
		a, b = b, a
	}
	spec, opts := w.readSpec("")
	o := kvclient.ScanOptions{Start: []byte(a), End: []byte(b), Reverse: w.rng.IntN(3) == 0, Read: opts, PageRows: 1 + w.rng.IntN(4)}
	if w.rng.IntN(2) == 0 {
		o.Start, o.End = nil, nil
	}
	if w.rng.IntN(3) == 0 {
		o.Limit = 1 + w.rng.IntN(5)
	}
	call := w.h.now()
	sc := w.tbl.Scan(ctx, o)
	got := map[string]map[string][]string{}
	var order []string
	for sc.Next() {
		k := string(sc.Row().Key)
		got[k] = rowCells(sc.Row())
		order = append(order, k)
	}
	err := sc.Err()
	sc.Close()
	ret := w.h.now()
	w.h.count("scan")
	if err != nil {
		return
	}
	for _, row := range w.keys.current() {
		if o.Start != nil && (row < string(o.Start) || row >= string(o.End)) {
			continue
		}
		cells, ok := got[row]
		if !ok && o.Limit > 0 && len(order) == o.Limit {
			last := order[len(order)-1]
			if (!o.Reverse && row > last) || (o.Reverse && row < last) {
				continue // beyond where the limit stopped the scan
			}
		}
		in := spec
		in.Row, in.Desc = row, fmt.Sprintf("kv scan [%q,%q) reverse=%v limit=%d", o.Start, o.End, o.Reverse, o.Limit)
		w.h.add(w.id, in, output{Read: cells}, call, ret)
	}
}

func (w *worker) mutateRow(ctx context.Context) { w.writeRow(ctx, w.row()) }

// writeRow applies a random mutation list to row.
func (w *worker) writeRow(ctx context.Context, row string) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	in := input{Row: row, Kind: opWrite, Desc: "kv mutate"}
	in.Groups = [][]mutation{w.mutations(1 + w.rng.IntN(3))}
	call := w.h.now()
	_, err := w.tbl.MutateRow(ctx, []byte(in.Row), toClient(in.Groups[0])...)
	ret := w.h.now()
	w.h.count("mutate-row")
	if rec, unknown := outcome(err); rec {
		w.h.add(w.id, in, output{Unknown: unknown}, call, ret)
	}
}

// batchMutate sends 2 to 6 entries, often several for one row; a row's
// entries apply in order, each row on its own.
func (w *worker) batchMutate(ctx context.Context) {
	n := 2 + w.rng.IntN(5)
	rows := make([]string, n)
	var entries []kvclient.RowMutation
	groups := make([][]mutation, n)
	for i := range n {
		rows[i] = w.row()
		if i > 0 && w.rng.IntN(3) == 0 {
			rows[i] = rows[w.rng.IntN(i)] // the same row again
		}
		groups[i] = w.mutations(1 + w.rng.IntN(2))
		entries = append(entries, kvclient.RowMutation{Row: []byte(rows[i]), Mutations: toClient(groups[i])})
	}
	call := w.h.now()
	errs := w.tbl.BatchMutate(ctx, entries)
	ret := w.h.now()
	w.h.count("batch-mutate")
	w.recordBatch(rows, groups, errs, call, ret, "kv batch")
}

// recordBatch turns a batch's per-entry results into one operation per
// row. Entries of one row share one RPC, so they share one fate.
func (w *worker) recordBatch(rows []string, groups [][]mutation, errs []error, call, ret int64, desc string) {
	byRow := map[string]*input{}
	unknown := map[string]bool{}
	var order []string
	for i, row := range rows {
		rec, unk := outcome(errs[i])
		if !rec {
			continue
		}
		in := byRow[row]
		if in == nil {
			in = &input{Row: row, Kind: opWrite, Desc: fmt.Sprintf("%s of %d entries", desc, len(rows))}
			byRow[row] = in
			order = append(order, row)
		}
		in.Groups = append(in.Groups, groups[i])
		unknown[row] = unknown[row] || unk
	}
	for _, row := range order {
		w.h.add(w.id, *byRow[row], output{Unknown: unknown[row]}, call, ret)
	}
}

func (w *worker) checkAndMutate(ctx context.Context) {
	in := input{Row: w.row(), Kind: opCheckAndMutate, Desc: "kv check-and-mutate"}
	in.Cond = condition{Col: pick(w.rng, []string{colA, colB, colC}), Op: int32(w.rng.IntN(8)), Value: fmt.Sprintf("v%d.%d", w.rng.IntN(6), w.rng.IntN(w.seq+1))}
	in.Groups = [][]mutation{w.mutations(1 + w.rng.IntN(2)), w.mutations(w.rng.IntN(2))}
	f, q := splitCol(in.Cond.Col)
	cond := kvclient.Condition{Family: f, Qualifier: q, Op: kvclient.CompareOp(in.Cond.Op), Value: []byte(in.Cond.Value)}
	call := w.h.now()
	matched, err := w.tbl.CheckAndMutateRow(ctx, []byte(in.Row), cond, toClient(in.Groups[0]), toClient(in.Groups[1]))
	ret := w.h.now()
	w.h.count("check-and-mutate")
	if rec, unknown := outcome(err); rec {
		w.h.add(w.id, in, output{Unknown: unknown, Matched: matched}, call, ret)
	}
}

func (w *worker) increment(ctx context.Context) {
	in := input{Row: w.row(), Kind: opIncrement, Cols: []string{colN}, Delta: w.rng.Int64N(10) - 3, Desc: "kv increment"}
	f, q := splitCol(colN)
	call := w.h.now()
	n, err := w.tbl.Increment(ctx, []byte(in.Row), f, q, in.Delta)
	ret := w.h.now()
	w.h.count("increment")
	if rec, unknown := outcome(err); rec {
		w.h.add(w.id, in, output{Unknown: unknown, Value: encodeInt(n)}, call, ret)
	}
}

func (w *worker) appendOp(ctx context.Context) {
	in := input{Row: w.row(), Kind: opAppend, Cols: []string{colL}, Suffix: w.value() + ";", Desc: "kv append"}
	f, q := splitCol(colL)
	call := w.h.now()
	v, err := w.tbl.Append(ctx, []byte(in.Row), f, q, []byte(in.Suffix))
	ret := w.h.now()
	w.h.count("append")
	if rec, unknown := outcome(err); rec {
		w.h.add(w.id, in, output{Unknown: unknown, Value: string(v)}, call, ret)
	}
}

// badTimestamp writes at a timestamp no client may choose: beyond the
// leader's clock plus the maximum offset (a leader's clock may be
// clockAhead ahead of this machine's, and a resend may reach it up to
// opTimeout later), the largest int64, or negative. The write must be
// refused as invalid, and so never applied.
func (w *worker) badTimestamp(ctx context.Context) {
	soon := time.Now().Add(clockAhead + opTimeout + 2*time.Second)
	ts := pick(w.rng, []int64{time.Now().Add(time.Hour).UnixMicro(), soon.UnixMicro(), math.MaxInt64, -7})
	row := w.row()
	f, q := splitCol(pick(w.rng, []string{colA, colZ}))
	_, err := w.tbl.MutateRow(ctx, []byte(row), kvclient.SetCellAt(f, q, []byte(w.value()), ts))
	w.h.count("bad-timestamp")
	switch {
	case err == nil:
		w.h.violate("a write to %s at timestamp %d (now %d) was accepted", row, ts, time.Now().UnixMicro())
	case errors.Is(err, kvclient.ErrInvalidArgument):
	default:
		// Unavailable or ambiguous under the faults: whether it was
		// refused is unknown; if it was applied, a later read shows a
		// value the model cannot explain.
		w.h.count("bad-timestamp-unanswered")
	}
}
