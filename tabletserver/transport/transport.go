package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/golang/snappy"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/proto/transportpb"
)

// Resolver maps a store ID to its transport address.
type Resolver interface {
	Resolve(storeID uint64) (addr string, err error)
}

// A CachingResolver's answers can go stale: a store restarts on another
// address. The transport calls Invalidate when it cannot reach a store, so
// a later Resolve asks again rather than keep the old address for the
// cache's lifetime.
type CachingResolver interface {
	Resolver
	Invalidate(storeID uint64)
}

// Handler is the receiving side of a Transport, implemented by the store.
type Handler interface {
	// HandleRaftBatch receives every inbound batch (an empty batch is a
	// liveness ping). It runs on the sending store's stream goroutine, so
	// batches from different stores arrive concurrently, and must return
	// quickly; the batch is owned by the handler afterwards.
	HandleRaftBatch(b *transportpb.RaftMessageBatch)
	// HandleSnapshot consumes an inbound snapshot; next returns key/value
	// pairs in the order sent and io.EOF after the final chunk. Any other
	// error from next is a status error (codes.DataLoss for corruption,
	// codes.InvalidArgument for malformed framing, or the stream's
	// cancellation) and is what the sender sees, whatever HandleSnapshot
	// returns. Return an error to reject the snapshot (the sender sees it);
	// returning nil before io.EOF accepts the snapshot and ends the stream.
	// next is not safe for concurrent use. Returned slices are not reused by
	// the transport; empty keys or values may be nil.
	HandleSnapshot(ctx context.Context, h *transportpb.SnapshotHeader, next func() (key, value []byte, err error)) error
	// ReportUnreachable is called when messages to storeID could not be
	// delivered (dial/stream failure or queue overflow). It runs on the
	// destination's send goroutine, never inside Send, so it may call Send.
	ReportUnreachable(storeID uint64)
}

// ErrClosed is returned by SendSnapshot once Close has been called.
var ErrClosed = errors.New("transport: closed")

// Transport sends and receives raft traffic for one store. All methods are
// safe for concurrent use.
type Transport struct {
	opts    Options
	handler Handler
	log     *slog.Logger
	// limiter paces outgoing snapshot bytes across all snapshots.
	limiter *rate.Limiter

	// ctx is canceled by Close; every goroutine and outgoing stream derives
	// from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	mu struct {
		sync.Mutex
		// peers holds two send queues and goroutines per destination
		// store: the data lane (Send) and the control lane (SendControl).
		peers map[peerKey]*peer
		// conns caches one client connection per destination store, shared
		// by its raft stream and its snapshots.
		conns map[uint64]*conn
	}
}

type conn struct {
	addr string
	cc   *grpc.ClientConn
}

// New returns a Transport for opts.StoreID that delivers inbound traffic to
// h. Call Register to serve inbound traffic and Close to release resources.
func New(opts Options, h Handler) (*Transport, error) {
	opts = opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	limit, burst := rate.Inf, 0
	if opts.SnapshotBytesPerSec > 0 {
		limit = rate.Limit(opts.SnapshotBytesPerSec)
		// The burst is one compressed chunk, so the limiter starts nearly
		// empty and even short snapshots are paced.
		burst = snappy.MaxEncodedLen(opts.SnapshotChunkBytes)
		if burst < 0 {
			burst = math.MaxInt32
		}
	}
	t := &Transport{
		opts:    opts,
		handler: h,
		log:     opts.Logger.With("store", opts.StoreID),
		limiter: rate.NewLimiter(limit, burst),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.mu.peers = make(map[peerKey]*peer)
	t.mu.conns = make(map[uint64]*conn)
	return t, nil
}

// Register registers the RaftTransport service on s, a server built with
// grpcutil.ServerOptions.
func (t *Transport) Register(s *grpc.Server) {
	transportpb.RegisterRaftTransportServer(s, &server{t: t})
}

// Close stops the send goroutines, aborts outgoing snapshots, closes the
// client connections, and makes inbound streams fail. Send after Close is a
// no-op and SendSnapshot returns ErrClosed. Close does not stop the
// grpc.Server passed to Register. It is idempotent.
func (t *Transport) Close() {
	t.mu.Lock()
	if t.closed.Swap(true) {
		t.mu.Unlock()
		return
	}
	conns := t.mu.conns
	t.mu.conns = nil
	t.mu.peers = nil
	t.mu.Unlock()

	t.cancel()
	t.wg.Wait()
	for _, c := range conns {
		_ = c.cc.Close()
	}
}

// Conn returns the client connection to storeID (the peer's gRPC server,
// which also serves its Tablet API), shared with the raft traffic.
func (t *Transport) Conn(storeID uint64) (*grpc.ClientConn, error) { return t.conn(storeID) }

// invalidate tells a caching resolver that storeID was not reachable at
// the address it gave.
func (t *Transport) invalidate(storeID uint64) {
	if c, ok := t.opts.Resolver.(CachingResolver); ok {
		c.Invalidate(storeID)
	}
}

// conn returns the client connection to storeID, creating it or replacing
// it if the store's address changed.
func (t *Transport) conn(storeID uint64) (*grpc.ClientConn, error) {
	addr, err := t.opts.Resolver.Resolve(storeID)
	if err != nil {
		return nil, fmt.Errorf("transport: resolve store %d: %w", storeID, err)
	}
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	old := t.mu.conns[storeID]
	if old != nil && old.addr == addr {
		t.mu.Unlock()
		return old.cc, nil
	}
	cc, err := grpc.NewClient(addr, append(grpcutil.DialOptions(t.opts.TLS),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: grpcutil.ReconnectBackoff, MinConnectTimeout: t.opts.DialTimeout}))...)
	if err != nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("transport: dial store %d at %s: %w", storeID, addr, err)
	}
	t.mu.conns[storeID] = &conn{addr: addr, cc: cc}
	t.mu.Unlock()
	if old != nil {
		t.log.Info("store address changed", "peer", storeID, "old", old.addr, "new", addr)
		_ = old.cc.Close()
	}
	return cc, nil
}
