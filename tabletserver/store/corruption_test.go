package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/faultfs"
	"github.com/shaledb/shale/internal/testutils"
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
	// About 400 KiB of values, as 250 writes (not many small ones: the
	// flipped byte needs WAL records past the first read, not many writes).
	const rows = 250
	value := strings.Repeat("v", 1600)
	for i := 0; i < rows; i++ {
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

	for _, i := range []int{0, rows / 2, rows - 1} {
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

// TestLostWALTailMarksReplicaBad: a follower's WAL loses its tail while it
// is down, as a flipped byte in the newest WAL's last records does (Pebble
// takes it for a torn write) or a disk that lied about an fsync. Its raft
// log and hard state both go back, so the store opens; the leader then
// heartbeats a commit index past the end of its log. raft would panic
// ("tocommit out of range"), and the process would crash at every start;
// instead the replica is marked bad (it serves nothing and is rebuilt from
// its peers), the store keeps running, and the tablet keeps taking writes.
func TestLostWALTailMarksReplicaBad(t *testing.T) {
	c := storetest.Start(t, 3, func(o *store.Options) {
		storetest.FastOptions(o)
		o.ConsistencyCheckInterval = -1
	})
	_, desc := newCheckClusterOn(t, c, 300)
	waitApplied(t, c, desc.TabletId)
	leader := c.WaitLeader(desc.TabletId)
	victim := uint64(1)
	if victim == leader {
		victim = 2
	}
	dir := filepath.Join(c.Nodes[victim].Store.Dir(), "engine")
	c.Stop(victim)
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, logs)
	sort.Strings(logs)
	newest := logs[len(logs)-1]
	fi, err := os.Stat(newest)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(newest, fi.Size()/2))

	c.Restart(victim)
	testutils.SucceedsSoon(t, func() error {
		if ev := c.Nodes[victim].Store.TabletEvents(desc.TabletId); !strings.Contains(ev, "found corrupt data and stopped serving") {
			return fmt.Errorf("replica on store %d not marked bad yet:\n%s", victim, ev)
		}
		return nil
	})
	ctx := context.Background()
	req := &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte("after"),
		Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Value: []byte("v")}}}}}
	require.NoError(t, c.Call(ctx, desc.TabletId, func(cl kvpb.TabletClient) error { _, err := cl.MutateRow(ctx, req); return err }))
}
