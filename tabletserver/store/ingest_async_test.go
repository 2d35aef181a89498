package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A replica ingests a staged SST off its store's raft worker: while the
// engine takes the file in (hashing it, syncing, maybe flushing the
// memtable), the store's other tablets go on committing and applying
// writes. (The worker used to do it, and every tablet of the store
// waited: a foreground latency spike on each ingest of an import.)
func TestIngestDoesNotStallOtherTablets(t *testing.T) {
	release := make(chan struct{})
	var inside atomic.Int32
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.Knobs = &store.TestingKnobs{WhileIngesting: func(tabletID uint64) {
			if tabletID == 1 {
				inside.Add(1)
				<-release
			}
		}}
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the cluster's own cleanup stops the stores
	c.PutSchema(storetest.TestTable)
	tid := storetest.TestTable.TableId
	desc := c.Bootstrap(1, keys.RowKey(tid, []byte("b")), keys.RowKey(tid, []byte("m")), 1, 2, 3)
	c.Bootstrap(2, keys.RowKey(tid, []byte("m")), keys.RowKey(tid, []byte("z")), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sst, cells := buildSST(t, "c", 200, "f")
	for id, n := range c.Nodes {
		if _, err := importer.UploadSST(ctx, n.Client, 1, sst); err != nil {
			t.Fatalf("upload to store %d: %v", id, err)
		}
	}
	req := importer.IngestRequest(1, desc.Epoch, tid, sst)
	req.StagedStoreIds = []uint64{1, 2, 3} // by reference: each replica ingests its staged copy
	ingested := make(chan error, 1)
	go func() {
		ingested <- c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			_, err := cl.IngestSST(ctx, req)
			return err
		})
	}()
	testutils.SucceedsSoon(t, func() error {
		if n := inside.Load(); n < 3 {
			return fmt.Errorf("%d of 3 replicas are ingesting", n)
		}
		return nil
	})

	// Every replica of tablet 1 is inside its ingest: tablet 2, on the
	// same three stores, still takes writes.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second) // far beyond a write; the ingest waits meanwhile
	defer wcancel()
	for i := 0; i < 5; i++ {
		row := fmt.Sprintf("n%03d", i)
		if err := c.Put(wctx, 2, row, "w"); err != nil {
			t.Fatalf("a write to tablet 2 waited for tablet 1's ingest: %v", err)
		}
		if err := c.MustRead(wctx, 2, row, "w"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-ingested:
		t.Fatalf("the ingest answered (%v) before any replica finished it", err)
	default:
	}

	unblock()
	if err := <-ingested; err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if err := c.MustRead(ctx, 1, "c042", "v42"); err != nil {
		t.Fatal(err)
	}
	// Writes proposed after the ingest apply after it, on every replica.
	if err := c.Put(ctx, 1, "c042", "after"); err != nil {
		t.Fatal(err)
	}
	if err := c.MustRead(ctx, 1, "c042", "after"); err != nil {
		t.Fatal(err)
	}
	for id, n := range c.Nodes {
		testutils.SucceedsSoon(t, func() error {
			for _, k := range cells {
				ok, err := n.Store.HasCellForTest(k)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("store %d lacks cell %x", id, k)
				}
			}
			return nil
		})
	}
}
