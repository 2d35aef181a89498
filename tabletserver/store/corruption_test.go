package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/faultfs"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// walFlipper flips one byte of the first read of a WAL file under dir,
// once armed.
type walFlipper struct {
	mu    sync.Mutex
	dir   string
	armed bool
	flips int
}

func (w *walFlipper) Corrupt(op faultfs.Op) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed || !strings.HasPrefix(op.Path, w.dir) || !strings.HasSuffix(op.Path, ".log") || op.Offset != 0 {
		return -1
	}
	w.armed = false
	w.flips++
	return op.Len / 2
}

// TestWALCorruptionRefusedAtOpen: a byte of a store's WAL flipped while it
// was down is caught by the record checksum when the store reopens. The
// store refuses to open with a corruption error (no panic, no replay of
// wrong data, no raft amnesia) and the other replicas keep serving every
// acknowledged write.
func TestWALCorruptionRefusedAtOpen(t *testing.T) {
	flip := &walFlipper{}
	var opts3 store.Options
	c := storetest.Start(t, 3, func(o *store.Options) {
		storetest.FastOptions(o)
		o.ConsistencyCheckInterval = -1
		o.FS = faultfs.Wrap(vfs.Default, flip)
		if o.StoreID == 3 {
			opts3 = *o
		}
	})
	_, desc := newCheckClusterOn(t, c, 0)
	ctx := context.Background()
	value := strings.Repeat("v", 200)
	for i := 0; i < 2000; i++ {
		req := &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte(fmt.Sprintf("r%05d", i)),
			Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Value: []byte(value)}}}}}
		require.NoError(t, c.Call(ctx, desc.TabletId, func(cl kvpb.TabletClient) error { _, err := cl.MutateRow(ctx, req); return err }))
	}
	waitApplied(t, c, desc.TabletId)
	c.Stop(3)
	flip.mu.Lock()
	flip.dir, flip.armed = filepath.Join(opts3.Dir, "engine"), true
	flip.mu.Unlock()

	s, err := store.Open(opts3)
	if err == nil {
		s.Close()
	}
	require.Equal(t, 1, flip.flips, "the WAL was not read back")
	require.Error(t, err)
	require.True(t, store.IsCorruption(err), "%v", err)

	for _, i := range []int{0, 999, 1999} {
		row := fmt.Sprintf("r%05d", i)
		var got *kvpb.GetResponse
		require.NoError(t, c.Call(ctx, desc.TabletId, func(cl kvpb.TabletClient) error {
			var err error
			got, err = cl.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte(row)})
			return err
		}))
		require.Len(t, got.Row.Cells, 1, row)
		require.Equal(t, value, string(got.Row.Cells[0].Value))
	}
}
