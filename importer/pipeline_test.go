package importer

// Unit tests of the pieces that need no cluster: input parsing and the
// external sort.

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
)

func parseAll(t *testing.T, in string, o SourceOptions) ([]string, [][]string, []*InputError) {
	t.Helper()
	var cols []string
	var rows [][]string
	var bad []*InputError
	err := readSource("in", strings.NewReader(in), o,
		func(c []string) error { cols = c; return nil },
		func(r *Record) error {
			var row []string
			for _, v := range r.Values {
				if v.Null {
					row = append(row, "<NULL>")
				} else {
					row = append(row, string(v.Bytes))
				}
			}
			rows = append(rows, row)
			return nil
		},
		func(e *InputError) error { bad = append(bad, e); return nil })
	require.NoError(t, err)
	return cols, rows, bad
}

func TestReadSource(t *testing.T) {
	null := `\N`
	cols, rows, bad := parseAll(t, "a,b\n1,\"x, \"\"y\"\"\"\n2,\\N\n3\n", SourceOptions{Format: CSV, Header: true, Null: &null})
	require.Equal(t, []string{"a", "b"}, cols)
	require.Equal(t, [][]string{{"1", `x, "y"`}, {"2", "<NULL>"}}, rows)
	require.Len(t, bad, 1)
	require.Equal(t, 4, bad[0].Line)
	require.Contains(t, bad[0].Error(), "in:4:1: record has 1 fields; want 2")

	// --columns overrides the header; TSV splits on tabs.
	cols, rows, _ = parseAll(t, "h1\th2\nk\tv w\n", SourceOptions{Format: TSV, Header: true, Columns: []string{"key", "val"}})
	require.Equal(t, []string{"key", "val"}, cols)
	require.Equal(t, [][]string{{"k", "v w"}}, rows)

	// No header, no names: columns are 1, 2, ...; a custom delimiter.
	cols, rows, _ = parseAll(t, "k|v\n", SourceOptions{Format: CSV, Delimiter: '|'})
	require.Equal(t, []string{"1", "2"}, cols)
	require.Equal(t, [][]string{{"k", "v"}}, rows)

	// JSONL: columns from the first object (sorted), numbers and booleans
	// as written, null and missing keys as NULL.
	cols, rows, bad = parseAll(t, "{\"k\":\"a\",\"n\":1.50,\"b\":true}\n\n{\"k\":\"b\",\"n\":null}\nnot json\n", SourceOptions{Format: JSONL})
	require.Equal(t, []string{"b", "k", "n"}, cols)
	require.Equal(t, [][]string{{"true", "a", "1.50"}, {"<NULL>", "b", "<NULL>"}}, rows)
	require.Len(t, bad, 1)
	require.Equal(t, 4, bad[0].Line)
	require.Equal(t, 2, bad[0].Column)
}

