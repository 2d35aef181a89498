package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/metapb"
)

func TestClassify(t *testing.T) {
	desc := &metapb.TabletDescriptor{TabletId: 7, StartKey: []byte("a"), EndKey: []byte("m"), Epoch: &metapb.Epoch{Version: 2}}
	for _, tc := range []struct {
		name string
		err  error
		want retry.Action
	}{
		// Every typed error Shale puts on the wire.
		{"NotLeader with hint", errs.NotLeader(7, 3, "10.0.0.3:9000"), retry.RetryElsewhere},
		{"NotLeader without hint", errs.NotLeader(7, 0, ""), retry.RetryElsewhere},
		{"EpochMismatch", errs.EpochMismatch(desc), retry.RefreshRoute},
		{"EpochMismatch without descriptors", errs.EpochMismatch(), retry.RefreshRoute},
		{"KeyNotInTablet", errs.KeyNotInTablet([]byte("z"), desc), retry.RefreshRoute},
		{"TabletNotFound", errs.TabletNotFound(7, 2), retry.RefreshRoute},
		{"ServerBusy", errs.ServerBusy("compaction debt", 50), retry.Backoff},
		{"QuotaExceeded", errs.QuotaExceeded("user", "alice", "read-rps", time.Second), retry.Backoff},
		{"TableNotFound", errs.TableNotFound(9), retry.Backoff},
		{"InvalidArgument", errs.InvalidArgument("empty row key"), retry.Fail},
		// Sent without a verdict: a write may have applied.
		{"Ambiguous (result unknown)", errs.Ambiguous("leadership lost"), retry.Ambiguous},
		{"Unavailable without detail", status.Error(codes.Unavailable, "connection reset"), retry.Ambiguous},
		{"DeadlineExceeded status", status.Error(codes.DeadlineExceeded, "deadline"), retry.Ambiguous},
		{"Canceled status", status.Error(codes.Canceled, "canceled"), retry.Ambiguous},
		{"context deadline", fmt.Errorf("rpc: %w", context.DeadlineExceeded), retry.Ambiguous},
		{"context canceled", context.Canceled, retry.Ambiguous},
		// Not sent at all.
		{"not sent", fmt.Errorf("%w: store 3", retry.ErrNotSent), retry.RetryElsewhere},
		// Another server at the store's old address: nothing applied.
		{"Unimplemented", status.Error(codes.Unimplemented, "unknown service"), retry.RefreshRoute},
		// Everything else fails, the typed details of a wrapped status too.
		{"wrapped NotLeader", fmt.Errorf("ingest: %w", errs.NotLeader(7, 3, "")), retry.RetryElsewhere},
		{"plain ResourceExhausted (message too large)", status.Error(codes.ResourceExhausted, "message larger than max"), retry.Fail},
		{"NotFound without detail", status.Error(codes.NotFound, "no staged SST"), retry.Fail},
		{"DataLoss", status.Error(codes.DataLoss, "checksum mismatch"), retry.Fail},
		{"Aborted", status.Error(codes.Aborted, "aborted"), retry.Fail},
		{"FailedPrecondition without detail", status.Error(codes.FailedPrecondition, "no"), retry.Fail},
		{"PermissionDenied", status.Error(codes.PermissionDenied, "no"), retry.Fail},
		{"unknown Go error", errors.New("boom"), retry.Fail},
		{"nil", nil, retry.Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, retry.Classify(tc.err), "%v", tc.err)
		})
	}
}

func TestExponentialGrowsWithJitterAndCaps(t *testing.T) {
	b := retry.NewExponential(10*time.Millisecond, 80*time.Millisecond)
	// Intervals 10, 20, 40, 80, 80: each delay within ±50% of it.
	for i, base := range []time.Duration{10, 20, 40, 80, 80, 80} {
		base *= time.Millisecond
		d := b.Next()
		require.GreaterOrEqual(t, d, base/2, "step %d", i)
		require.LessOrEqual(t, d, base*3/2, "step %d", i)
	}
	b.Reset()
	require.LessOrEqual(t, b.Next(), 15*time.Millisecond)
}

func TestWaitHonoursAtLeastAndContext(t *testing.T) {
	b := retry.NewExponential(time.Millisecond, time.Millisecond)
	start := time.Now()
	require.NoError(t, b.Wait(context.Background(), 30*time.Millisecond))
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, retry.NewExponential(time.Hour, time.Hour).Wait(ctx, 0), context.Canceled)
}
