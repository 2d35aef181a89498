package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A store serves at most MaxConcurrentBulkReads bulk-read Scans at once:
// each pins an engine snapshot while it is paced, so an importer (or a
// stranger) opening many would pin unbounded old files. The next one
// gets ServerBusy with a retry-after; foreground scans are not counted,
// and a token comes back when its scan ends.
func TestBulkReadsAreCappedPerStore(t *testing.T) {
	c := storetest.Start(t, 3, func(o *store.Options) { o.MaxConcurrentBulkReads = 1 })
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx := t.Context()
	require.NoError(t, c.Put(ctx, 1, "c", "v"))
	s := c.Nodes[c.WaitLeader(1)].Store
	bulk := metadata.NewIncomingContext(ctx, metadata.Pairs(admission.BulkReadHeader, "1"))
	scan := func(ctx context.Context, send func(*kvpb.ScanResponse) error) error {
		return s.Scan(ctx, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId}, send)
	}
	drop := func(*kvpb.ScanResponse) error { return nil }

	sending, release := make(chan struct{}), make(chan struct{})
	var released bool
	defer func() { // let the first scan end, so the stores can close
		if !released {
			close(release)
		}
	}()
	first := make(chan error, 1)
	go func() {
		first <- scan(bulk, func(*kvpb.ScanResponse) error {
			close(sending)
			<-release // the scan stays open, holding its token
			return nil
		})
	}()
	select {
	case <-sending:
	case err := <-first:
		t.Fatalf("the first bulk read ended before it sent: %v", err)
	}

	err := scan(bulk, drop)
	busy, ok := errs.Detail(err).(*errorpb.ServerBusy)
	require.Truef(t, ok, "a second bulk read at the cap: got %v, want ServerBusy", err)
	require.Positive(t, busy.RetryAfterMs)
	require.NoError(t, scan(ctx, drop), "a foreground scan does not count against the bulk-read cap")

	close(release)
	released = true
	require.NoError(t, <-first)
	require.NoError(t, scan(bulk, drop), "the token came back when the first scan ended")
}
