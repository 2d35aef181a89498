package errs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

func desc(id uint64) *metapb.TabletDescriptor {
	return &metapb.TabletDescriptor{
		TabletId: id,
		StartKey: []byte("a"),
		EndKey:   []byte("m"),
		Epoch:    &metapb.Epoch{Version: 3, ConfVersion: 2},
	}
}

type errCase struct {
	name      string
	err       error
	code      codes.Code
	detail    proto.Message // nil when no detail
	codeStr   string
	retryable bool // retry.Classify: nothing applied
	msgHas    string
}

func cases() []errCase {
	return []errCase{
		{
			name: "NotLeader/known", err: errs.NotLeader(7, 3, "10.0.0.3:9000"),
			code: codes.Unavailable, detail: &errorpb.NotLeader{TabletId: 7, LeaderStoreId: 3, LeaderAddr: "10.0.0.3:9000"},
			codeStr: "KV:tablet:NotLeader", retryable: true, msgHas: "leader is store 3",
		},
		{
			name: "NotLeader/unknown", err: errs.NotLeader(7, 0, ""),
			code: codes.Unavailable, detail: &errorpb.NotLeader{TabletId: 7},
			codeStr: "KV:tablet:NotLeader", retryable: true, msgHas: "no leader elected yet",
		},
		{
			name: "TabletNotFound", err: errs.TabletNotFound(7, 2),
			code: codes.NotFound, detail: &errorpb.TabletNotFound{TabletId: 7, StoreId: 2},
			codeStr: "KV:tablet:TabletNotFound", retryable: true, msgHas: "tablet 7 not found on store 2",
		},
		{
			name: "KeyNotInTablet", err: errs.KeyNotInTablet([]byte("zz"), desc(9)),
			code: codes.FailedPrecondition, detail: &errorpb.KeyNotInTablet{Key: []byte("zz"), Tablet: desc(9)},
			codeStr: "KV:tablet:KeyNotInTablet", retryable: true, msgHas: "not in tablet 9",
		},
		{
			name: "EpochMismatch", err: errs.EpochMismatch(desc(4), desc(5)),
			code: codes.FailedPrecondition, detail: &errorpb.EpochMismatch{Current: []*metapb.TabletDescriptor{desc(4), desc(5)}},
			codeStr: "KV:tablet:EpochMismatch", retryable: true, msgHas: "tablet 4 epoch changed",
		},
		{
			name: "EpochMismatch/empty", err: errs.EpochMismatch(),
			code: codes.FailedPrecondition, detail: &errorpb.EpochMismatch{},
			codeStr: "KV:tablet:EpochMismatch", retryable: true, msgHas: "tablet 0 epoch changed",
		},
		{
			name: "ServerBusy", err: errs.ServerBusy("too many writes", 250),
			code: codes.ResourceExhausted, detail: &errorpb.ServerBusy{Reason: "too many writes", RetryAfterMs: 250},
			codeStr: "KV:tablet:ServerBusy", retryable: true, msgHas: "server busy: too many writes",
		},
		{
			// Routable for the client, but the request cannot succeed as is.
			name: "TableNotFound", err: errs.TableNotFound(11),
			code: codes.NotFound, detail: &errorpb.TableNotFound{TableId: 11},
			codeStr: "KV:tablet:TableNotFound", retryable: true, msgHas: "table 11 not found",
		},
		{
			// Final: the caller must pick a later read timestamp.
			name: "ReadTooOld", err: errs.ReadTooOld(7, 100, 200),
			code: codes.FailedPrecondition, detail: &errorpb.ReadTooOld{TabletId: 7, ReadTimestamp: 100, Floor: 200},
			codeStr: "KV:tablet:ReadTooOld", msgHas: "below the tablet's history floor 200",
		},
		{
			// A full store refused the write; nothing applied: back off.
			name: "DiskFull", err: errs.DiskFull(4, 1234, 500),
			code: codes.ResourceExhausted, detail: &errorpb.DiskFull{StoreId: 4, AvailableBytes: 1234, RetryAfterMs: 500},
			codeStr: "KV:store:DiskFull", retryable: true, msgHas: "store 4 is out of disk space",
		},
		{
			// A quota refused the request; nothing applied: back off.
			name: "QuotaExceeded", err: errs.QuotaExceeded("table", "t", "write-rps", 250*time.Millisecond),
			code: codes.ResourceExhausted, detail: &errorpb.QuotaExceeded{Scope: "table", Name: "t", Limit: "write-rps", RetryAfterMs: 250},
			codeStr: "KV:quota:QuotaExceeded", retryable: true, msgHas: `table "t" is over its write-rps limit`,
		},
		{
			// A flipped bit refused; nothing applied, but the client does
			// not resend on its own: the caller sends it again.
			name: "ChecksumMismatch", err: errs.ChecksumMismatch(7, 2, "at proposal"),
			code: codes.DataLoss, detail: &errorpb.ChecksumMismatch{TabletId: 7, StoreId: 2, Where: "at proposal"},
			codeStr: "KV:tablet:ChecksumMismatch", msgHas: "failed its checksum at proposal",
		},
		{
			name: "InvalidArgument", err: errs.InvalidArgument("row key too long: %d", 9000),
			code: codes.InvalidArgument, codeStr: "KV:InvalidArgument", msgHas: "row key too long: 9000",
		},
		{
			name: "Ambiguous", err: errs.Ambiguous("write to tablet %d", 5),
			code: codes.Unknown, codeStr: "KV:Unknown", msgHas: "result unknown: write to tablet 5",
		},
	}
}

