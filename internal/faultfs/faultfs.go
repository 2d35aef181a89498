package faultfs

import (
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Op is a read about to return len bytes of path from offset.
type Op struct {
	Path   string
	Offset int64
	Len    int
}

// Corruptor decides whether a read returns a corrupted byte: it returns
// the index within the read's buffer of the byte to flip, or -1.
type Corruptor interface {
	Corrupt(op Op) int
}

// CorruptorFunc adapts a function to Corruptor.
type CorruptorFunc func(Op) int

// Corrupt implements Corruptor.
func (f CorruptorFunc) Corrupt(op Op) int { return f(op) }

// FS is a vfs.FS whose files' reads pass through a Corruptor. Writes are
// untouched: the corruption happens "on the disk", between write and read.
type FS struct {
	vfs.FS
	c Corruptor
}

var _ vfs.FS = (*FS)(nil)

// Wrap returns fs with reads passed through c.
func Wrap(fs vfs.FS, c Corruptor) *FS { return &FS{FS: fs, c: c} }

// Unwrap returns the wrapped FS (see vfs.Root).
func (fs *FS) Unwrap() vfs.FS { return fs.FS }

func (fs *FS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &file{File: f, path: name, c: fs.c}, nil
}

// Create implements vfs.FS.
func (fs *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.wrap(name, f, err)
}

// Open implements vfs.FS.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	return fs.wrap(name, f, err)
}

// OpenReadWrite implements vfs.FS.
func (fs *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS.
func (fs *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(newname, f, err)
}

// file corrupts what Read and ReadAt return.
type file struct {
	vfs.File
	path string
	c    Corruptor
	pos  atomic.Int64 // for Read
}

func (f *file) flip(p []byte, off int64) {
	if len(p) == 0 {
		return
	}
	if i := f.c.Corrupt(Op{Path: f.path, Offset: off, Len: len(p)}); i >= 0 && i < len(p) {
		p[i] ^= 0x20
	}
}

// Read implements vfs.File.
func (f *file) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	off := f.pos.Add(int64(n)) - int64(n)
	f.flip(p[:n], off)
	return n, err
}

// ReadAt implements vfs.File.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.flip(p[:n], off)
	return n, err
}

// Flipper is a Corruptor that flips the middle byte of every read of the
// files its target function selects (none until Target is called).
type Flipper struct {
	mu     sync.Mutex
	target func(path string) bool
	flips  atomic.Int64
}

// NewFlipper returns a Flipper that corrupts nothing yet.
func NewFlipper() *Flipper { return &Flipper{} }

// Target sets which files' reads are corrupted from now on (nil: none).
func (fl *Flipper) Target(match func(path string) bool) {
	fl.mu.Lock()
	fl.target = match
	fl.mu.Unlock()
}

// Flips returns how many reads were corrupted.
func (fl *Flipper) Flips() int64 { return fl.flips.Load() }

// Corrupt implements Corruptor.
func (fl *Flipper) Corrupt(op Op) int {
	fl.mu.Lock()
	match := fl.target
	fl.mu.Unlock()
	if match == nil || !match(op.Path) {
		return -1
	}
	fl.flips.Add(1)
	return op.Len / 2
}
