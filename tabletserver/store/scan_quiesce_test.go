package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// scanVersions is how many cell versions the scan tests store: far more
// than a scan reads between checks of its context.
const scanVersions = 5000

// startScanTablet starts one store leading tablet 1 over table 9 and
// writes scanVersions versions (none of them garbage: family "k" keeps
// everything) straight into its engine, above timestamp 1000.
func startScanTablet(t *testing.T) *store.Store {
	t.Helper()
	c := storetest.Start(t, 1, func(o *store.Options) { o.GCInterval = -1 })
	c.PutSchema(&metapb.TableSchema{TableId: 9, Name: "scan", Version: 1, Families: []*metapb.FamilySchema{{Name: "k"}}})
	p := keys.TablePrefix(9)
	c.Bootstrap(1, p, keys.PrefixEnd(p), 1)
	c.WaitLeader(1)
	s := c.Nodes[1].Store
	b := s.DB().NewBatch()
	for i := 0; i < scanVersions; i++ {
		k := keys.DataKey(keys.CellKey(9, []byte(fmt.Sprintf("r%04d", i%100)), "k", []byte("q"), int64(1000+i)))
		if err := b.Set(k, cellvalue.Encode([]byte("v")), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return s
}

func cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestGCTabletStopsOnCancel: a GC pass over a big tablet without garbage
// never waits on its context elsewhere (nothing to flush); it must still
// stop when the context ends (the store's shutdown), or Close gives up on
// it and leaves the engine open.
func TestGCTabletStopsOnCancel(t *testing.T) {
	s := startScanTablet(t)
	// Cancelled first: a pass that completed without garbage would let
	// the next one skip the tablet (gcskip.go).
	if n, err := s.GCTablet(cancelledContext(), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("GCTablet with a cancelled context = %d, %v; want context.Canceled", n, err)
	}
	n, err := s.GCTablet(context.Background(), 1)
	if err != nil || n != 0 {
		t.Fatalf("GCTablet = %d, %v; want 0 deleted (nothing is garbage)", n, err)
	}
}

// TestChecksumStopsOnCancel: a consistency check's digest of many small
// keys reaches a pacing wait only every rateChunk bytes; it stops on a
// cancelled context anyway.
func TestChecksumStopsOnCancel(t *testing.T) {
	s := startScanTablet(t)
	if n, msg, err := s.ChecksumForTest(context.Background(), 1); err != nil || msg != "" || n < scanVersions {
		t.Fatalf("checksum = %d keys, %q, %v; want >= %d keys", n, msg, err, scanVersions)
	}
	_, msg, err := s.ChecksumForTest(cancelledContext(), 1)
	if err != nil || !strings.Contains(msg, context.Canceled.Error()) {
		t.Fatalf("checksum with a cancelled context: error %q, %v; want %q", msg, err, context.Canceled)
	}
}

// TestExportStopsOnCancel: an export at a timestamp below every version
// skips them all without pacing; it stops on a cancelled context anyway.
func TestExportStopsOnCancel(t *testing.T) {
	s := startScanTablet(t)
	req := &kvpb.ExportRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, Ts: 1}
	send := func(*kvpb.ExportResponse) error { return nil }
	testutils.SucceedsSoon(t, func() error { return s.Export(context.Background(), req, send) })
	if err := s.Export(cancelledContext(), req, send); !errors.Is(err, context.Canceled) {
		t.Fatalf("Export with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestMiddleKeyStopsOnQuiesce: the split-key search has no context; it
// stops once the store begins to shut down.
func TestMiddleKeyStopsOnQuiesce(t *testing.T) {
	s := startScanTablet(t)
	if k, err := s.MiddleKey(1); err != nil || k == nil {
		t.Fatalf("MiddleKey = %q, %v; want a key", k, err)
	}
	s.QuiesceForTest()
	if k, err := s.MiddleKey(1); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("MiddleKey after shutdown began = %q, %v; want ErrClosed", k, err)
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// stuckTaskForStackTest blocks until released; its name must show in the
// stacks Close logs.
func stuckTaskForStackTest(release chan struct{}) { <-release }

// TestCloseLogsStuckStacks: when a task outlives CloseTimeout, Close logs
// the goroutine stacks, so the log shows where the task waits.
func TestCloseLogsStuckStacks(t *testing.T) {
	var logs syncBuffer
	c := storetest.Start(t, 1, func(o *store.Options) {
		o.CloseTimeout = 200 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	s := c.Nodes[1].Store
	release := make(chan struct{})
	if err := s.RunAsyncTaskForTest("test.stuck", func(context.Context) { stuckTaskForStackTest(release) }); err != nil {
		t.Fatal(err)
	}
	err := s.Close()
	close(release)
	if err == nil {
		t.Fatal("Close with a stuck task returned nil")
	}
	if got := logs.String(); !strings.Contains(got, "stuckTaskForStackTest") {
		t.Fatalf("Close logged no stack of the stuck task; log:\n%.4000s", got)
	}
	if err := s.DB().Close(); err != nil { // left open for the stuck task
		t.Fatal(err)
	}
}
