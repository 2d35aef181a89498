package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// While a store installs a snapshot of one tablet (rebalancing, repair),
// reads of its other tablets go on: the install holds that replica's
// lock, not the one every read on the store takes. It once held the
// store's, across Pebble's Ingest (a memtable flush and fsyncs), and
// every read on the store waited: the read p99 during a drain.
func TestReadsGoOnWhileInstallingSnapshot(t *testing.T) {
	var (
		mu        sync.Mutex
		target    *store.Store
		installed []uint64
		blocked   []string
	)
	tab := storetest.TestTable.TableId
	// readDuring runs on store 3's raft worker inside the install: a
	// local read of tablet 1, which store 3 already holds, must finish.
	readDuring := func(tabletID uint64) error {
		mu.Lock()
		s := target
		mu.Unlock()
		done := make(chan error, 1)
		go func() {
			_, err := s.ReadLocal(context.Background(), &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1},
				TableId: tab, RowKey: []byte("c")})
			done <- err
		}()
		var problem string
		select {
		case err := <-done:
			if err != nil {
				problem = fmt.Sprintf("read of tablet 1 failed: %v", err)
			}
		case <-time.After(10 * time.Second): // far beyond a local read; the install waits meanwhile
			problem = fmt.Sprintf("a read of tablet 1 waited 10s for the install of tablet %d", tabletID)
		}
		mu.Lock()
		defer mu.Unlock()
		installed = append(installed, tabletID)
		if problem != "" {
			blocked = append(blocked, problem)
		}
		return nil
	}
	c := storetest.Start(t, 3, func(o *store.Options) {
		if o.StoreID != 3 {
			return
		}
		o.Knobs.WhileInstallingSnapshot = readDuring
		o.Knobs.Started = func(s *store.Store) {
			mu.Lock()
			defer mu.Unlock()
			target = s
		}
	})
	ctx := ctxT(t, 60*time.Second)
	snapshotToStore3(t, ctx, c, func() {
		testutils.SucceedsSoon(t, func() error { // the read readDuring makes works before the install
			_, err := target.ReadLocal(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: tab, RowKey: []byte("c")})
			return err
		})
	})
	testutils.SucceedsSoon(t, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(installed) == 0 {
			return fmt.Errorf("store 3 has not installed a snapshot yet")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(blocked) > 0 {
		t.Fatalf("reads of another tablet waited for a snapshot install: %v", blocked)
	}
}
