package store

// A full disk (docs/decisions.md, "A full disk"; docs/reliability.md).
//
// Pebble, like RocksDB, treats a failed WAL write as fatal: its log
// writer's error is sticky and the next commit panics while holding the
// commit pipeline's mutex. So the engine must never meet ENOSPC, and the
// store keeps it away in three layers:
//
//  1. A free-space threshold (Options.MinFreeBytes). Below it the store is
//     disk-full: leaders refuse client writes, uploads and incoming
//     snapshots with a typed DiskFull error; followers stop taking new
//     entries (they drop MsgApp with entries, which raft treats as loss);
//     reads are served; PD hears it in the store heartbeat and moves
//     leaders and replicas away. Internal work that frees space goes on:
//     raft log truncation, version GC, compactions, conf changes.
//  2. A ballast file (Options.BallastBytes, as CockroachDB's ballast or
//     TiKV's reserve-space placeholder), removed the moment the store
//     becomes disk-full, so that the work of layer 1 and the entries
//     already in flight have room, and re-created before writes resume.
//  3. Every file the store and its engine write goes through spaceFS: a
//     write that fails with ENOSPC marks the store disk-full, removes the
//     ballast if it is still there and is retried once. A write(2) that
//     fails with ENOSPC wrote nothing past what it reported, so retrying
//     the rest is safe (unlike a failed fsync, which is never retried).
//
// An engine error that still reaches the raft worker (ENOSPC with no
// ballast left, EIO, a failed fsync) fails the store (failStorage): its
// worker stops without acknowledging anything that is not durable, it
// refuses reads and writes with NotLeader so that clients go to the other
// replicas, and it stays up, reporting disk_full to PD, instead of
// crash-looping. Resuming from that state needs the engine reopened, which
// the node does in process once the disk works again (tabletserver/node,
// recover.go); resuming from layers 1-3 needs nothing.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/shaledb/shale/internal/errs"
)

// ballastName is the ballast file in the store's directory (outside the
// engine's, so pebble never sees it).
const ballastName = "BALLAST"

// diskFullRetryAfterMs is the back-off DiskFull asks of clients: about a
// PD heartbeat, after which the leader has usually moved.
const diskFullRetryAfterMs = 1000

// diskState tracks whether the store has room to take writes.
type diskState struct {
	s  *Store
	fs vfs.FS // the unwrapped file system: the ballast's writes must not recurse
	// full: client writes are refused. failed: the engine failed; the
	// raft worker stopped (see failStorage).
	full, failed atomic.Bool
	// avail and total are the last probe's figures, in bytes.
	avail, total atomic.Uint64
	// enospc counts writes that met ENOSPC (retried or not).
	enospc atomic.Uint64
	// ballast is held while creating or removing the ballast file.
	ballast    sync.Mutex
	hasBallast atomic.Bool
	// keptDropped: the files kept for peers were removed in this
	// disk-full episode.
	keptDropped atomic.Bool
	reason      atomic.Value // string: why the store is full, for logs and status
}

func (d *diskState) ballastPath() string { return filepath.Join(d.s.opts.Dir, ballastName) }

// isENOSPC reports whether err is (or wraps) "no space left on device".
func isENOSPC(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// isStorageError reports whether err is a failure of the disk rather than
// of the data or the program: out of space, an I/O error, a read-only
// file system, or a quota.
func isStorageError(err error) bool {
	return isENOSPC(err) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EDQUOT)
}

// refuseWrite returns DiskFull while the store is disk-full, NotLeader for
// tabletID once the store has failed (the other replicas serve), and nil
// otherwise.
func (d *diskState) refuseWrite(tabletID uint64) error {
	if d.failed.Load() {
		return errs.NotLeader(tabletID, 0, "")
	}
	if d.full.Load() {
		d.s.metrics.diskFullRefused.Inc()
		return errs.DiskFull(d.s.opts.StoreID, d.avail.Load(), diskFullRetryAfterMs)
	}
	return nil
}

// refuseRead returns NotLeader once the store has failed: its raft worker
// stopped, so it can no longer tell whether it is still the leader.
func (d *diskState) refuseRead(tabletID uint64) error {
	if d.failed.Load() {
		return errs.NotLeader(tabletID, 0, "")
	}
	return nil
}

// thresholds returns the free space below which writes stop and the
// ballast's size, resolving the defaults against the disk's size.
func (d *diskState) thresholds(total uint64) (minFree, ballast uint64) {
	o := d.s.opts
	switch {
	case o.MinFreeBytes > 0:
		minFree = uint64(o.MinFreeBytes)
	case o.MinFreeBytes == 0:
		// 2% of the disk, between 64 MiB and 2 GiB.
		minFree = min(max(total/50, 64<<20), 2<<30)
	}
	switch {
	case o.BallastBytes > 0:
		ballast = uint64(o.BallastBytes)
	case o.BallastBytes == 0:
		// CockroachDB's default: 1% of the disk, at most 1 GiB.
		ballast = min(total/100, 1<<30)
	}
	return minFree, ballast
}

