package importer

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golang/snappy"

	"github.com/shaledb/shale/internal/keys"
)

// entry is one cell on its way through the external sort. seq orders
// cells of equal key by input position (file index << 40 | record number),
// which is what --on-duplicate=last needs; line is for error messages.
type entry struct {
	key, value []byte
	seq        uint64
	line       uint32
}

func cmpEntry(a, b *entry) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// sampleBytes is how much sorted data lies between two split-point samples.
const sampleBytes = 256 << 10

// Sample is a row key seen in sorted order and the bytes of cells since the
// previous sample of the same run (split points are chosen from them).
type Sample struct {
	Key   []byte `json:"k"`
	Bytes int64  `json:"b"`
}

// sorter buffers the cells of records up to a memory budget, then sorts
// and spills them to a run file in dir. Not safe for concurrent use (one
// per parse worker).
//
// It sorts rows, not cells: the cells one record gives one row share that
// row's key prefix and the record's seq, so they are kept together as a
// rowGroup (in key order) and only the groups are sorted, by (row, seq).
// That is ten times fewer elements than cells for a ten-column row, and
// comparing row keys skips the long prefix the cells of a row share. The
// run written is the same as sorting every cell by (key, seq).
type sorter struct {
	dir    string
	prefix string
	budget int

	arena  []byte     // keys and values of the buffered cells
	cells  []cellSpan // grouped by rowGroup, in key order within a group
	groups []rowGroup
	runs   []string
	// samples of the runs written so far.
	samples []Sample
	// sampleEvery is the sorted bytes between samples (default sampleBytes).
	sampleEvery int64

	dups []dupCell // scratch of spill for rows given by several records
	one  recordCells
}

// cellSpan locates one cell in an arena. Offsets, not slices: they stay
// valid when the arena grows, and cost no pointer for the GC to scan.
type cellSpan struct {
	off        int
	klen, vlen uint32
}

// rowGroup is the cells one record gave one row: cells[first:first+n], in
// key order, whose keys all start with the row prefix
// arena[rowOff:rowOff+rowLen].
type rowGroup struct {
	rowOff   int
	seq      uint64
	first, n uint32
	rowLen   uint32
	line     uint32
}

// dupCell is a cell of a row that several buffered records gave.
type dupCell struct {
	span cellSpan
	seq  uint64
	line uint32
}

// recordCells collects the cells one Encode call emits, so a record that
// fails halfway adds nothing and the sorter sees a record's cells at once.
// Its buffers are reused from record to record.
type recordCells struct {
	data  []byte
	cells []cellSpan
}

func (r *recordCells) reset() { r.data, r.cells = r.data[:0], r.cells[:0] }

// emit is an Encoder's emit: it copies the cell.
func (r *recordCells) emit(key, value []byte) error {
	off := len(r.data)
	r.data = append(r.data, key...)
	r.data = append(r.data, value...)
	r.cells = append(r.cells, cellSpan{off: off, klen: uint32(len(key)), vlen: uint32(len(value))})
	return nil
}

func (c cellSpan) key(arena []byte) []byte {
	return arena[c.off : c.off+int(c.klen) : c.off+int(c.klen)]
}

func (c cellSpan) value(arena []byte) []byte {
	end := c.off + int(c.klen) + int(c.vlen)
	return arena[c.off+int(c.klen) : end : end]
}

func newSorter(dir, prefix string, budget int) *sorter {
	return &sorter{dir: dir, prefix: prefix, budget: max(budget, 1<<20), sampleEvery: sampleBytes}
}

// What a buffered cell and a row group cost besides the cell's bytes,
// counted against the budget (the structs, with room for slice growth).
const (
	cellOverhead  = 24
	groupOverhead = 48
)

// add buffers one cell as a record of its own.
func (s *sorter) add(key, value []byte, seq uint64, line uint32) error {
	s.one.reset()
	_ = s.one.emit(key, value)
	_, err := s.addRecord(&s.one, seq, line)
	return err
}

