package thriftgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
)

// DefaultPort is the port HBase's Thrift server listens on.
const DefaultPort = 9090

// Options configure a Server. Zero fields take their defaults.
type Options struct {
	// Client is the Shale client the gateway serves from. Required. The
	// Server does not close it.
	Client *kvclient.Client
	// Addr is the HOST:PORT to listen on. Default ":9090".
	Addr string
	// Framed selects the framed transport (default: buffered, as HBase).
	Framed bool
	// Compact selects the compact protocol (default: binary, as HBase).
	Compact bool
	// MaxMessageSize bounds a message, a frame and every string, binary
	// and container size a request declares. Default 64 MiB.
	MaxMessageSize int32
	// ScannerIdleTimeout closes a scanner unused for this long. Default 60s.
	ScannerIdleTimeout time.Duration
	// MaxResultBytes bounds the rows of one getScannerRows or
	// getScannerResults reply, whatever numRows asks: getScannerRows
	// returns fewer rows (at least one), which HBase clients handle by
	// asking again; getScannerResults, which cannot be resumed, fails.
	// Default 16 MiB.
	MaxResultBytes int
	// MaxScanners bounds the scanners open at once on one connection.
	// Default 1000.
	MaxScanners int
	// RequestTimeout bounds one request to Shale. Default 30s.
	RequestTimeout time.Duration
	// Logger receives connection and panic logs. Default slog.Default().
	Logger *slog.Logger
	// HTTPAddr is the HOST:PORT of the gateway's HTTP server: /healthz,
	// /metrics and Go profiles under /debug/pprof/. Empty: none (the
	// `shale thrift` command defaults to 127.0.0.1:9095).
	HTTPAddr string
	// Registry gets the gateway's metrics and is served on /metrics.
	// Default: a new registry with the Go and process collectors. Pass
	// the one given to the kvclient to export both.
	Registry *prometheus.Registry
}

// EnsureDefaults returns a copy of o with zero (or negative) fields set to
// their defaults.
func (o Options) EnsureDefaults() Options {
	if o.Addr == "" {
		o.Addr = fmt.Sprintf(":%d", DefaultPort)
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 64 << 20
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 16 << 20
	}
	if o.ScannerIdleTimeout <= 0 {
		o.ScannerIdleTimeout = 60 * time.Second
	}
	if o.MaxScanners <= 0 {
		o.MaxScanners = 1000
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = metrics.NewRegistry()
	}
	return o
}

// Validate rejects options a Server cannot run with.
func (o Options) Validate() error {
	if o.Client == nil {
		return errors.New("thriftgw: Options.Client is required")
	}
	return nil
}

// Server is a running Thrift gateway.
type Server struct {
	opts     Options
	sock     *thrift.TServerSocket
	conns    *connTracker
	srv      *thrift.TSimpleServer
	handler  *handler
	metrics  *gatewayMetrics
	http     *http.Server // nil without Options.HTTPAddr
	httpLis  net.Listener
	closing  atomic.Bool
	stopper  *stop.Stopper // the janitor, the HTTP server and Run's Serve
	once     sync.Once
	closeErr error
}

// Listen validates the options and binds the listening socket. Call Serve
// to accept connections.
func Listen(o Options) (*Server, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	sock, err := thrift.NewTServerSocket(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("thriftgw: %w", err)
	}
	if err := sock.Listen(); err != nil {
		return nil, fmt.Errorf("thriftgw: listen on %s: %w", o.Addr, err)
	}
	cfg := &thrift.TConfiguration{
		MaxMessageSize: o.MaxMessageSize,
		MaxFrameSize:   o.MaxMessageSize,
	}
	var tf thrift.TTransportFactory
	if o.Framed {
		tf = thrift.NewTFramedTransportFactoryConf(thrift.NewTTransportFactory(), cfg)
	} else {
		tf = thrift.NewTBufferedTransportFactory(8192)
	}
	var pf thrift.TProtocolFactory
	if o.Compact {
		pf = thrift.NewTCompactProtocolFactoryConf(cfg)
	} else {
		pf = thrift.NewTBinaryProtocolFactoryConf(cfg)
	}
	s := &Server{opts: o, sock: sock, stopper: stop.New(), metrics: newGatewayMetrics(o.Registry)}
	s.handler = newHandler(s)
	s.conns = &connTracker{TServerSocket: sock, conns: map[*trackedConn]struct{}{}, onClose: s.handler.scanners.closeOwner}
	s.srv = thrift.NewTSimpleServerFactory4(connProcessorFactory{s}, s.conns, tf, pf)
	if err := s.stopper.Every(context.Background(), "thriftgw.scanner-janitor", janitorPeriod(o.ScannerIdleTimeout), s.expireScanners); err != nil {
		sock.Close()
		return nil, fmt.Errorf("thriftgw: %w", err)
	}
	if err := s.startHTTP(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// connProcessorFactory gives every connection its own processor, bound to
// the connection's share of the scanner registry. TSimpleServer asks for
// one per accepted transport, before reading from it, and closes the
// transport when the connection ends, which frees the connection's
// scanners (trackedConn.Close).
type connProcessorFactory struct{ s *Server }

func (f connProcessorFactory) GetProcessor(trans thrift.TTransport) thrift.TProcessor {
	o := &owner{}
	if c, ok := trans.(*trackedConn); ok {
		o = c.owner
	}
	h := &connHandler{handler: f.s.handler, owner: o}
	return thrift.WrapProcessor(hbase.NewTHBaseServiceProcessor(h), f.s.metrics.middleware, f.s.recoverMiddleware)
}

// Addr is the address the gateway listens on.
func (s *Server) Addr() net.Addr { return s.sock.Addr() }

// OpenScanners returns the number of scanners open across all connections
// (for monitoring and tests).
func (s *Server) OpenScanners() int { return s.handler.scanners.len() }

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve() error {
	err := s.srv.Serve()
	select {
	case <-s.stopper.ShouldQuiesce():
		return nil
	default:
		return err
	}
}

// Run serves until ctx ends or serving fails, then closes the gateway. It
// returns the serving error, or Close's.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	if err := s.stopper.RunAsyncTask(ctx, "thriftgw.serve", func(context.Context) { served <- s.Serve() }); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return s.Close()
	case err := <-served:
		_ = s.Close()
		return err
	}
}

