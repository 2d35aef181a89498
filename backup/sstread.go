package backup

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2/sstable"
)

// cellIter walks the cells of a sequence of non-overlapping files in key
// order, one file in memory at a time, limited to the cells whose row key
// lies in [start, end). Every file is checked against the manifest before
// it is parsed.
type cellIter struct {
	ctx        context.Context
	st         *storage
	files      []*File
	start, end []byte
	rowOf      func([]byte) ([]byte, error)

	rd   *sstable.Reader
	it   sstable.Iterator
	file *File
	key  []byte
	val  []byte
	err  error
	read int64 // bytes of files read
}

func newCellIter(ctx context.Context, st *storage, files []*File, start, end []byte, rowOf func([]byte) ([]byte, error)) *cellIter {
	files = append([]*File(nil), files...)
	sort.Slice(files, func(a, b int) bool { return bytes.Compare(files[a].Smallest, files[b].Smallest) < 0 })
	return &cellIter{ctx: ctx, st: st, files: files, start: start, end: end, rowOf: rowOf}
}

// next moves to the next cell; false at the end or on an error (err).
func (c *cellIter) next() bool {
	for c.err == nil {
		if c.it == nil {
			if len(c.files) == 0 {
				return false
			}
			c.open(c.files[0])
			c.files = c.files[1:]
			if c.err != nil {
				return false
			}
			kv := c.it.First()
			if !c.take(kv != nil, func() ([]byte, []byte, error) { v, _, err := kv.Value(nil); return kv.K.UserKey, v, err }) {
				continue
			}
		} else {
			kv := c.it.Next()
			if !c.take(kv != nil, func() ([]byte, []byte, error) { v, _, err := kv.Value(nil); return kv.K.UserKey, v, err }) {
				continue
			}
		}
		row, err := c.rowOf(c.key)
		if err != nil {
			c.err = &CorruptFileError{URL: c.st.url, File: c.file.Name, Reason: fmt.Sprintf("bad cell key %x: %v", c.key, err)}
			return false
		}
		if bytes.Compare(row, c.start) < 0 {
			continue
		}
		if bytes.Compare(row, c.end) >= 0 {
			c.closeFile()
			c.files = nil // sorted and disjoint: nothing further is in range
			return false
		}
		return true
	}
	return false
}

// take records the iterator's cell (get); false (and the file closed)
// at its end.
func (c *cellIter) take(ok bool, get func() (k, v []byte, err error)) bool {
	if !ok {
		if err := c.it.Error(); err != nil {
			c.err = &CorruptFileError{URL: c.st.url, File: c.file.Name, Reason: err.Error()}
		}
		c.closeFile()
		return false
	}
	k, v, err := get()
	if err != nil {
		c.err = &CorruptFileError{URL: c.st.url, File: c.file.Name, Reason: err.Error()}
		return false
	}
	c.key, c.val = k, v
	return true
}

func (c *cellIter) open(f *File) {
	data, err := readFile(c.ctx, c.st, f)
	if err != nil {
		c.err = err
		return
	}
	c.read += int64(len(data))
	rd, err := sstable.NewMemReader(data, sstable.ReaderOptions{})
	if err != nil {
		c.err = &CorruptFileError{URL: c.st.url, File: f.Name, Reason: err.Error()}
		return
	}
	it, err := rd.NewIter(sstable.NoTransforms, nil, nil, sstable.TableBlobContext{})
	if err != nil {
		_ = rd.Close()
		c.err = &CorruptFileError{URL: c.st.url, File: f.Name, Reason: err.Error()}
		return
	}
	c.rd, c.it, c.file = rd, it, f
}

func (c *cellIter) closeFile() {
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
	if c.rd != nil {
		_ = c.rd.Close()
		c.rd = nil
	}
}

func (c *cellIter) close() { c.closeFile() }
