package importer

// The parallel parse (cutter, batches, workers, ordered rejects) and the
// row-grouped sort must give what one serial pass gives: the same records,
// the same cells in the same order, the same errors at the same places.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/metapb"
)

// withBatchBytes sets the cutter's batch size for one test.
// oneBatch is a batch size no test input reaches: the whole input is one
// batch. (Not 1 GiB: the cutter reads up to a batch at once, so each
// parse allocated that much, and the importer's tests ran out of memory
// under -race.)
const oneBatch = 4 << 20

func withBatchBytes(t *testing.T, n int) {
	old := cutBatchBytes
	cutBatchBytes = n
	t.Cleanup(func() { cutBatchBytes = old })
}

// awkwardCSV makes a CSV (header id,name,score,note) whose fields hold
// delimiters, doubled quotes and newlines, with duplicate ids, \r\n line
// ends, empty lines, and malformed records of every kind csv reports: a
// wrong field count, a bare quote, a quote followed by junk, an empty row
// key (an encoder error); unterminated, when asked, at the very end.
func awkwardCSV(rng *rand.Rand, n int, unterminated bool) string {
	var b strings.Builder
	b.WriteString("id,name,score,note\n")
	field := func() string {
		switch rng.IntN(8) {
		case 0:
			return `"a, ""quoted"" one"`
		case 1:
			return "\"two\nlines\""
		case 2:
			return "\"crlf\r\nin a field, \"\"and\"\"\n\nblank lines\""
		case 3:
			return `""`
		case 4:
			return ""
		}
		return fmt.Sprintf("v%d", rng.IntN(1000))
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("k%03d", rng.IntN(n))
		eol := "\n"
		if rng.IntN(5) == 0 {
			eol = "\r\n"
		}
		switch rng.IntN(25) {
		case 0:
			fmt.Fprintf(&b, "%s,%s%s", id, field(), eol) // too few fields
		case 1:
			fmt.Fprintf(&b, "%s,ba\"re,%s,%s%s", id, field(), field(), eol)
		case 2:
			fmt.Fprintf(&b, "%s,\"closed\"junk,%s,%s%s", id, field(), field(), eol)
		case 3:
			fmt.Fprintf(&b, ",%s,%s,%s%s", field(), field(), field(), eol) // empty key
		case 4:
			b.WriteString(eol)
		default:
			fmt.Fprintf(&b, "%s,%s,%s,%s%s", id, field(), field(), field(), eol)
		}
	}
	if unterminated {
		b.WriteString("k999,\"never closed,\n1,2\n")
	}
	return b.String()
}

type parsed struct {
	cols []string
	rows []string // "line: v1|v2|..."
	bad  []string // err + raw
}

// parseBatches cuts in into batches and parses them: the first ones until
// the columns are bound, then the rest in reverse order with forked
// parsers (as workers would, in any order). Rows and errors are put back
// in input order by line.
func parseBatches(t *testing.T, in string, o SourceOptions) parsed {
	t.Helper()
	var out parsed
	var lines []int
	var badLines []int
	row := func(r *Record) error {
		var vs []string
		for _, v := range r.Values {
			if v.Null {
				vs = append(vs, "<NULL>")
			} else {
				vs = append(vs, string(v.Bytes))
			}
		}
		if len(vs) > 0 && vs[0] == "" {
			return &FieldError{Field: 0, Err: fmt.Errorf("row key is empty")}
		}
		out.rows = append(out.rows, fmt.Sprintf("%d: %s", r.Line, strings.Join(vs, "|")))
		lines = append(lines, r.Line)
		return nil
	}
	bad := func(e *InputError) error {
		out.bad = append(out.bad, e.Error()+"\t"+e.Raw)
		badLines = append(badLines, e.Line)
		return nil
	}
	c := newCutter(strings.NewReader(in), o)
	p := &sourceParser{name: "in", o: o, row: row, bad: bad, bind: func(c []string) error { out.cols = c; return nil }}
	var rest []*batch
	for {
		b, err := c.next(nil)
		require.NoError(t, err)
		if b == nil {
			break
		}
		if !p.bound {
			require.NoError(t, p.parse(b))
			continue
		}
		rest = append(rest, b)
	}
	require.NoError(t, p.finish())
	q := p.fork(row, bad)
	for i := len(rest) - 1; i >= 0; i-- {
		require.NoError(t, q.parse(rest[i]))
	}
	sortBy(out.rows, lines)
	sortBy(out.bad, badLines)
	return out
}

// sortBy sorts s by key (stable; keys are distinct lines here).
func sortBy(s []string, key []int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key[j] < key[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
			key[j], key[j-1] = key[j-1], key[j]
		}
	}
}

