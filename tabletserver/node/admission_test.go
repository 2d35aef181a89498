package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
)

// fullAdmitter returns an admitter with one CPU slot, and the ticket
// that holds it.
func fullAdmitter(t *testing.T) (admitter, admission.Ticket) {
	t.Helper()
	c, err := admission.New(admission.Options{Settings: admission.Settings{MinSlots: 1, MaxSlots: 1, MaxQueue: 1}})
	require.NoError(t, err)
	held, err := c.Admit(context.Background(), 0) // the only slot
	require.NoError(t, err)
	return admitter{c: c}, held
}

// Foreground Tablet methods are admitted (a write's bytes take write
// tokens); admin and background methods pass; a refused request gets
// ServerBusy without reaching the handler.
func TestAdmitterInterceptor(t *testing.T) {
	a, held := fullAdmitter(t)
	c := a.c

	called := false
	h := func(context.Context, any) (any, error) { called = true; return "ok", nil }
	info := func(m string) *grpc.UnaryServerInfo { return &grpc.UnaryServerInfo{FullMethod: m} }

	resp, err := a.unary(context.Background(), &kvpb.SplitTabletRequest{}, info(kvpb.Tablet_SplitTablet_FullMethodName), h)
	require.NoError(t, err, "admin RPCs are not admitted")
	require.Equal(t, "ok", resp)

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	called = false
	_, err = a.unary(ctx, &kvpb.MutateRowRequest{RowKey: []byte("r")}, info(kvpb.Tablet_MutateRow_FullMethodName), h)
	_, busy := errs.As[*errorpb.ServerBusy](err)
	require.True(t, busy, "got %v", err)
	require.False(t, called)

	held.Release()
	_, err = a.unary(context.Background(), &kvpb.GetRequest{}, info(kvpb.Tablet_Get_FullMethodName), h)
	require.NoError(t, err)
	require.Zero(t, c.State().SlotsUsed, "the slot is released when the handler returns")
}

// GET /admission answers the state; PUT validates, applies and answers
// the new state.
func TestAdmissionHTTP(t *testing.T) {
	c, err := admission.New(admission.Options{})
	require.NoError(t, err)
	get, put := serveAdmission(c)

	w := httptest.NewRecorder()
	get(w, httptest.NewRequest(http.MethodGet, "/admission", nil))
	require.Equal(t, http.StatusOK, w.Code)
	var st admission.State
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st))
	require.False(t, st.Settings.Disabled)

	for body, want := range map[string]string{
		`{"min_slots": 10, "max_slots": 5}`:           "min_slots",
		`{"classes": {"nope": {}}}`:                   "unknown work class",
		`{"bogus": 1}`:                                "unknown field",
		`not json`:                                    "not valid JSON",
		`{"max_queue":` + strings.Repeat(" ", 70<<10): "larger than",
	} {
		w = httptest.NewRecorder()
		put(w, httptest.NewRequest(http.MethodPut, "/admission", strings.NewReader(body)))
		require.NotEqual(t, http.StatusOK, w.Code, body)
		require.Contains(t, w.Body.String(), want)
	}

	w = httptest.NewRecorder()
	put(w, httptest.NewRequest(http.MethodPut, "/admission", strings.NewReader(`{"disabled": true, "classes": {"snapshot": {"max_bytes_per_sec": 1048576}}}`)))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &st))
	require.True(t, st.Settings.Disabled)
	require.True(t, c.Settings().Disabled)
	require.Equal(t, float64(1<<20), st.Rates["snapshot"])
}

// fakeStream is a server stream with only a context.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

// A Scan marked as a bulk read is not admitted as foreground work: it
// passes while every slot is taken (the store paces it as it reads); an
// unmarked Scan is refused.
func TestAdmitterLetsBulkReadsThrough(t *testing.T) {
	a, held := fullAdmitter(t)
	defer held.Release()

	called := false
	h := func(any, grpc.ServerStream) error { called = true; return nil }
	info := &grpc.StreamServerInfo{FullMethod: kvpb.Tablet_Scan_FullMethodName, IsServerStream: true}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	err := a.stream(nil, fakeStream{ctx: ctx}, info, h)
	_, busy := errs.As[*errorpb.ServerBusy](err)
	require.True(t, busy, "got %v", err)
	require.False(t, called)

	bulk := metadata.NewIncomingContext(ctx, metadata.Pairs(admission.BulkReadHeader, "1"))
	require.NoError(t, a.stream(nil, fakeStream{ctx: bulk}, info, h))
	require.True(t, called, "a bulk read does not wait for a foreground slot")
}
