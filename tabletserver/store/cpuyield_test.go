package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// The leader's hash and validation of a staged SST and every replica's
// hash before its ingest yield the processor as they go (cpuyield.go),
// rather than holding a core for up to 10ms at a time while foreground
// requests wait to be scheduled.
func TestIngestHashingAndValidationYield(t *testing.T) {
	var yields atomic.Int64
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.Knobs = &store.TestingKnobs{OnCPUYield: func() { yields.Add(1) }}
	})
	c.PutSchema(storetest.TestTable)
	tid := storetest.TestTable.TableId
	desc := c.Bootstrap(1, keys.RowKey(tid, []byte("b")), keys.RowKey(tid, []byte("m")), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// About 2 MiB of incompressible values.
	rng := rand.New(rand.NewPCG(1, 2))
	b := importer.NewSSTBuilder()
	for i := 0; i < 2048; i++ {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		k := keys.CellKey(tid, []byte(fmt.Sprintf("c%05d", i)), "f", []byte("q"), ingestTS)
		if err := b.Add(k, v, ingestTS); err != nil {
			t.Fatal(err)
		}
	}
	sst, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range c.Nodes {
		if _, err := importer.UploadSST(ctx, n.Client, 1, sst); err != nil {
			t.Fatalf("upload to store %d: %v", id, err)
		}
	}
	if n := yields.Load(); n != 0 {
		t.Fatalf("uploads yielded %d times; they are paced per chunk instead", n)
	}
	req := importer.IngestRequest(1, desc.Epoch, tid, sst)
	req.StagedStoreIds = []uint64{1, 2, 3}
	if err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.IngestSST(ctx, req)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// The leader hashes and validates the file (2 MiB each), and each of
	// the three replicas hashes it again before ingesting it: at least
	// five passes over the file, one yield per 64 KiB. (The followers
	// apply after the leader answered.)
	chunks := int64(len(sst.Data) / (64 << 10))
	testutils.SucceedsSoon(t, func() error {
		if got, want := yields.Load(), 5*(chunks-1); got < want {
			return fmt.Errorf("an ingest of a %d-byte SST yielded %d times; want at least %d (one per 64 KiB of each pass)", len(sst.Data), got, want)
		}
		return nil
	})
}