// TestCutterBatchesParseLikeOnePiece: every batch size (down to one byte,
// so boundaries fall inside quoted fields, after \r, between "") gives the
// records and errors, with their lines and columns, of one batch.
func TestCutterBatchesParseLikeOnePiece(t *testing.T) {
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	for trial := 0; trial < 6; trial++ {
		in := awkwardCSV(rng, 150, trial%2 == 1)
		// At least one bad record whatever the seed: a bare quote.
		in = strings.Replace(in, "\n", "\nkbad,ba\"re,x,y\n", 1)
		o := SourceOptions{Format: CSV, Header: true}
		if trial == 2 {
			o.Header = false
		}
		if trial == 3 {
			in = strings.ReplaceAll(in, ",", "\t")
			o.Format = TSV
		}
		if trial == 4 {
			in = strings.ReplaceAll(in, ",", "§") // a multi-byte delimiter
			o.Delimiter = '§'
		}
		withBatchBytes(t, oneBatch)
		want := parseBatches(t, in, o)
		require.NotEmpty(t, want.rows)
		require.NotEmpty(t, want.bad)
		for _, size := range []int{1, 2, 7, 33, 256, 4096} {
			cutBatchBytes = size
			got := parseBatches(t, in, o)
			require.Equal(t, want, got, "trial %d, batches of %d bytes", trial, size)
		}
	}
}

// TestCutterJSONL: JSONL batches end at newlines; lines stay exact.
func TestCutterJSONL(t *testing.T) {
	in := "{\"k\":\"a\",\"n\":1}\n\n{\"k\":\"b\",\"n\":[1]}\nnot json\r\n{\"k\":\"c\"}"
	withBatchBytes(t, oneBatch)
	want := parseBatches(t, in, SourceOptions{Format: JSONL})
	require.Equal(t, []string{"1: a|1", "5: c|<NULL>"}, want.rows)
	require.Len(t, want.bad, 2)
	for _, size := range []int{1, 5, 20} {
		cutBatchBytes = size
		require.Equal(t, want, parseBatches(t, in, SourceOptions{Format: JSONL}), "batches of %d bytes", size)
	}
}

// parseJob runs the parse phase of a raw import of the given files (no
// cluster: the table schema and timestamp are made up) and returns the
// merged rows, the reject file and the job's error.
type parseOutcome struct {
	rows    []string // "row: qual=value ..." in merged order
	rejects string
	err     string
	inRows  int64
	dupErr  string
}

func parseJob(t *testing.T, inputs []string, maxErrors int64, onDup string) parseOutcome {
	t.Helper()
	work := t.TempDir()
	empty := ""
	o := Options{
		Table: "t", Inputs: inputs, WorkDir: work, PD: []string{"unused"},
		Source: SourceOptions{Format: CSV, Header: true, Null: &empty},
		RowKey: "id", MaxErrors: maxErrors, OnDuplicate: onDup,
		Parallel: 1, // files one after the other: rejects in a fixed order
		Mappings: []Mapping{{Column: "note", Family: "g", Qualifier: "note"}, {Column: "name", Family: "f", Qualifier: "name"}, {Column: "score", Family: "f", Qualifier: "score"}},
	}
	o = o.EnsureDefaults()
	require.NoError(t, o.Validate())
	files, err := listInputs(inputs)
	require.NoError(t, err)
	j := &job{o: o, files: files, cp: &checkpoint{Timestamp: 7}, stopper: stop.New(),
		schema: &metapb.TableSchema{TableId: 9, Name: "t", Families: []*metapb.FamilySchema{{Name: "f"}, {Name: "g"}}}}
	defer func() { require.NoError(t, j.stopper.Stop(context.Background())) }()
	j.phase.Store("start")
	var out parseOutcome
	if err := j.parse(context.Background()); err != nil {
		out.err = strings.ReplaceAll(err.Error(), work, "WORK")
	}
	if data, err := os.ReadFile(o.RejectFile); err == nil {
		out.rejects = string(data)
	}
	if out.err != "" {
		return out // workers may have parsed past the failing row
	}
	out.inRows = j.inputRows.Load()
	m, err := newMerger(work, j.cp.Runs)
	require.NoError(t, err)
	defer m.close()
	rs := &rowStream{m: m, onDupLast: onDup == "last", rowOf: keys.RowPrefix,
		dupErr: func(row []byte, a, b entry) error {
			return fmt.Errorf("duplicate %q: %s:%d and %s:%d", row, j.fileName(a.seq), a.line, j.fileName(b.seq), b.line)
		}}
	var prev []byte
	for {
		cells, err := rs.nextRow()
		if err != nil {
			out.dupErr = err.Error()
			break
		}
		if cells == nil {
			break
		}
		var b strings.Builder
		for _, c := range cells {
			require.True(t, prev == nil || bytes.Compare(prev, c.key) < 0, "cells in key order")
			prev = append(prev[:0], c.key...)
			d, err := keys.DecodeCellKey(c.key)
			require.NoError(t, err)
			fmt.Fprintf(&b, "%s/%s:%s=%q@%d ", d.Row, d.Family, d.Qualifier, c.value, c.line)
		}
		out.rows = append(out.rows, b.String())
	}
	return out
}