// TestExternalSort spills many small runs and checks the merge yields
// every cell in order, and the duplicate rule per row.
func TestExternalSort(t *testing.T) {
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 9))
	dir := t.TempDir()
	s := newSorter(dir, "t", 1) // the 1 MiB floor: several runs below
	type cell struct{ key, val string }
	var want []cell
	val := strings.Repeat("v", 300)
	for i := 0; i < 12000; i++ {
		row := fmt.Sprintf("r%06d", rng.IntN(1_000_000_000))
		k := keys.CellKey(1, []byte(row+fmt.Sprint(i)), "f", []byte("q"), 7)
		require.NoError(t, s.add(k, []byte(val), uint64(i), uint32(i+1)))
		want = append(want, cell{string(k), val})
	}
	require.NoError(t, s.spill())
	require.Greater(t, len(s.runs), 2, "the budget forced spills")
	sort.Slice(want, func(a, b int) bool { return want[a].key < want[b].key })
	got := mergedEntries(t, dir, s.runs)
	require.Len(t, got, len(want))
	for i, e := range got {
		require.Equal(t, want[i].key, string(e.key), "cell %d", i)
		require.Equal(t, want[i].val, string(e.value))
	}

	// Duplicates: row "dup" from records 1 and 3 (two runs).
	dir = t.TempDir()
	s = newSorter(dir, "d", 1)
	add := func(row, qual, v string, seq uint64) {
		require.NoError(t, s.add(keys.CellKey(1, []byte(row), "f", []byte(qual), 7), []byte(v), seq, uint32(seq+1)))
	}
	add("dup", "a", "first-a", 1)
	add("dup", "b", "first-b", 1)
	add("one", "a", "x", 2)
	require.NoError(t, s.spill())
	add("dup", "a", "last-a", 3)
	require.NoError(t, s.spill())
	rows := func(last bool) ([]string, error) {
		m, err := newMerger(dir, s.runs)
		require.NoError(t, err)
		defer m.close()
		rs := &rowStream{m: m, onDupLast: last, rowOf: keys.RowPrefix,
			dupErr: func(row []byte, a, b entry) error { return fmt.Errorf("dup at lines %d and %d", a.line, b.line) }}
		var out []string
		for {
			cells, err := rs.nextRow()
			if err != nil || cells == nil {
				return out, err
			}
			var b bytes.Buffer
			for _, c := range cells {
				d, err := keys.DecodeCellKey(c.key)
				require.NoError(t, err)
				fmt.Fprintf(&b, "%s/%s=%s ", d.Row, d.Qualifier, c.value)
			}
			out = append(out, strings.TrimSpace(b.String()))
		}
	}
	_, err := rows(false)
	require.ErrorContains(t, err, "dup at lines 2 and 4")
	kept, err := rows(true)
	require.NoError(t, err)
	require.Equal(t, []string{"dup/a=last-a", "one/a=x"}, kept)
}

// mergedEntries reads runs back through the k-way merge, in merge order
// (keys and values copied).
func mergedEntries(t *testing.T, dir string, runs []string) []entry {
	t.Helper()
	m, err := newMerger(dir, runs)
	require.NoError(t, err)
	defer m.close()
	var out []entry
	var prev *runReader
	for {
		e, err := m.next(&prev)
		require.NoError(t, err)
		if e == nil {
			return out
		}
		out = append(out, entry{key: bytes.Clone(e.key), value: bytes.Clone(e.value), seq: e.seq, line: e.line})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// An unterminated quote makes the rest of the input one field: reading
// fails at the quote, having read about one record limit of the input,
// not all of it. So does a record without an end.
func TestUnterminatedQuoteIsBounded(t *testing.T) {
	old := maxRecordBytes
	maxRecordBytes = 64 << 10
	t.Cleanup(func() { maxRecordBytes = old })
	const rest = 16 << 20 // much more than a record, or a batch
	for _, tc := range []struct {
		name, head string
		o          SourceOptions
		want       string
		lines      bool // the filler is short lines (else one endless line)
	}{
		{"quote", "a,b\n1,x\n2,y\n3,\"open", SourceOptions{Format: CSV, Header: true}, "in:4:3: unterminated quote", true},
		{"quoteAfterBlank", "1,x\n\n\"a\"\"b\",\"c\n", SourceOptions{Format: CSV}, "in:3:8: unterminated quote", true},
		{"line", "a,b\n1,x\n2", SourceOptions{Format: CSV, Header: true}, "in:3:1: record exceeds 65536 bytes", false},
		{"jsonl", "{\"k\":1}\n{\"k\":", SourceOptions{Format: JSONL}, "in:2:1: record exceeds 65536 bytes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filler := strings.Repeat("z,zzzzzz ", 1<<10) // no quote, no newline
			if tc.lines {
				filler = strings.Repeat("z,zz\n", 1<<10)
			}
			body := io.LimitReader(&repeatReader{s: filler}, rest)
			in := &countingReader{r: io.MultiReader(strings.NewReader(tc.head), body)}
			err := readSource("in", in, tc.o, func([]string) error { return nil },
				func(*Record) error { return nil }, func(*InputError) error { return nil })
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			var ie *InputError
			require.ErrorAs(t, err, &ie)
			require.Less(t, in.n, 4<<20, "read %d bytes of the input before failing", in.n)
		})
	}
}

// repeatReader repeats s forever.
type repeatReader struct {
	s   string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}