// checkDetail verifies that As finds exactly the expected detail type.
func checkDetail(t *testing.T, err error, want proto.Message) {
	t.Helper()
	if want == nil {
		require.Nil(t, errs.Detail(err))
	} else {
		require.True(t, proto.Equal(want, errs.Detail(err)), "detail = %v, want %v", errs.Detail(err), want)
	}
	nl, ok := errs.As[*errorpb.NotLeader](err)
	checkAs(t, want, nl, ok)
	tnf, ok := errs.As[*errorpb.TabletNotFound](err)
	checkAs(t, want, tnf, ok)
	knt, ok := errs.As[*errorpb.KeyNotInTablet](err)
	checkAs(t, want, knt, ok)
	em, ok := errs.As[*errorpb.EpochMismatch](err)
	checkAs(t, want, em, ok)
	sb, ok := errs.As[*errorpb.ServerBusy](err)
	checkAs(t, want, sb, ok)
	tbl, ok := errs.As[*errorpb.TableNotFound](err)
	checkAs(t, want, tbl, ok)
}

func checkAs[T proto.Message](t *testing.T, want proto.Message, got T, ok bool) {
	t.Helper()
	_, sameType := want.(T)
	require.Equal(t, sameType, ok, "As[%T]", got)
	if ok {
		require.True(t, proto.Equal(want, got), "As[%T] = %v, want %v", got, got, want)
	} else {
		var zero T
		require.Equal(t, zero, got)
	}
}

func checkCase(t *testing.T, tc errCase, err error) {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok)
	require.Equal(t, tc.code, st.Code())
	require.Contains(t, st.Message(), tc.msgHas)
	checkDetail(t, err, tc.detail)
	require.Equal(t, tc.codeStr, errs.Code(err))
	require.Equal(t, tc.retryable, retry.Classify(err).NotApplied())
}

func TestConstructors(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) { checkCase(t, tc, tc.err) })
	}
}

func TestKeyNotInTabletMessage(t *testing.T) {
	err := errs.KeyNotInTablet([]byte("zz"), desc(9))
	st := status.Convert(err)
	require.Equal(t, `key "zz" is not in tablet 9 [61, 6d)`, st.Message())
}

func TestToFromProtoRoundTrip(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			pe := errs.ToProto(tc.err)
			require.NotNil(t, pe)
			require.Equal(t, uint32(tc.code), pe.Code)
			require.Equal(t, status.Convert(tc.err).Message(), pe.Message)
			if tc.detail == nil {
				require.Nil(t, pe.Detail)
			} else {
				require.NotNil(t, pe.Detail)
			}
			// Survives the wire format of errorpb.Error too.
			b, err := proto.Marshal(pe)
			require.NoError(t, err)
			var pe2 errorpb.Error
			require.NoError(t, proto.Unmarshal(b, &pe2))
			require.True(t, proto.Equal(pe, &pe2))

			back := errs.FromProto(&pe2)
			checkCase(t, tc, back)
			require.Equal(t, status.Convert(tc.err).Message(), status.Convert(back).Message())
			require.True(t, proto.Equal(pe, errs.ToProto(back)))
		})
	}
}

