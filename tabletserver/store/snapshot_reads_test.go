package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
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
		o.Knobs = &store.TestingKnobs{WhileInstallingSnapshot: readDuring, Started: func(s *store.Store) {
			mu.Lock()
			defer mu.Unlock()
			target = s
		}}
	})
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, keys.RowKey(tab, []byte("b")), keys.RowKey(tab, []byte("m")), 1, 2, 3)
	c.Bootstrap(2, keys.RowKey(tab, []byte("m")), keys.RowKey(tab, []byte("z")), 1, 2)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, 1, "c", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, 2, "p", "v2"); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error { // store 3 has applied tablet 1's write
		_, err := target.ReadLocal(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: tab, RowKey: []byte("c")})
		return err
	})
	// Store 3 joins tablet 2 as a learner: it gets the tablet by snapshot.
	testutils.SucceedsSoon(t, func() error {
		return c.Call(ctx, 2, func(cl kvpb.TabletClient) error {
			_, err := cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 2},
				Changes: []*kvpb.ReplicaChange{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 3, ReplicaId: 3}}})
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
