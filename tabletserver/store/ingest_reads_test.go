package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// While a replica's engine ingests an applied SST, reads on that store go
// on: applying an ingest does not hold the lock reads take to pin their
// snapshot (it once did, for the ingest's manifest sync, and every read
// on the store waited).
func TestReadsGoOnWhileIngesting(t *testing.T) {
	var (
		mu      sync.Mutex
		stores  = map[uint64]*store.Store{}
		calls   int
		blocked []string
	)
	// readDuring runs on a store's raft worker inside the ingest: a local
	// read on that store must finish while the worker waits here.
	readDuring := func(storeID uint64) func(uint64) {
		return func(tabletID uint64) {
			mu.Lock()
			s := stores[storeID]
			calls++
			mu.Unlock()
			done := make(chan error, 1)
			go func() {
				_, err := s.ReadLocal(context.Background(), &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tabletID},
					TableId: storetest.TestTable.TableId, RowKey: []byte("c000")})
				done <- err
			}()
			select {
			case err := <-done:
				if err != nil {
					mu.Lock()
					blocked = append(blocked, fmt.Sprintf("store %d: read failed: %v", storeID, err))
					mu.Unlock()
				}
			case <-time.After(10 * time.Second): // far beyond a local read; the ingest waits meanwhile
				mu.Lock()
				blocked = append(blocked, fmt.Sprintf("store %d: a local read waited 10s for the ingest", storeID))
				mu.Unlock() // the read finishes once the ingest does (done is buffered)
			}
		}
	}
	c := storetest.Start(t, 3, func(o *store.Options) {
		id := o.StoreID
		o.Knobs = &store.TestingKnobs{WhileIngesting: readDuring(id), Started: func(s *store.Store) {
			mu.Lock()
			defer mu.Unlock()
			stores[id] = s
		}}
	})
	c.PutSchema(storetest.TestTable)
	desc := c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sst, _ := buildSST(t, "c", 200, "f")
	if err := uploadAndIngest(ctx, c, 1, desc.Epoch, sst); err != nil {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("ingest: %v (reads that waited for it: %v)", err, blocked)
	}
	if err := c.MustRead(ctx, 1, "c000", "v0"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls == 0 {
		t.Fatal("no replica applied the ingest through WhileIngesting")
	}
	if len(blocked) > 0 {
		t.Fatalf("reads waited for the ingest: %v", blocked)
	}
}
