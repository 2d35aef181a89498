package thriftgw

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
)

// A write refused for lack of disk space is a TIOError an HBase client
// can tell apart by its exception name.
func TestDiskFullIOError(t *testing.T) {
	err := ioError(&kvclient.Error{Kind: kvclient.ErrDiskFull, Msg: "put", Cause: errs.DiskFull(2, 0, 500)})
	te, ok := err.(*hbase.TIOError)
	require.True(t, ok, "%T", err)
	require.True(t, strings.HasPrefix(te.GetMessage(), "DiskOutOfSpaceException: "), te.GetMessage())
}

// A request a quota kept refusing is HBase's RpcThrottlingException, with
// the wait interval the store asked for.
func TestQuotaExceededIOError(t *testing.T) {
	err := ioError(&kvclient.Error{Kind: kvclient.ErrQuotaExceeded, Msg: "put", Cause: errs.QuotaExceeded("table", "t", "write-rps", 1500*time.Millisecond)})
	te, ok := err.(*hbase.TIOError)
	require.True(t, ok, "%T", err)
	require.True(t, strings.HasPrefix(te.GetMessage(), "RpcThrottlingException: wait 1.5s: "), te.GetMessage())
}

// A request an overloaded store kept refusing is HBase's
// RegionTooBusyException, which its clients back off from, with the
// store's retry-after hint.
func TestServerBusyIOError(t *testing.T) {
	err := ioError(&kvclient.Error{Kind: kvclient.ErrServerBusy, Msg: "get", Cause: errs.ServerBusy("store overloaded", 250)})
	te, ok := err.(*hbase.TIOError)
	require.True(t, ok, "%T", err)
	require.True(t, strings.HasPrefix(te.GetMessage(), "RegionTooBusyException: "), te.GetMessage())
	require.Contains(t, te.GetMessage(), "retry after 250ms")
}
