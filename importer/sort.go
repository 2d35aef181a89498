package importer

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/golang/snappy"
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

// sorter buffers entries up to a memory budget, then sorts and spills them
// to a run file in dir. Not safe for concurrent use (one per reader).
type sorter struct {
	dir    string
	prefix string
	budget int

	arena   []byte
	entries []entry
	runs    []string
	samples []Sample
	// sampleEvery is the sorted bytes between samples (default sampleBytes).
	sampleEvery int64
}

func newSorter(dir, prefix string, budget int) *sorter {
	return &sorter{dir: dir, prefix: prefix, budget: max(budget, 1<<20), sampleEvery: sampleBytes}
}

// entryOverhead is what one buffered entry costs besides its bytes (the
// entry struct), counted against the budget.
const entryOverhead = 64

func (s *sorter) add(key, value []byte, seq uint64, line uint32) error {
	if used := len(s.arena) + len(s.entries)*entryOverhead; len(s.entries) > 0 && used+len(key)+len(value)+entryOverhead > s.budget {
		if err := s.spill(); err != nil {
			return err
		}
	}
	if cap(s.arena) == 0 {
		s.arena = make([]byte, 0, s.budget)
	}
	off := len(s.arena)
	s.arena = append(s.arena, key...)
	s.arena = append(s.arena, value...)
	e := entry{key: s.arena[off : off+len(key) : off+len(key)], value: s.arena[off+len(key) : len(s.arena) : len(s.arena)], seq: seq, line: line}
	s.entries = append(s.entries, e)
	return nil
}

// spill writes the buffered entries, sorted, as one run (snappy-framed).
func (s *sorter) spill() error {
	if len(s.entries) == 0 {
		return nil
	}
	slices.SortFunc(s.entries, func(a, b entry) int { return cmpEntry(&a, &b) })
	name := fmt.Sprintf("%s-%04d.run", s.prefix, len(s.runs))
	path := filepath.Join(s.dir, name)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	sw := snappy.NewBufferedWriter(f)
	bw := bufio.NewWriterSize(sw, 256<<10)
	var hdr [4 * binary.MaxVarintLen64]byte
	var since int64
	for i := range s.entries {
		e := &s.entries[i]
		n := binary.PutUvarint(hdr[:], uint64(len(e.key)))
		n += binary.PutUvarint(hdr[n:], uint64(len(e.value)))
		n += binary.PutUvarint(hdr[n:], e.seq)
		n += binary.PutUvarint(hdr[n:], uint64(e.line))
		bw.Write(hdr[:n])
		bw.Write(e.key)
		bw.Write(e.value)
		since += int64(len(e.key) + len(e.value))
		if since >= s.sampleEvery || i == 0 {
			s.samples = append(s.samples, Sample{Key: append([]byte(nil), e.key...), Bytes: since})
			since = 0
		}
	}
	if since > 0 {
		s.samples = append(s.samples, Sample{Key: append([]byte(nil), s.entries[len(s.entries)-1].key...), Bytes: since})
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := sw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.runs = append(s.runs, name)
	s.entries = s.entries[:0]
	s.arena = s.arena[:0]
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
	return &runReader{f: f, r: bufio.NewReaderSize(snappy.NewReader(f), 256<<10)}, nil
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
