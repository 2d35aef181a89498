package thriftgw

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
)

// DefaultPort is the port HBase's Thrift server listens on.
const DefaultPort = 9090

// Options configure a Server. Zero fields take their defaults.
type Options struct {
	// Client is the Shale client the gateway serves from. Required. The
	// Server does not close it.
	Client *kvclient.Client
	// Addr is the HOST:PORT to listen on. Default "127.0.0.1:9090": only
	// local clients, until an operator chooses an address to expose.
	Addr string
	// Thrift1Addr, if set, is a second HOST:PORT serving HBase's Thrift1
	// service Hbase (proto/hbase1.thrift), as HBase runs its thrift and
	// thrift2 servers apart. It shares the transport, protocol, TLS,
	// authorization and limits of Addr (MaxConnections applies to each
	// listener). Empty: no Thrift1.
	Thrift1Addr string
	// TLS, when set, serves TLS with its certificate and requires a client
	// certificate signed by the cluster's CA (the caller's identity, see
	// PeerCertificate). nil: plaintext (--insecure).
	TLS *security.Reloader
	// Framed selects the framed transport (default: buffered, as HBase).
	Framed bool
	// Compact selects the compact protocol (default: binary, as HBase).
	Compact bool
	// MaxMessageSize bounds a message, a frame and every string, binary
	// and container size a request declares. Default 64 MiB.
	MaxMessageSize int32
	// MaxContainerElements bounds the elements all lists, sets and maps
	// of one request declare together (the generated code allocates them
	// up front). Default 1,048,576.
	MaxContainerElements int
	// MaxConnections bounds the client connections open at once; more are
	// closed as they arrive. Default 1024.
	MaxConnections int
	// IdleTimeout closes a connection on which no request starts for this
	// long. Default 10m (longer than ScannerIdleTimeout, so that a client
	// between two pages of a scan keeps its connection).
	IdleTimeout time.Duration
	// FrameTimeout closes a connection that takes longer than this to
	// send one request, counted from its first byte, or to take one
	// reply. Default 30s.
	FrameTimeout time.Duration
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
	// Authz decides who may call what (internal/authz). In Secure mode
	// each connection acts as its client certificate's user. Nil: no
	// checks (an insecure gateway).
	Authz *authz.Authorizer
	// HTTPAddr is the HOST:PORT of the gateway's HTTP server: /healthz,
	// /metrics and Go profiles under /debug/pprof/. Empty: none (the
	// `shale thrift` command defaults to 127.0.0.1:9095). With TLS it is
	// served over TLS and authorized by Authz (which must then be Secure).
	HTTPAddr string
	// Registry gets the gateway's metrics and is served on /metrics.
	// Default: a new registry with the Go and process collectors. Pass
	// the one given to the kvclient to export both.
	Registry *prometheus.Registry

	// sendBuffer, when positive, is the accepted connections' socket send
	// buffer (SO_SNDBUF) in bytes. Tests only (export_test.go): a small
	// one makes a client that takes no replies fill the buffers after a
	// few hundred replies rather than the ~100,000 the kernel's default
	// holds.
	sendBuffer int
}

