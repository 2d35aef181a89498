package faultfs

import (
	"io"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

func TestFlipperCorruptsOnlyTargetedReads(t *testing.T) {
	fl := NewFlipper()
	fs := Wrap(vfs.NewMem(), fl)
	f, err := fs.Create("a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = f.Write([]byte("hello world"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	read := func() string {
		f, err := fs.Open("a")
		require.NoError(t, err)
		defer f.Close()
		b, err := io.ReadAll(f)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "hello world", read())
	fl.Target(func(p string) bool { return p == "a" })
	require.NotEqual(t, "hello world", read())
	require.Positive(t, fl.Flips())
	fl.Target(nil)
	require.Equal(t, "hello world", read())
}

// Pebble notices a flipped byte in an SST: a read fails with a corruption
// error instead of returning wrong data.
func TestPebbleDetectsFlippedSST(t *testing.T) {
	fl := NewFlipper()
	// Pebble's default DataCorruption handler stops the process.
	db, err := pebble.Open("db", &pebble.Options{FS: Wrap(vfs.NewMem(), fl), CacheSize: 1,
		EventListener: &pebble.EventListener{DataCorruption: func(pebble.DataCorruptionInfo) {}}})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Set([]byte("k"), []byte("value"), pebble.Sync))
	require.NoError(t, db.Flush())
	fl.Target(func(p string) bool { return strings.HasSuffix(p, ".sst") })
	_, _, err = db.Get([]byte("k"))
	require.Error(t, err)
	require.True(t, pebble.IsCorruptionError(err), "%v", err)
}
