package importer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/kvpb"
)

// TestVerifyScansAreBulkReads: every Tablet Scan the verifier sends (the
// trailing scans up to each checkpointed key and the last one to the
// table's end) carries the bulk-read marker (admission.BulkReadHeader), so
// the tablet servers pace verification as background work instead of
// admitting it as a foreground read. The job's kvclient records, per Scan
// stream, what admission.IsBulkRead would see on the server side of the
// call.
func TestVerifyScansAreBulkReads(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	var scans []bool // per Scan stream: marked as a bulk read
	record := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method == kvpb.Tablet_Scan_FullMethodName {
			md, _ := metadata.FromOutgoingContext(ctx)
			mu.Lock()
			scans = append(scans, admission.IsBulkRead(metadata.NewIncomingContext(ctx, md)))
			mu.Unlock()
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), DialOptions: []grpc.DialOption{grpc.WithChainStreamInterceptor(record)}})
	require.NoError(t, err)
	defer kv.Close()
	ti, err := kv.CreateTable(ctx, "bulk", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	tbl, err := kv.Table(ctx, "bulk")
	require.NoError(t, err)

	// The "imported" rows, at the job's timestamp, and their digest.
	const rows = 30
	ts := time.Now().UnixMicro()
	var sum cellSum
	var muts []kvclient.RowMutation
	for i := range rows {
		row, v := []byte(fmt.Sprintf("row%03d", i)), []byte(fmt.Sprintf("v%d", i))
		muts = append(muts, kvclient.RowMutation{Row: row, Mutations: []kvclient.Mutation{kvclient.SetCellAt("f", []byte("q"), v, ts)}})
		sum.add(row, "f", []byte("q"), v)
	}
	for i, err := range tbl.BatchMutate(ctx, muts) {
		require.NoError(t, err, "row %d", i)
	}

	j := &job{o: Options{Table: "bulk"}, kv: kv, stopper: stop.New(),
		cp: &checkpoint{Version: 1, Timestamp: ts, RowsIngested: rows, Checksum: sum.String()}}
	defer func() { require.NoError(t, j.stopper.Stop(context.Background())) }()
	// Three checkpointed prefixes, then the rest: four scans.
	v := &verifier{upTo: make(chan []byte, 3), done: make(chan struct{})}
	for _, r := range []string{"row004", "row011", "row023"} {
		v.upTo <- keys.CellKey(ti.ID, []byte(r), "f", []byte("q"), ts)
	}
	close(v.upTo)
	v.err = j.runVerifier(ctx, v)
	close(v.done)
	require.NoError(t, j.finishVerify(v))
	require.EqualValues(t, rows, j.cp.VerifiedRows)
	require.Equal(t, j.cp.Checksum, j.cp.VerifiedChecksum)

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(scans), 4, "the verifier's scans did not reach the tablet servers")
	for i, bulk := range scans {
		require.True(t, bulk, "verification Scan %d of %d is not marked as a bulk read (%s)", i+1, len(scans), admission.BulkReadHeader)
	}
}
