package node

// A store whose disk failed (an I/O error, a failed fsync, ENOSPC with no
// ballast left: store.failStorage) stops its raft worker and refuses
// requests; its engine cannot be used again, since Pebble's WAL error is
// sticky and, after a failed fsync, only the log on disk says what is
// durable. What it needs is what a restart does: close the engine and
// open it again, replaying the WAL. The node does that itself, in
// process, once a probe shows the disk works again (a file written and
// fsynced in the data directory): run returns errReopenStore, and Run
// runs the node again under the same store ID. A disk that keeps failing
// is reopened less and less often (the wait doubles, up to 5 minutes).
//
// This is no weaker than a process restart: both reopen from what the
// kernel returns for the files. CockroachDB and TiKV instead stop the
// process and rely on its supervisor.

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/shaledb/shale/tabletserver/store"
)

// errReopenStore says the store's disk failed and works again: run again.
var errReopenStore = errors.New("node: the store's disk works again; reopening the store")

const (
	// reopenFirstWait is how long a failed store stays down before the
	// first probe; it doubles after each reopen, up to reopenMaxWait.
	reopenFirstWait = 10 * time.Second
	reopenMaxWait   = 5 * time.Minute
	probeName       = "DISK_PROBE"
)

// watchStore probes the disk of a failed store every interval, once it
// has been failed for wait, and reports errReopenStore on errc when a
// probe succeeds. A store whose WAL lost acknowledged entries is retired
// (retire.go) and errRetired reported.
func watchStore(ctx context.Context, s *store.Store, fs vfs.FS, dir string, wait, interval time.Duration, errc chan<- error, retire func() error, log *slog.Logger) {
	var since time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.LostAcknowledged() {
			err := retire()
			if err == nil {
				err = errRetired
			}
			errc <- err
			return
		}
		if !s.Failed() {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) < wait {
			continue
		}
		if err := probeDisk(fs, dir); err != nil {
			log.Debug("disk still failing", "err", err)
			continue
		}
		log.Warn("the failed store's disk works again; reopening the store", "failed_for", time.Since(since).Round(time.Second))
		errc <- errReopenStore
		return
	}
}

// probeDisk writes, fsyncs and removes a small file in dir.
func probeDisk(fs vfs.FS, dir string) error {
	path := filepath.Join(dir, probeName)
	f, err := fs.Create(path, "probe")
	if err != nil {
		return err
	}
	_, werr := f.Write(make([]byte, 4096))
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := fs.Remove(path)
	return errors.Join(werr, cerr, rerr)
}
