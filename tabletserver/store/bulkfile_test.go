package store_test

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// partialSyncFS counts, per file, the SyncTo calls made while it is
// written (writeback started before the final fsync).
type partialSyncFS struct {
	vfs.FS
	mu      sync.Mutex
	partial map[string]int
}

func (fs *partialSyncFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return &partialSyncFile{File: f, fs: fs, name: name}, nil
}

type partialSyncFile struct {
	vfs.File
	fs   *partialSyncFS
	name string
}

func (f *partialSyncFile) SyncTo(length int64) (bool, error) {
	f.fs.mu.Lock()
	f.fs.partial[f.name]++
	f.fs.mu.Unlock()
	return f.File.SyncTo(length)
}

// An uploaded SST is synced as it arrives (every 512 KiB, as Pebble
// syncs its own SSTs), not only once at the end: a multi-MiB file left
// dirty until one fsync stalls the foreground's WAL syncs behind it.
func TestUploadSyncsAsItWrites(t *testing.T) {
	fs := &partialSyncFS{FS: vfs.Default, partial: map[string]int{}}
	c := storetest.Start(t, 3, func(o *store.Options) { o.FS = fs })
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx := t.Context()

	rng := rand.New(rand.NewSource(int64(testutils.Seed(t))))
	b := importer.NewSSTBuilder()
	for i := range 4000 { // about 4 MiB of incompressible values
		v := make([]byte, 1000)
		rng.Read(v)
		k := keys.CellKey(storetest.TestTable.TableId, []byte(fmt.Sprintf("c%05d", i)), "f", []byte("q"), ingestTS)
		require.NoError(t, b.Add(k, v, ingestTS))
	}
	sst, err := b.Finish()
	require.NoError(t, err)
	require.NoError(t, c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := importer.UploadSST(ctx, cl, 1, sst)
		return err
	}))

	fs.mu.Lock()
	defer fs.mu.Unlock()
	staged := 0
	for name, n := range fs.partial {
		if filepath.Base(filepath.Dir(name)) == "ingest" && strings.Contains(name, ".tmp") {
			staged += n
		}
	}
	require.GreaterOrEqual(t, staged, 2, "a 4 MiB upload started writeback as it went; partial syncs: %v", fs.partial)
}