// addRecord buffers the cells of one record (seq orders records; line is
// for messages) and returns their bytes. It may spill first.
func (s *sorter) addRecord(rc *recordCells, seq uint64, line uint32) (int64, error) {
	if len(rc.cells) == 0 {
		return 0, nil
	}
	used := len(s.arena) + len(s.cells)*cellOverhead + len(s.groups)*groupOverhead
	if len(s.groups) > 0 && used+len(rc.data)+len(rc.cells)*(cellOverhead+groupOverhead) > s.budget {
		if err := s.spill(); err != nil {
			return 0, err
		}
	}
	if cap(s.arena) == 0 {
		s.arena = make([]byte, 0, s.budget)
	}
	// Encoders emit a record's cells in column order, which need not be
	// key order: sort the few cells of the record (insertion sort; a
	// no-op pass when they are in order already).
	cs := rc.cells
	for i := 1; i < len(cs); i++ {
		for k := i; k > 0 && bytes.Compare(cs[k].key(rc.data), cs[k-1].key(rc.data)) < 0; k-- {
			cs[k], cs[k-1] = cs[k-1], cs[k]
		}
	}
	base := len(s.arena)
	s.arena = append(s.arena, rc.data...)
	var row []byte
	for _, c := range cs {
		c.off += base
		key := c.key(s.arena)
		if row != nil && bytes.HasPrefix(key, row) {
			// The row encoding is prefix-free: a key that starts with
			// this row's prefix belongs to this row.
			s.groups[len(s.groups)-1].n++
		} else {
			r, err := keys.RowPrefix(key)
			if err != nil {
				return 0, fmt.Errorf("importer: encoder emitted a bad cell key: %w", err)
			}
			row = r
			s.groups = append(s.groups, rowGroup{rowOff: c.off, rowLen: uint32(len(r)), seq: seq, line: line, first: uint32(len(s.cells)), n: 1})
		}
		s.cells = append(s.cells, c)
	}
	return int64(len(rc.data)), nil
}

func (s *sorter) rowOf(g *rowGroup) []byte {
	return s.arena[g.rowOff : g.rowOff+int(g.rowLen)]
}

