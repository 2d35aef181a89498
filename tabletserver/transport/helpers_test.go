package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/transportpb"
)

// testResolver is a mutable store ID → address map.
type testResolver struct {
	mu    sync.Mutex
	addrs map[uint64]string
}

func newTestResolver() *testResolver { return &testResolver{addrs: map[uint64]string{}} }

func (r *testResolver) set(id uint64, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs[id] = addr
}

func (r *testResolver) Resolve(id uint64) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.addrs[id]; ok {
		return a, nil
	}
	return "", fmt.Errorf("store %d unknown", id)
}

// recorder is a Handler that records what it receives.
type recorder struct {
	mu          sync.Mutex
	batches     []*transportpb.RaftMessageBatch
	unreachable map[uint64]int
	// snapshot handles inbound snapshots; nil drains and discards them.
	snapshot func(ctx context.Context, h *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error
	// hold, if set, runs before a batch is recorded (a slow receiver).
	hold func(*transportpb.RaftMessageBatch)
}

var _ Handler = (*recorder)(nil)

func (r *recorder) HandleRaftBatch(b *transportpb.RaftMessageBatch) {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		hold(b)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
}

func (r *recorder) HandleSnapshot(ctx context.Context, h *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
	r.mu.Lock()
	fn := r.snapshot
	r.mu.Unlock()
	if fn != nil {
		return fn(ctx, h, next)
	}
	return drain(next)
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[id]++
}

func (r *recorder) setSnapshot(fn func(context.Context, *transportpb.SnapshotHeader, func() ([]byte, []byte, error)) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapshot = fn
}

func (r *recorder) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

// messages returns all received messages in arrival order.
func (r *recorder) messages() []*transportpb.RaftMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*transportpb.RaftMessage
	for _, b := range r.batches {
		out = append(out, b.Messages...)
	}
	return out
}

func (r *recorder) batchList() []*transportpb.RaftMessageBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*transportpb.RaftMessageBatch(nil), r.batches...)
}

func (r *recorder) has(tablet uint64) bool {
	return r.expect(tablet) == nil
}

// expect says why no message for tablet has arrived, or nil.
func (r *recorder) expect(tablet uint64) error {
	msgs := r.messages()
	for _, m := range msgs {
		if m.TabletId == tablet {
			return nil
		}
	}
	return fmt.Errorf("no message for tablet %d among %d received", tablet, len(msgs))
}

// expectUnreachable says why store id was not reported unreachable, or nil.
func (r *recorder) expectUnreachable(id uint64) error {
	if r.unreachableCount(id) == 0 {
		return fmt.Errorf("store %d not reported unreachable yet", id)
	}
	return nil
}

func drain(next func() ([]byte, []byte, error)) error {
	for {
		if _, _, err := next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// testNode is a store: a Transport served by a real gRPC server on
// 127.0.0.1.
type testNode struct {
	id   uint64
	tr   *Transport
	h    *recorder
	addr string

	mu  sync.Mutex
	srv *grpc.Server
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startNode(t *testing.T, id uint64, res *testResolver, opts Options) *testNode {
	t.Helper()
	opts.StoreID = id
	if opts.Resolver == nil {
		opts.Resolver = res
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	n := &testNode{id: id, h: &recorder{unreachable: map[uint64]int{}}}
	var err error
	n.tr, err = New(opts, n.h)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n.addr = lis.Addr().String()
	n.serve(lis)
	res.set(id, n.addr)
	t.Cleanup(n.stop)
	return n
}

func (n *testNode) serve(lis net.Listener) {
	srv := grpc.NewServer(grpcutil.ServerOptions(nil)...)
	n.tr.Register(srv)
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	go func() { _ = srv.Serve(lis) }()
}

// stopServer kills the gRPC server, as if the process died.
func (n *testNode) stopServer() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// restartServer serves the same Transport again on the same address.
func (n *testNode) restartServer(t *testing.T) {
	t.Helper()
	var lis net.Listener
	testutils.SucceedsSoon(t, func() (err error) {
		lis, err = net.Listen("tcp", n.addr)
		return err
	})
	n.serve(lis)
}

func (n *testNode) stop() {
	n.tr.Close()
	n.stopServer()
}

// msg builds a message whose payload is seq, so tests can check order.
func msg(tablet, from, to, seq uint64) *transportpb.RaftMessage {
	return &transportpb.RaftMessage{
		TabletId:  tablet,
		FromStore: from,
		ToStore:   to,
		Message:   binary.AppendUvarint(nil, seq),
	}
}

func seqOf(t *testing.T, m *transportpb.RaftMessage) uint64 {
	t.Helper()
	v, n := binary.Uvarint(m.Message)
	require.Positive(t, n)
	return v
}