// Close stops accepting connections, closes every scanner and waits for
// the gateway's goroutines. It does not close Options.Client.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.closing.Store(true)
		if s.http != nil {
			_ = s.http.Close()
		}
		s.stopper.Quiesce()
		s.conns.closeAll()
		s.closeErr = s.srv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := s.stopper.Stop(ctx); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("thriftgw: closing: %w", err)
		}
		s.handler.scanners.closeAll()
	})
	return s.closeErr
}

// closeTimeout bounds Close's wait for the gateway's goroutines once every
// connection is closed (they then end at once).
const closeTimeout = 30 * time.Second

// janitorPeriod is how often idle scanners are looked for: a quarter of
// the idle timeout, within [10ms, 5s].
func janitorPeriod(idle time.Duration) time.Duration {
	return min(max(idle/4, 10*time.Millisecond), 5*time.Second)
}

func (s *Server) expireScanners(context.Context) {
	s.handler.scanners.expire(time.Now(), s.opts.ScannerIdleTimeout)
}

// recoverMiddleware turns a panic in a handler into a TIOError reply
// instead of crashing the gateway.
func (s *Server) recoverMiddleware(name string, next thrift.TProcessorFunction) thrift.TProcessorFunction {
	return panicRecoverer{name: name, next: next, log: s.opts.Logger}
}

type panicRecoverer struct {
	name string
	next thrift.TProcessorFunction
	log  *slog.Logger
}

func (p panicRecoverer) Process(ctx context.Context, seqID int32, in, out thrift.TProtocol) (ok bool, err thrift.TException) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		p.log.Error("thrift gateway: panic in handler", "method", p.name, "panic", r, "stack", string(debug.Stack()))
		x := thrift.NewTApplicationException(thrift.INTERNAL_ERROR, fmt.Sprintf("internal error in %s: %v", p.name, r))
		if e := out.WriteMessageBegin(ctx, p.name, thrift.EXCEPTION, seqID); e != nil {
			ok, err = false, thrift.WrapTException(e)
			return
		}
		_ = x.Write(ctx, out)
		_ = out.WriteMessageEnd(ctx)
		if e := out.Flush(ctx); e != nil {
			ok, err = false, thrift.WrapTException(e)
			return
		}
		ok, err = true, nil
	}()
	return p.next.Process(ctx, seqID, in, out)
}

// connTracker remembers the open client connections so that Close can end
// them (TSimpleServer.Stop otherwise waits for clients to hang up), and
// tells the scanner registry when a connection closes.
type connTracker struct {
	*thrift.TServerSocket
	onClose func(*owner)
	mu      sync.Mutex
	closed  bool
	conns   map[*trackedConn]struct{}
}

// trackedConn is one accepted client connection.
type trackedConn struct {
	thrift.TTransport
	t     *connTracker
	owner *owner // the connection's scanners
	once  sync.Once
}

func (c *trackedConn) Close() error {
	var err error
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		err = c.TTransport.Close()
		c.t.onClose(c.owner)
	})
	return err
}

func (t *connTracker) Accept() (thrift.TTransport, error) {
	tr, err := t.TServerSocket.Accept()
	if err != nil || tr == nil {
		return tr, err
	}
	c := &trackedConn{TTransport: tr, t: t, owner: &owner{}}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		tr.Close()
		return c, nil
	}
	t.conns[c] = struct{}{}
	return c, nil
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
