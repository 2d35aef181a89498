package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// fatalLog records the fatal storage errors of a cluster's stores
// (store.TestingKnobs.OnFatal) instead of letting them end the test.
type fatalLog struct {
	mu   sync.Mutex
	errs map[uint64][]error
}

func (l *fatalLog) tweak(o *store.Options) {
	id := o.StoreID
	o.Knobs.OnFatal = func(what string, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.errs[id] = append(l.errs[id], fmt.Errorf("%s: %w", what, err))
	}
}

func (l *fatalLog) get(id uint64) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs[id]...)
}

// TestIngestSSTByReferenceRefusesDamagedCopy: a file staged on every
// replica is damaged on one follower's disk after its upload was verified.
// When the by-reference entry applies, that follower checks its copy
// against the checksum that names it, refuses it with a typed DataLoss
// error and stops applying (as the process would stop) instead of
// ingesting bytes that differ from its peers'; the others ingest theirs,
// the damaged copy is set aside, and no store holds any cell the others
// do not.
func TestIngestSSTByReferenceRefusesDamagedCopy(t *testing.T) {
	fatal := &fatalLog{errs: map[uint64][]error{}}
	c := storetest.Start(t, 3, fatal.tweak)
	c.PutSchema(storetest.TestTable)
	desc := c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	leader := c.WaitLeader(1)
	victim := followerOf(leader)
	sst, cells := buildSST(t, "c", 200, "f")
	for id, n := range c.Nodes {
		if _, err := importer.UploadSST(ctx, n.Client, 1, sst); err != nil {
			t.Fatalf("upload to store %d: %v", id, err)
		}
	}
	// A byte inside the first data block: pebble would ingest the file
	// without reading it.
	if err := c.Nodes[victim].Store.DamageStagedForTest(sst.Checksum, 16); err != nil {
		t.Fatal(err)
	}
	req := importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst)
	req.StagedStoreIds = []uint64{1, 2, 3}
	if _, err := c.Nodes[leader].Client.IngestSST(ctx, req); err != nil {
		t.Fatalf("ingest by reference: %v", err)
	}
	testutils.SucceedsSoon(t, func() error {
		errs := fatal.get(victim)
		if len(errs) == 0 {
			return fmt.Errorf("store %d has not refused its damaged copy", victim)
		}
		if code := status.Code(errs[0]); code != codes.DataLoss {
			t.Fatalf("store %d refused its copy with %v (code %s), want DataLoss", victim, errs[0], code)
		}
		return nil
	})
	t.Logf("store %d: %v", victim, fatal.get(victim)[0])
	for id, n := range c.Nodes {
		if id != victim && len(fatal.get(id)) > 0 {
			t.Fatalf("store %d stopped too: %v", id, fatal.get(id))
		}
		// The leader answered once a quorum applied the ingest: the other
		// follower may still be applying it.
		testutils.SucceedsSoon(t, func() error {
			for _, k := range cells {
				ok, err := n.Store.HasCellForTest(k)
				if err != nil {
					t.Fatal(err)
				}
				if want := id != victim; ok != want {
					return fmt.Errorf("store %d holds cell %x: %v, want %v", id, k, ok, want)
				}
			}
			return nil
		})
	}
	if q := c.Nodes[victim].Store.QuarantinedForTest(); len(q) != 1 {
		t.Fatalf("store %d set aside %v, want the damaged file", victim, q)
	}
	if m := c.Nodes[victim].Store.IngestMarkersForTest(); len(m) != 0 {
		t.Fatalf("store %d left ingest markers %v for a file it refused", victim, m)
	}
	if err := c.MustRead(ctx, 1, "c042", "v42"); err != nil {
		t.Fatal(err)
	}
}

// TestUploadSSTVerifiesChecksum: a file whose bytes do not hash to the
// checksum that names it is refused (DataLoss) even when its CRC-32C
// transfer check passes, and a staged copy damaged on disk is neither
// reported as already staged nor ingested from: the leader refuses it with
// DataLoss, and an upload afterwards stages it afresh.
func TestUploadSSTVerifiesChecksum(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	sst, _ := buildSST(t, "c", 50, "f")
	other := sha256.Sum256([]byte("other bytes"))
	lying := &importer.SST{Data: sst.Data, Checksum: other[:], CRC32C: sst.CRC32C,
		Smallest: sst.Smallest, Largest: sst.Largest, KeyCount: sst.KeyCount, MaxTimestamp: sst.MaxTimestamp}
	cl := c.Nodes[leader].Client
	if _, err := importer.UploadSST(ctx, cl, 1, lying); status.Code(err) != codes.DataLoss {
		t.Fatalf("upload of bytes under another file's checksum: %v, want DataLoss", err)
	}
	if staged := c.Nodes[leader].Store.StagedFilesForTest(); len(staged) != 0 {
		t.Fatalf("staged %v after a refused upload", staged)
	}

	if _, err := importer.UploadSST(ctx, cl, 1, sst); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[leader].Store.DamageStagedForTest(sst.Checksum, 16); err != nil {
		t.Fatal(err)
	}
	_, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst))
	if status.Code(err) != codes.DataLoss {
		t.Fatalf("ingest of a damaged staged copy: %v, want DataLoss", err)
	}
	if _, err := importer.UploadSST(ctx, cl, 1, sst); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[leader].Store.DamageStagedForTest(sst.Checksum, 16); err != nil {
		t.Fatal(err)
	}
	resp, err := importer.UploadSST(ctx, cl, 1, sst)
	if err != nil {
		t.Fatal(err)
	}
	if resp.AlreadyStaged {
		t.Fatal("a damaged staged copy was reported as already staged")
	}
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst)); err != nil {
		t.Fatalf("ingest after a fresh upload: %v", err)
	}
	if err := c.MustRead(ctx, 1, "c042", "v42"); err != nil {
		t.Fatal(err)
	}
}
