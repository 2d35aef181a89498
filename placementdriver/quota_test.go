package placementdriver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/pdpb"
)

// Quotas are in PD's replicated metadata: concurrent changes are all kept
// (compare-and-swap) and a new leader has them.
func TestQuotasConcurrentChangesAndFailover(t *testing.T) {
	pd := startPD(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := pd.client()
	pd.leader(ctx, cl)

	const n = 6
	for i := range n {
		_, err := cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: fmt.Sprintf("user%d", i)})
		require.NoError(t, err)
	}
	errs := make(chan error, n)
	for i := range n {
		go func() { //stop:short-lived joined through errs below
			_, err := cl.SetQuota(ctx, &pdpb.SetQuotaRequest{User: fmt.Sprintf("user%d", i), Limits: &pdpb.QuotaLimits{ReadRps: uint64(10 + i)}})
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	before, err := cl.ListQuotas(ctx, &pdpb.ListQuotasRequest{})
	require.NoError(t, err)
	require.Len(t, before.State.Quotas, n, "every concurrent change is kept")
	require.Equal(t, uint64(n), before.State.Version)

	// Bad requests: typed errors, nothing changed.
	_, err = cl.SetQuota(ctx, &pdpb.SetQuotaRequest{User: "nobody", Limits: &pdpb.QuotaLimits{ReadRps: 1}})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = cl.SetQuota(ctx, &pdpb.SetQuotaRequest{Table: "no-such-table", Limits: &pdpb.QuotaLimits{ReadRps: 1}})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = cl.SetQuota(ctx, &pdpb.SetQuotaRequest{User: "user0", Limits: &pdpb.QuotaLimits{WriteBytes: 1 << 50}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = cl.SetQuota(ctx, &pdpb.SetQuotaRequest{User: "user0"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = cl.RemoveQuota(ctx, &pdpb.RemoveQuotaRequest{User: "user0", Limits: []string{"bogus"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))

	old := pd.leader(ctx, cl)
	pd.stop(old)
	testutils.SucceedsSoon(t, func() error {
		if next := pd.leader(ctx, cl); next == old {
			return errorf("leader still %s", old)
		}
		return nil
	})
	_, err = cl.RemoveQuota(ctx, &pdpb.RemoveQuotaRequest{User: "user0"})
	require.NoError(t, err)
	after, err := cl.ListQuotas(ctx, &pdpb.ListQuotasRequest{})
	require.NoError(t, err)
	require.Len(t, after.State.Quotas, n-1)
	require.Equal(t, before.State.Version+1, after.State.Version)
}