// spill writes the buffered cells, sorted by (key, seq), as one run
// (snappy-framed).
func (s *sorter) spill() error {
	if len(s.groups) == 0 {
		return nil
	}
	slices.SortFunc(s.groups, func(a, b rowGroup) int {
		if c := bytes.Compare(s.rowOf(&a), s.rowOf(&b)); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	// Runs are snappy-framed unless a sample of the values does not
	// shrink by an eighth (random values, or compressed input): then
	// compressing and decompressing them costs more CPU than the few
	// bytes of repeated key parts it saves are worth.
	name := fmt.Sprintf("%s-%04d.run", s.prefix, len(s.runs))
	compress := compressible(s.valueSample())
	if !compress {
		name = fmt.Sprintf("%s-%04d%s", s.prefix, len(s.runs), rawRunSuffix)
	}
	path := filepath.Join(s.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var w io.Writer = f
	var sw *snappy.Writer
	if compress {
		sw = snappy.NewBufferedWriter(f)
		w = sw
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var hdr [4 * binary.MaxVarintLen64]byte
	var since int64
	var lastKey []byte
	write := func(c cellSpan, seq uint64, line uint32) {
		key, value := c.key(s.arena), c.value(s.arena)
		n := binary.PutUvarint(hdr[:], uint64(len(key)))
		n += binary.PutUvarint(hdr[n:], uint64(len(value)))
		n += binary.PutUvarint(hdr[n:], seq)
		n += binary.PutUvarint(hdr[n:], uint64(line))
		bw.Write(hdr[:n])
		bw.Write(key)
		bw.Write(value)
		since += int64(len(key) + len(value))
		if since >= s.sampleEvery || lastKey == nil {
			s.samples = append(s.samples, Sample{Key: append([]byte(nil), key...), Bytes: since})
			since = 0
		}
		lastKey = key
	}
	for i := 0; i < len(s.groups); {
		g := &s.groups[i]
		j := i + 1
		for j < len(s.groups) && bytes.Equal(s.rowOf(&s.groups[j]), s.rowOf(g)) {
			j++
		}
		if j == i+1 {
			for _, c := range s.cells[g.first : g.first+g.n] {
				write(c, g.seq, g.line)
			}
			i = j
			continue
		}
		// Several records gave this row (a duplicate, or one record's
		// cells added one by one): interleave their cells by (key, seq),
		// as the merge and the duplicate rule expect.
		s.dups = s.dups[:0]
		for _, g := range s.groups[i:j] {
			for _, c := range s.cells[g.first : g.first+g.n] {
				s.dups = append(s.dups, dupCell{span: c, seq: g.seq, line: g.line})
			}
		}
		slices.SortStableFunc(s.dups, func(a, b dupCell) int {
			if c := bytes.Compare(a.span.key(s.arena), b.span.key(s.arena)); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		for _, d := range s.dups {
			write(d.span, d.seq, d.line)
		}
		i = j
	}
	if since > 0 {
		s.samples = append(s.samples, Sample{Key: append([]byte(nil), lastKey...), Bytes: since})
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if sw != nil {
		if err := sw.Close(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.runs = append(s.runs, name)
	s.cells, s.groups, s.arena = s.cells[:0], s.groups[:0], s.arena[:0]
	return nil
}

// runReader reads one run file in order.
type runReader struct {
	f   *os.File
	r   *bufio.Reader
	cur entry
	buf []byte
}

func openRun(path string) (*runReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader = f
	if !strings.HasSuffix(path, rawRunSuffix) {
		r = snappy.NewReader(f)
	}
	return &runReader{f: f, r: bufio.NewReaderSize(r, 256<<10)}, nil
}

// valueSample returns up to 64 KiB of the buffered values.
func (s *sorter) valueSample() []byte {
	var out []byte
	for _, c := range s.cells {
		if len(out) >= 64<<10 {
			break
		}
		out = append(out, c.value(s.arena)...)
	}
	return out
}

// rawRunSuffix names a run written without compression.
const rawRunSuffix = ".raw.run"

// compressible reports whether snappy shrinks a sample of data (up to 64
// KiB) by at least an eighth.
func compressible(data []byte) bool {
	data = data[:min(len(data), 64<<10)]
	return len(snappy.Encode(nil, data)) <= len(data)-len(data)/8
}

// next reads the next entry into rr.cur; io.EOF at the end.
func (rr *runReader) next() error {
	kl, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return err // io.EOF at a record boundary
	}
	vl, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return corruptRun(rr.f.Name(), err)
	}
	seq, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return corruptRun(rr.f.Name(), err)
	}
	line, err := binary.ReadUvarint(rr.r)
	if err != nil {
		return corruptRun(rr.f.Name(), err)
	}
	rr.buf = slices.Grow(rr.buf[:0], int(kl+vl))[:kl+vl]
	if _, err := io.ReadFull(rr.r, rr.buf); err != nil {
		return corruptRun(rr.f.Name(), err)
	}
	rr.cur = entry{key: rr.buf[:kl:kl], value: rr.buf[kl:], seq: seq, line: uint32(line)}
	return nil
}

func corruptRun(name string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("importer: sorted run %s is damaged (%v); remove the work directory and start again", name, err)
}

// merger yields the entries of several runs in (key, seq) order.
type merger struct {
	h mergeHeap
}

type mergeHeap []*runReader

func (h mergeHeap) Len() int           { return len(h) }
func (h mergeHeap) Less(i, j int) bool { return cmpEntry(&h[i].cur, &h[j].cur) < 0 }
func (h mergeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newMerger(dir string, runs []string) (*merger, error) {
	m := &merger{}
	for _, name := range runs {
		rr, err := openRun(filepath.Join(dir, name))
		if err != nil {
			m.close()
			return nil, err
		}
		if err := rr.next(); err == io.EOF {
			rr.f.Close()
			continue
		} else if err != nil {
			rr.f.Close()
			m.close()
			return nil, err
		}
		m.h = append(m.h, rr)
	}
	heap.Init(&m.h)
	return m, nil
}

// next returns the smallest remaining entry (valid until the next call),
// or nil at the end.
func (m *merger) next(prev **runReader) (*entry, error) {
	if p := *prev; p != nil {
		// Advance the run the previous entry came from.
		if err := p.next(); err == io.EOF {
			heap.Pop(&m.h)
			p.f.Close()
		} else if err != nil {
			return nil, err
		} else {
			heap.Fix(&m.h, 0)
		}
		*prev = nil
	}
	if len(m.h) == 0 {
		return nil, nil
	}
	*prev = m.h[0]
	return &m.h[0].cur, nil
}

func (m *merger) close() {
	for _, rr := range m.h {
		rr.f.Close()
	}
	m.h = nil
}

// rowStream groups merged cells by row and applies the duplicate rule: a
// row fed by more than one input record is an error (onDupLast false) or
// keeps only the cells of its last record.
type rowStream struct {
	m          *merger
	prev       *runReader
	peek       *entry
	onDupLast  bool
	dupErr     func(row []byte, a, b entry) error
	rowOf      func(key []byte) ([]byte, error)
	cells      []entry
	arena      []byte
	duplicates int64
}

// nextRow returns the cells of the next row (valid until the next call),
// or nil at the end.
func (rs *rowStream) nextRow() ([]entry, error) {
	rs.cells, rs.arena = rs.cells[:0], rs.arena[:0]
	if rs.peek == nil {
		e, err := rs.m.next(&rs.prev)
		if err != nil || e == nil {
			return nil, err
		}
		rs.peek = e
	}
	row, err := rs.rowOf(rs.peek.key)
	if err != nil {
		return nil, err
	}
	rowKey := append([]byte(nil), row...)
	for rs.peek != nil {
		r, err := rs.rowOf(rs.peek.key)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(r, rowKey) {
			break
		}
		// Copy: the run's buffer is reused by the next read. Keys and
		// values are sliced out of the arena once the row is complete
		// (appending may move it).
		rs.arena = append(rs.arena, rs.peek.key...)
		rs.arena = append(rs.arena, rs.peek.value...)
		rs.cells = append(rs.cells, entry{seq: rs.peek.seq, line: rs.peek.line, key: rs.peek.key[:len(rs.peek.key):len(rs.peek.key)], value: rs.peek.value})
		e, err := rs.m.next(&rs.prev)
		if err != nil {
			return nil, err
		}
		rs.peek = e
	}
	off := 0
	for i := range rs.cells {
		kl, vl := len(rs.cells[i].key), len(rs.cells[i].value)
		rs.cells[i].key = rs.arena[off : off+kl : off+kl]
		rs.cells[i].value = rs.arena[off+kl : off+kl+vl : off+kl+vl]
		off += kl + vl
	}
	first, last := rs.cells[0].seq, rs.cells[0].seq
	for _, c := range rs.cells {
		first, last = min(first, c.seq), max(last, c.seq)
	}
	if first == last {
		return rs.cells, nil
	}
	rs.duplicates++
	if !rs.onDupLast {
		var a, b entry
		for _, c := range rs.cells {
			if c.seq == first {
				a = c
			}
			if c.seq == last {
				b = c
			}
		}
		return nil, rs.dupErr(rowKey, a, b)
	}
	kept := rs.cells[:0]
	for _, c := range rs.cells {
		if c.seq == last {
			kept = append(kept, c)
		}
	}
	rs.cells = kept
	return kept, nil
}