// probe reads the file system's free space and moves the store in or out
// of the disk-full state. Safe to call from any goroutine.
func (d *diskState) probe() {
	du, err := d.fs.GetDiskUsage(d.s.opts.Dir)
	if err != nil {
		d.s.log.Debug("free space probe failed", "err", err)
		return
	}
	d.avail.Store(du.AvailBytes)
	d.total.Store(du.TotalBytes)
	minFree, ballast := d.thresholds(du.TotalBytes)
	if d.full.Load() && d.s.ingest != nil && !d.keptDropped.Swap(true) {
		// Staged files kept only for peers are the first to go.
		d.s.dropKeptStaged()
	}
	if d.full.Load() {
		// Back once the ballast can be re-created and the threshold still
		// holds after it: the gap keeps the state from flapping.
		if d.failed.Load() || du.AvailBytes < minFree+ballast {
			return
		}
		if err := d.createBallast(ballast); err != nil {
			d.s.log.Warn("cannot re-create the ballast; still refusing writes", "err", err)
			return
		}
		d.full.Store(false)
		d.keptDropped.Store(false)
		d.s.log.Warn("disk space is back; accepting writes", "available_bytes", du.AvailBytes, "min_free_bytes", minFree)
		return
	}
	if du.AvailBytes < minFree {
		d.enterFull(fmt.Sprintf("%d bytes free, below the %d-byte threshold", du.AvailBytes, minFree))
		return
	}
	if !d.hasBallast.Load() && ballast > 0 && du.AvailBytes >= minFree+ballast {
		if err := d.createBallast(ballast); err != nil {
			d.s.log.Warn("cannot create the ballast", "err", err)
		}
	}
}

// enterFull makes the store refuse writes and releases the ballast, so
// that raft entries in flight, log truncation and compactions have room.
func (d *diskState) enterFull(reason string) {
	if d.full.Swap(true) {
		return
	}
	d.reason.Store(reason)
	d.s.log.Error("disk full: refusing writes; reads are still served", "reason", reason, "available_bytes", d.avail.Load())
	d.s.metrics.diskFullEvents.Inc()
	d.removeBallast()
}

// noteENOSPC is called by spaceFS when a write met ENOSPC. It reports
// whether space was freed (the ballast removed), so the write may be
// retried once.
func (d *diskState) noteENOSPC(op string, err error) bool {
	d.enospc.Add(1)
	d.s.metrics.enospc.Inc()
	freed := d.removeBallast()
	d.enterFull(fmt.Sprintf("%s: %v", op, err))
	return freed
}

// removeBallast deletes the ballast file; it reports whether there was
// one.
func (d *diskState) removeBallast() bool {
	d.ballast.Lock()
	defer d.ballast.Unlock()
	if !d.hasBallast.Load() {
		return false
	}
	if err := d.fs.Remove(d.ballastPath()); err != nil {
		d.s.log.Error("cannot remove the ballast", "err", err)
		return false
	}
	d.hasBallast.Store(false)
	d.s.log.Warn("ballast removed to make room", "path", d.ballastPath())
	return true
}

// createBallast reserves a ballast of n bytes: fallocate (instant, and
// the blocks are really allocated on ext4, xfs and tmpfs), or zeros
// written where the file system cannot preallocate; then fsync.
func (d *diskState) createBallast(n uint64) error {
	d.ballast.Lock()
	defer d.ballast.Unlock()
	if n == 0 || d.hasBallast.Load() {
		return nil
	}
	path := d.ballastPath()
	err := func() error {
		f, err := d.fs.Create(path, "ballast")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Preallocate(0, int64(n)); err == nil {
			return f.Sync()
		} else if isENOSPC(err) {
			return err
		}
		zeros := make([]byte, 1<<20)
		for left := n; left > 0; {
			k := min(left, uint64(len(zeros)))
			if _, err := f.Write(zeros[:k]); err != nil {
				return err
			}
			left -= k
		}
		return f.Sync()
	}()
	if err != nil {
		_ = d.fs.Remove(path)
		return err
	}
	d.hasBallast.Store(true)
	return nil
}

// ballastBytes is the ballast's size while it exists (its apparent size
// may be 0: preallocated blocks), else 0.
func (d *diskState) ballastBytes() uint64 {
	if !d.hasBallast.Load() {
		return 0
	}
	_, b := d.thresholds(d.total.Load())
	return b
}

// openDisk adopts a ballast left by an earlier run and starts the state
// from a first probe.
func (s *Store) openDisk(raw vfs.FS) {
	s.disk = &diskState{s: s, fs: raw}
	s.disk.reason.Store("")
	// A preallocated ballast has size 0 (FALLOC_FL_KEEP_SIZE): adopt
	// whatever is there.
	if _, err := raw.Stat(s.disk.ballastPath()); err == nil {
		s.disk.hasBallast.Store(true)
	}
}

// startDiskMonitor probes the free space every Options.DiskProbeInterval.
func (s *Store) startDiskMonitor(ctx context.Context) error {
	return s.every(ctx, "store.disk-monitor", s.opts.DiskProbeInterval, func(context.Context) { s.disk.probe() })
}