// TestParallelParseMatchesSerial: the whole parse phase with tiny batches
// and four workers against one batch and one worker: the same merged
// cells, reject file, row count, duplicate report and --max-errors error.
func TestParallelParseMatchesSerial(t *testing.T) {
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	var inputs []string
	for i := 0; i < 2; i++ {
		path := filepath.Join(dir, fmt.Sprintf("in%d.csv", i))
		require.NoError(t, os.WriteFile(path, []byte(awkwardCSV(rng, 400, false)), 0o644))
		inputs = append(inputs, path)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, tc := range []struct {
		maxErrors int64
		onDup     string
	}{{1 << 20, "last"}, {1 << 20, "error"}, {5, "last"}, {0, "last"}} {
		withBatchBytes(t, oneBatch)
		runtime.GOMAXPROCS(1)
		want := parseJob(t, inputs, tc.maxErrors, tc.onDup)
		runtime.GOMAXPROCS(4)
		for _, size := range []int{13, 300} {
			cutBatchBytes = size
			got := parseJob(t, inputs, tc.maxErrors, tc.onDup)
			require.Equal(t, want, got, "max-errors %d, on-duplicate %s, batches of %d bytes", tc.maxErrors, tc.onDup, size)
		}
		switch {
		case tc.maxErrors == 0:
			require.Regexp(t, `in0.csv:\d+:\d+: `, want.err)
		case tc.maxErrors == 5:
			require.Contains(t, want.err, "more than --max-errors=5 bad rows")
			require.Equal(t, 5, strings.Count(want.rejects, dir), "rejects (each names its file)")
		case tc.onDup == "error":
			require.Empty(t, want.err)
			require.Regexp(t, `duplicate .*in\d.csv:\d+ and .*in\d.csv:\d+`, want.dupErr)
		default:
			require.Empty(t, want.err+want.dupErr)
			require.Greater(t, len(want.rows), 100)
			require.Greater(t, strings.Count(want.rejects, dir), 20)
		}
	}
}

// TestSorterRowGroups: cells added a record at a time, in any column
// order, some rows given by several records (in one buffer and across
// runs), come out of the merge exactly as sorting every cell by (key,
// seq) would put them.
func TestSorterRowGroups(t *testing.T) {
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	dir := t.TempDir()
	s := newSorter(dir, "g", 1)
	type cell struct {
		key, val string
		seq      uint64
	}
	var want []cell
	quals := []string{"c", "a", "b", "\x00z", "a\x00"}
	var rc recordCells
	for seq := uint64(0); seq < 6000; seq++ {
		row := []byte(fmt.Sprintf("r%d", rng.IntN(3000)))
		if rng.IntN(10) == 0 {
			row = append(row, 0, 'x') // escaped in the key
		}
		rc.reset()
		for _, qi := range rng.Perm(len(quals))[:1+rng.IntN(len(quals))] {
			k := keys.CellKey(1, row, "f", []byte(quals[qi]), 7)
			v := strings.Repeat("v", rng.IntN(400)) + fmt.Sprint(seq)
			require.NoError(t, rc.emit(k, []byte(v)))
			want = append(want, cell{string(k), v, seq})
		}
		_, err := s.addRecord(&rc, seq, uint32(seq))
		require.NoError(t, err)
	}
	require.NoError(t, s.spill())
	require.Greater(t, len(s.runs), 2)
	sortCells := func(a, b cell) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.seq) - int(b.seq)
	}
	for i := 1; i < len(want); i++ { // insertion sort: stable and simple
		for j := i; j > 0 && sortCells(want[j], want[j-1]) < 0; j-- {
			want[j], want[j-1] = want[j-1], want[j]
		}
	}
	got := mergedEntries(t, dir, s.runs)
	require.Len(t, got, len(want))
	for i, e := range got {
		require.Equal(t, want[i], cell{string(e.key), string(e.value), e.seq}, "cell %d", i)
	}
}