// EnsureDefaults returns a copy of o with zero (or negative) fields set to
// their defaults.
func (o Options) EnsureDefaults() Options {
	if o.Addr == "" {
		o.Addr = fmt.Sprintf("127.0.0.1:%d", DefaultPort)
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 64 << 20
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 16 << 20
	}
	if o.MaxContainerElements <= 0 {
		o.MaxContainerElements = 1 << 20
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1024
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.FrameTimeout <= 0 {
		o.FrameTimeout = 30 * time.Second
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
	if o.TLS != nil && o.HTTPAddr != "" && (o.Authz == nil || !o.Authz.Secure()) {
		// Without it every certificate of the CA could read profiles.
		return errors.New("thriftgw: a gateway with TLS and an HTTP port needs a Secure Options.Authz (docs/security.md)")
	}
	return nil
}

// Server is a running Thrift gateway.
type Server struct {
	opts     Options
	sock     *thrift.TServerSocket
	conns    *connTracker
	srv      *thrift.TSimpleServer
	t1       *endpoint // the Thrift1 listener; nil without Options.Thrift1Addr
	handler  *handler
	metrics  *gatewayMetrics
	http     *http.Server // nil without Options.HTTPAddr
	httpLis  net.Listener
	closing  atomic.Bool
	stopper  *stop.Stopper // the janitor, the HTTP server and Run's Serve
	once     sync.Once
	closeErr error
	// testIdentity, when set (export_test.go), is every connection's
	// identity instead of its certificate's.
	testIdentity func() (authz.Identity, error)
}

// Listen validates the options and binds the listening socket. Call Serve
// to accept connections.
func Listen(o Options) (*Server, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: o, stopper: stop.New()}
	s.handler = newHandler(s)
	t2, err := s.listen(o.Addr, false)
	if err != nil {
		return nil, err
	}
	s.sock, s.conns, s.srv = t2.sock, t2.conns, t2.srv
	if o.Thrift1Addr != "" {
		if s.t1, err = s.listen(o.Thrift1Addr, true); err != nil {
			s.sock.Close()
			return nil, err
		}
	}
	sock := s.sock
	// Registered once the sockets are bound, so that a failed Listen
	// leaves the registry as it was.
	s.metrics = newGatewayMetrics(o.Registry)
	if err := s.stopper.Every(context.Background(), "thriftgw.scanner-janitor", janitorPeriod(o.ScannerIdleTimeout), s.expireScanners); err != nil {
		sock.Close()
		if s.t1 != nil {
			s.t1.sock.Close()
		}
		return nil, fmt.Errorf("thriftgw: %w", err)
	}
	if err := s.startHTTP(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// endpoint is one listening socket with its server: Options.Addr
// (Thrift2) or Options.Thrift1Addr.
type endpoint struct {
	sock  *thrift.TServerSocket
	conns *connTracker
	srv   *thrift.TSimpleServer
}

// listen binds addr and builds its server: Thrift1's service if v1, else
// Thrift2's. Both share the handler (and its scanner registry).
func (s *Server) listen(addr string, v1 bool) (*endpoint, error) {
	o := &s.opts
	sock, err := listenBounded(addr, o)
	if err != nil {
		return nil, fmt.Errorf("thriftgw: %w", err)
	}
	if err := sock.Listen(); err != nil {
		return nil, fmt.Errorf("thriftgw: listen on %s: %w", addr, err)
	}
	cfg, tf, pf := factories(*o)
	e := &endpoint{sock: sock}
	e.conns = &connTracker{TServerSocket: sock, conf: cfg, conns: map[*trackedConn]struct{}{}, onClose: s.handler.scanners.closeOwner}
	if o.TLS != nil {
		e.conns.tls = o.TLS.ServerTLS(true)
	}
	e.srv = thrift.NewTSimpleServerFactory4(connProcessorFactory{s: s, v1: v1}, e.conns, tf, pf)
	return e, nil
}

// factories returns the thrift configuration, transport and protocol
// factories o asks for, with the gateway's bounds (limits.go).
func factories(o Options) (*thrift.TConfiguration, thrift.TTransportFactory, thrift.TProtocolFactory) {
	cfg := &thrift.TConfiguration{
		MaxMessageSize: o.MaxMessageSize,
		MaxFrameSize:   o.MaxMessageSize,
	}
	var tf thrift.TTransportFactory
	if o.Framed {
		tf = guardedFramedFactory{cfg: cfg, log: o.Logger}
	} else {
		tf = thrift.NewTBufferedTransportFactory(8192)
	}
	var pf thrift.TProtocolFactory
	if o.Compact {
		pf = thrift.NewTCompactProtocolFactoryConf(cfg)
	} else {
		pf = thrift.NewTBinaryProtocolFactoryConf(cfg)
	}
	return cfg, tf, cappedProtocolFactory{TProtocolFactory: pf, max: o.MaxContainerElements}
}

// connProcessorFactory gives every connection its own processor, bound to
// the connection's share of the scanner registry. TSimpleServer asks for
// one per accepted transport, before reading from it, and closes the
// transport when the connection ends, which frees the connection's
// scanners (trackedConn.Close).
type connProcessorFactory struct {
	s  *Server
	v1 bool // Thrift1's service Hbase
}

func (f connProcessorFactory) GetProcessor(trans thrift.TTransport) thrift.TProcessor {
	o := &owner{}
	c, ok := trans.(*trackedConn)
	if ok {
		o = c.owner
	}
	h := &connHandler{handler: f.s.handler, owner: o, ident: &connIdentity{trans: trans, fixed: f.s.testIdentity}, conn: c}
	if f.v1 {
		return thrift.WrapProcessor(hbase1.NewHbaseProcessor(&thrift1{h}), f.s.metrics.middleware1, f.s.recoverMiddleware, h.authzMiddleware)
	}
	return thrift.WrapProcessor(hbase.NewTHBaseServiceProcessor(h), f.s.metrics.middleware, f.s.recoverMiddleware, h.authzMiddleware)
}

// Addr is the address the gateway listens on.
func (s *Server) Addr() net.Addr { return s.sock.Addr() }

// Thrift1Addr is the address of the Thrift1 listener, or nil without one.
func (s *Server) Thrift1Addr() net.Addr {
	if s.t1 == nil {
		return nil
	}
	return s.t1.sock.Addr()
}

// OpenScanners returns the number of scanners open across all connections
// (for monitoring and tests).
func (s *Server) OpenScanners() int { return s.handler.scanners.len() }

// Serve accepts connections (on both listeners) until Close. It returns
// nil after Close.
func (s *Server) Serve() error {
	// The listeners serve in their own goroutines (not stopper tasks:
	// Serve may be called after Close, and then returns at once). The
	// first to end (Close, or a failing listener) stops the other, so
	// the gateway never serves half its protocols, and Serve returns once
	// both ended.
	n := 1
	errs := make(chan error, 2)
	if s.t1 != nil {
		n = 2
		go func() { errs <- s.t1.srv.Serve() }() //stop:short-lived joined below
	}
	go func() { errs <- s.srv.Serve() }() //stop:short-lived joined below
	err := <-errs
	if n == 2 {
		_ = s.srv.Stop() // idempotent; Close stops both again
		_ = s.t1.srv.Stop()
		if e := <-errs; err == nil {
			err = e
		}
	}
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
		if s.t1 != nil {
			s.t1.conns.closeAll()
			if err := s.t1.srv.Stop(); err != nil {
				s.closeErr = err
			}
		}
		if err := s.srv.Stop(); err != nil {
			s.closeErr = err
		}
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
	tls     *tls.Config // nil: plaintext
	conf    *thrift.TConfiguration
	onClose func(*owner)
	mu      sync.Mutex
	closed  bool
	conns   map[*trackedConn]struct{}
}

// trackedConn is one accepted client connection.
type trackedConn struct {
	thrift.TTransport
	tls   *tls.Conn // nil on a plaintext connection
	t     *connTracker
	owner *owner // the connection's scanners
	once  sync.Once
}

// PeerCertificate is the client's verified certificate (its common name
// is the user), or nil on a plaintext connection (or before the
// handshake, which completes before the first request is read).
func (c *trackedConn) PeerCertificate() *x509.Certificate {
	if c == nil || c.tls == nil {
		return nil
	}
	return security.PeerCertificate(c.tls.ConnectionState().VerifiedChains)
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
	if ts, ok := tr.(*thrift.TSocket); ok && t.tls != nil {
		// The handshake runs on the connection's first read, in its own
		// goroutine, so a slow client never holds up the accept loop.
		c.tls = tls.Server(ts.Conn(), t.tls)
		c.TTransport = thrift.NewTSocketFromConnConf(c.tls, t.conf)
	}
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