// DiskFull reports whether the store refuses writes for lack of space (or
// because its engine failed), and why.
func (s *Store) DiskFull() (bool, string) {
	if !s.disk.full.Load() {
		return false, ""
	}
	r, _ := s.disk.reason.Load().(string)
	return true, r
}

// Failed reports whether the store's engine failed (failStorage): it
// serves nothing until it is reopened (tabletserver/node reopens it once
// the disk works again).
func (s *Store) Failed() bool { return s.disk.failed.Load() }

// ProbeDiskForTest runs one free-space probe now.
func (s *Store) ProbeDiskForTest() { s.disk.probe() }

// failStorage puts the store in the failed state after an engine error
// reached the raft worker (see the top of this file).
func (s *Store) failStorage(what string, err error) {
	if s.disk.failed.Swap(true) {
		return
	}
	reason := fmt.Sprintf("engine failed: %s: %v", what, err)
	s.disk.enterFull(reason)
	s.disk.reason.Store(reason)
	s.log.Error("storage failed: the raft worker stops; other replicas serve this store's tablets; the store is reopened once the disk works again", "op", what, "err", err)
}

// guardEngine runs an engine write outside the raft worker: a storage
// failure that pebble reports by panicking (its Logger.Fatalf) fails the
// store and comes back as an error instead of ending the process.
func (s *Store) guardEngine(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			what, serr := storageFailureOf(v)
			if serr == nil {
				panic(v) // not the disk
			}
			s.failStorage(what, serr)
			err = fmt.Errorf("store %d: %s: %w", s.opts.StoreID, what, serr)
		}
	}()
	return f()
}

// spaceFS wraps the store's file system (see layer 3 at the top of this
// file).
type spaceFS struct {
	vfs.FS
	d *diskState
}

func (fs *spaceFS) Unwrap() vfs.FS { return fs.FS }

// retry runs op; on ENOSPC it tells the disk state and, if that freed
// space, runs op once more.
func (fs *spaceFS) retry(what string, op func() error) error {
	err := op()
	if err != nil && isENOSPC(err) && fs.d.noteENOSPC(what, err) {
		err = op()
		if err != nil && isENOSPC(err) {
			fs.d.noteENOSPC(what, err)
		}
	}
	return err
}

func (fs *spaceFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &spaceFile{File: f, d: fs.d}, nil
}

func (fs *spaceFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := fs.retry("create "+name, func() (err error) { f, err = fs.FS.Create(name, cat); return err })
	return fs.wrap(f, err)
}

func (fs *spaceFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, cat, opts...))
}

func (fs *spaceFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := fs.retry("reuse "+newname, func() (err error) { f, err = fs.FS.ReuseForWrite(oldname, newname, cat); return err })
	return fs.wrap(f, err)
}

func (fs *spaceFS) Link(oldname, newname string) error {
	return fs.retry("link "+newname, func() error { return fs.FS.Link(oldname, newname) })
}

func (fs *spaceFS) Rename(oldname, newname string) error {
	return fs.retry("rename "+newname, func() error { return fs.FS.Rename(oldname, newname) })
}

func (fs *spaceFS) MkdirAll(dir string, perm os.FileMode) error {
	return fs.retry("mkdir "+dir, func() error { return fs.FS.MkdirAll(dir, perm) })
}

// spaceFile is a file of spaceFS.
type spaceFile struct {
	vfs.File
	d *diskState
}

func (f *spaceFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if err != nil && isENOSPC(err) && f.d.noteENOSPC("write", err) {
		// The bytes before n are written; the rest are not.
		var m int
		m, err = f.File.Write(p[n:])
		n += m
		if err != nil && isENOSPC(err) {
			f.d.noteENOSPC("write", err)
		}
	}
	return n, err
}

func (f *spaceFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if err != nil && isENOSPC(err) && f.d.noteENOSPC("write", err) {
		var m int
		m, err = f.File.WriteAt(p[n:], off+int64(n))
		n += m
		if err != nil && isENOSPC(err) {
			f.d.noteENOSPC("write", err)
		}
	}
	return n, err
}

func (f *spaceFile) Preallocate(off, length int64) error {
	err := f.File.Preallocate(off, length)
	if err != nil && isENOSPC(err) && f.d.noteENOSPC("preallocate", err) {
		err = f.File.Preallocate(off, length)
	}
	return err
}

// A failed fsync is never retried (the kernel may have dropped the dirty
// pages): it is only noted.
func (f *spaceFile) Sync() error { return f.noteSync(f.File.Sync()) }

func (f *spaceFile) SyncData() error { return f.noteSync(f.File.SyncData()) }

func (f *spaceFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.noteSync(err)
}

func (f *spaceFile) noteSync(err error) error {
	if err != nil && isENOSPC(err) {
		f.d.noteENOSPC("sync", err)
	}
	return err
}

var _ io.Writer = (*spaceFile)(nil)