func TestToProtoDetailOneofs(t *testing.T) {
	check := func(err error, f func(*errorpb.Error) bool) {
		t.Helper()
		require.True(t, f(errs.ToProto(err)), "%v", err)
	}
	check(errs.NotLeader(1, 2, "x"), func(e *errorpb.Error) bool { return e.GetNotLeader().GetLeaderStoreId() == 2 })
	check(errs.TabletNotFound(1, 2), func(e *errorpb.Error) bool { return e.GetTabletNotFound().GetStoreId() == 2 })
	check(errs.KeyNotInTablet([]byte("k"), desc(3)), func(e *errorpb.Error) bool {
		return string(e.GetKeyNotInTablet().GetKey()) == "k" && e.GetKeyNotInTablet().GetTablet().GetTabletId() == 3
	})
	check(errs.EpochMismatch(desc(4)), func(e *errorpb.Error) bool { return len(e.GetEpochMismatch().GetCurrent()) == 1 })
	check(errs.ServerBusy("r", 9), func(e *errorpb.Error) bool { return e.GetServerBusy().GetRetryAfterMs() == 9 })
	check(errs.TableNotFound(5), func(e *errorpb.Error) bool { return e.GetTableNotFound().GetTableId() == 5 })
}

func TestNilAndPlainErrors(t *testing.T) {
	require.Nil(t, errs.ToProto(nil))
	require.NoError(t, errs.FromProto(nil))
	require.Nil(t, errs.Detail(nil))
	_, ok := errs.As[*errorpb.NotLeader](nil)
	require.False(t, ok)
	require.False(t, retry.Classify(nil).NotApplied())

	plain := errors.New("disk on fire")
	require.Nil(t, errs.Detail(plain))
	_, ok = errs.As[*errorpb.NotLeader](plain)
	require.False(t, ok)
	require.False(t, retry.Classify(plain).NotApplied())
	require.Equal(t, "KV:Internal", errs.Code(plain))
	pe := errs.ToProto(plain)
	require.Equal(t, uint32(codes.Unknown), pe.Code)
	require.Equal(t, "disk on fire", pe.Message)
	require.Nil(t, pe.Detail)

	wrapped := fmt.Errorf("wrapped: %w", plain)
	require.False(t, retry.Classify(wrapped).NotApplied())

	// A status error without detail.
	st := status.Error(codes.Unavailable, "conn refused")
	require.False(t, retry.Classify(st).NotApplied())
	require.Equal(t, "KV:Unavailable", errs.Code(st))
	require.Nil(t, errs.Detail(st))

	// An errorpb.Error without detail round-trips to a bare status.
	back := errs.FromProto(&errorpb.Error{Code: uint32(codes.Aborted), Message: "abort"})
	require.Equal(t, codes.Aborted, status.Code(back))
	require.Equal(t, "abort", status.Convert(back).Message())
	require.Nil(t, errs.Detail(back))
	require.False(t, retry.Classify(back).NotApplied())
}

func TestWrappedStatusErrors(t *testing.T) {
	// status.FromError unwraps, so a wrapped routable error keeps its detail.
	err := fmt.Errorf("get row: %w", errs.NotLeader(7, 3, "addr"))
	nl, ok := errs.As[*errorpb.NotLeader](err)
	require.True(t, ok)
	require.Equal(t, uint64(3), nl.GetLeaderStoreId())
	require.True(t, retry.Classify(err).NotApplied())
	require.Equal(t, "KV:tablet:NotLeader", errs.Code(err))
}

// tabletServer answers Get with the error registered for the request's table.
type tabletServer struct {
	kvpb.UnimplementedTabletServer
	byTable map[uint64]error
}

func (s *tabletServer) Get(_ context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	if err, ok := s.byTable[req.GetTableId()]; ok {
		return nil, err
	}
	return &kvpb.GetResponse{}, nil
}

func TestThroughGRPC(t *testing.T) {
	cs := cases()
	srv := &tabletServer{byTable: map[uint64]error{}}
	for i, tc := range cs {
		srv.byTable[uint64(i+1)] = tc.err
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	kvpb.RegisterTabletServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client := kvpb.NewTabletClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Sanity: a successful call.
	_, err = client.Get(ctx, &kvpb.GetRequest{TableId: 1000})
	require.NoError(t, err)

	for i, tc := range cs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Get(ctx, &kvpb.GetRequest{TableId: uint64(i + 1)})
			checkCase(t, tc, err)
			require.Equal(t, status.Convert(tc.err).Message(), status.Convert(err).Message())
			// And it can be turned into a per-row error on the client side.
			require.True(t, proto.Equal(errs.ToProto(tc.err), errs.ToProto(err)))
		})
	}

	// An unimplemented method is a plain status error: another server at
	// the store's address, so the route is refreshed.
	stream, err := client.Scan(ctx, &kvpb.ScanRequest{})
	if err == nil {
		_, err = stream.Recv() // streaming: the error comes with the first Recv
	}
	require.Equal(t, codes.Unimplemented, status.Code(err))
	require.Equal(t, retry.RefreshRoute, retry.Classify(err))
	require.True(t, strings.HasPrefix(errs.Code(err), "KV:Unimplemented"))
}
