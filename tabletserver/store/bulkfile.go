package store

import "github.com/cockroachdb/pebble/v2/vfs"

// bulkBytesPerSync is how often a file the store writes in bulk (an
// uploaded SST, a received snapshot) starts writeback of what it wrote:
// Pebble's own default for its SSTs (Options.BytesPerSync) and RocksDB's
// bytes_per_sync. Written whole and synced once at the end, a 64 MiB
// file would leave its pages dirty until that fsync, or until the kernel
// flushed them in one burst; either way the WAL syncs of foreground
// writes on the same disk queue behind it (issue 22: update p99 of 190 ms
// during an import).
const bulkBytesPerSync = 512 << 10

// createBulk creates a file for bulk data that syncs as it goes (Linux:
// sync_file_range; elsewhere, or on a file system without descriptors, a
// full sync every bulkBytesPerSync). Sync and Close still make it
// durable.
func (s *Store) createBulk(path string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := s.fs.Create(path, cat)
	if err != nil {
		return nil, err
	}
	return vfs.NewSyncingFile(f, vfs.SyncingFileOptions{BytesPerSync: bulkBytesPerSync}), nil
}
