package thriftgw

// Connection bounds (Options.MaxConnections, IdleTimeout, FrameTimeout,
// MaxMessageSize, MaxContainerElements): what keeps one client, or many,
// from holding the gateway's memory, goroutines or sockets.
//
// The listener counts connections and closes those over the limit as soon
// as they are accepted. Every accepted connection manages its own read
// deadline: IdleTimeout while it waits for a request to start, then
// FrameTimeout from a request's first byte until the gateway answers it (a
// reply is written only once a request has been read whole), so a client
// that sends a request slowly, byte by byte, is cut off as surely as one
// that sends nothing. A reply, all its writes together, gets FrameTimeout
// too, so a client that stops reading replies, or reads them slowly, is
// cut off. apache/thrift's own SocketTimeout is per read and would let a
// slow sender live forever.
//
// In the framed transport a frame header declaring more than
// MaxMessageSize bytes is refused before anything is allocated for it
// (thrift's TFramedTransport checks too, but without naming the limit).
// Thrift's protocols refuse a string or container longer than
// MaxMessageSize, but the generated code allocates a container's declared
// length up front, and over a stream (the default, unframed transport)
// nothing bounds that length by the bytes that follow: a 20-byte request
// could make the gateway allocate half a GiB. cappedProtocol counts the
// elements every container of a message declares and refuses the message
// past MaxContainerElements, which bounds that allocation per message.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
)

// Errors a connection is closed with, naming the limit it broke.
var (
	// ErrIdleTimeout: no request started within Options.IdleTimeout.
	ErrIdleTimeout = errors.New("thriftgw: connection idle longer than IdleTimeout")
	// ErrFrameTimeout: a request was not received whole, or a reply not
	// taken, within Options.FrameTimeout.
	ErrFrameTimeout = errors.New("thriftgw: request or reply not transferred within FrameTimeout")
	// ErrFrameTooLarge: a frame declares more than Options.MaxMessageSize.
	ErrFrameTooLarge = errors.New("thriftgw: frame larger than MaxMessageSize")
	// ErrTooManyElements: a message declares more container elements than
	// Options.MaxContainerElements.
	ErrTooManyElements = errors.New("thriftgw: message declares more container elements than MaxContainerElements")
)

// boundedListener enforces MaxConnections and hands out boundedConns.
type boundedListener struct {
	net.Listener
	max  int
	open atomic.Int64
	opts *Options
}

func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); n > int64(l.max) {
			l.open.Add(-1)
			l.opts.Logger.Warn("thrift gateway: refusing connection: MaxConnections reached",
				"remote", c.RemoteAddr().String(), "limit", "MaxConnections", "max_connections", l.max)
			_ = c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok && l.opts.sendBuffer > 0 {
			_ = tc.SetWriteBuffer(l.opts.sendBuffer)
		}
		return &boundedConn{Conn: c, l: l}, nil
	}
}

// boundedConn applies IdleTimeout and FrameTimeout (see the top of the
// file). Thrift serves a connection from one goroutine, so Read and Write
// never run at once.
type boundedConn struct {
	net.Conn
	l *boundedListener
	// inRequest: bytes of a request have arrived and it is not answered yet.
	inRequest bool
	// inReply: the reply to the last request is being written (its write
	// deadline is set; it ends at the next read).
	inReply   bool
	closeOnce sync.Once
}

func (c *boundedConn) Read(p []byte) (int, error) {
	now := time.Now()
	c.inReply = false
	if !c.inRequest {
		_ = c.Conn.SetReadDeadline(now.Add(c.l.opts.IdleTimeout))
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.inRequest {
		c.inRequest = true
		_ = c.Conn.SetReadDeadline(now.Add(c.l.opts.FrameTimeout))
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		limit, lerr, d := "IdleTimeout", ErrIdleTimeout, c.l.opts.IdleTimeout
		if c.inRequest {
			limit, lerr, d = "FrameTimeout", ErrFrameTimeout, c.l.opts.FrameTimeout
		}
		c.l.opts.Logger.Warn("thrift gateway: closing connection: "+lerr.Error(),
			"remote", c.RemoteAddr().String(), "limit", limit, "timeout", d)
		return n, fmt.Errorf("%w (%s)", lerr, d)
	}
	return n, err
}

func (c *boundedConn) Write(p []byte) (int, error) {
	c.inRequest = false // a reply: the request was read whole
	if !c.inReply {
		// The whole reply, however many writes it takes, within FrameTimeout.
		c.inReply = true
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.l.opts.FrameTimeout))
	}
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.l.opts.Logger.Warn("thrift gateway: closing connection: client does not take its reply",
			"remote", c.RemoteAddr().String(), "limit", "FrameTimeout", "timeout", c.l.opts.FrameTimeout)
		return n, fmt.Errorf("%w (%s)", ErrFrameTimeout, c.l.opts.FrameTimeout)
	}
	return n, err
}

// The deadlines are this connection's to manage: thrift's TSocket (and a
// TLS layer above) would otherwise clear them before every read.
func (c *boundedConn) SetDeadline(time.Time) error      { return nil }
func (c *boundedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *boundedConn) SetWriteDeadline(time.Time) error { return nil }

func (c *boundedConn) Close() error {
	c.closeOnce.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// listenBounded listens on addr through a boundedListener.
func listenBounded(addr string, o *Options) (*thrift.TServerSocket, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	factory := func(a net.Addr) (net.Listener, error) {
		l, err := net.Listen(a.Network(), a.String())
		if err != nil {
			return nil, err
		}
		return &boundedListener{Listener: l, max: o.MaxConnections, opts: o}, nil
	}
	return thrift.NewTServerSocketFromFactoryTimeout(factory, a, 0), nil
}

// frameGuard sits under thrift's framed transport and refuses a frame
// whose header declares more than max bytes, naming the limit, before the
// framed transport reads (or allocates) any of it. It follows the frame
// boundaries in the byte stream as it passes through.
type frameGuard struct {
	thrift.TTransport
	max    uint32
	log    *slog.Logger
	hdr    [4]byte
	hdrN   int    // header bytes seen of the next frame
	remain uint32 // body bytes left in the current frame
}

func (g *frameGuard) Read(p []byte) (int, error) {
	n, err := g.TTransport.Read(p)
	for b := p[:n]; len(b) > 0; {
		if g.remain > 0 {
			k := min(uint32(len(b)), g.remain)
			g.remain -= k
			b = b[k:]
			continue
		}
		k := copy(g.hdr[g.hdrN:], b)
		g.hdrN += k
		b = b[k:]
		if g.hdrN < 4 {
			continue
		}
		g.hdrN = 0
		size := binary.BigEndian.Uint32(g.hdr[:])
		if size > g.max {
			g.log.Warn("thrift gateway: closing connection: "+ErrFrameTooLarge.Error(),
				"limit", "MaxMessageSize", "frame_bytes", size, "max_message_size", g.max)
			return 0, fmt.Errorf("%w: a frame of %d bytes; the limit is %d", ErrFrameTooLarge, size, g.max)
		}
		g.remain = size
	}
	return n, err
}

// guardedFramedFactory builds thrift's framed transport over a frameGuard.
type guardedFramedFactory struct {
	cfg *thrift.TConfiguration
	log *slog.Logger
}

func (f guardedFramedFactory) GetTransport(t thrift.TTransport) (thrift.TTransport, error) {
	g := &frameGuard{TTransport: t, max: uint32(f.cfg.GetMaxFrameSize()), log: f.log}
	return thrift.NewTFramedTransportConf(g, f.cfg), nil
}

// cappedProtocolFactory wraps a protocol factory's protocols in
// cappedProtocol.
type cappedProtocolFactory struct {
	thrift.TProtocolFactory
	max int
}

func (f cappedProtocolFactory) GetProtocol(t thrift.TTransport) thrift.TProtocol {
	return &cappedProtocol{TProtocol: f.TProtocolFactory.GetProtocol(t), max: f.max}
}

// cappedProtocol refuses a message whose containers declare more than max
// elements in all.
type cappedProtocol struct {
	thrift.TProtocol
	max      int
	declared int // elements declared since the message began
}

func (p *cappedProtocol) ReadMessageBegin(ctx context.Context) (string, thrift.TMessageType, int32, error) {
	p.declared = 0
	return p.TProtocol.ReadMessageBegin(ctx)
}

func (p *cappedProtocol) count(n int) error {
	p.declared += n
	if n < 0 || p.declared > p.max {
		return thrift.NewTProtocolExceptionWithType(thrift.SIZE_LIMIT,
			fmt.Errorf("%w: %d so far; the limit is %d", ErrTooManyElements, p.declared, p.max))
	}
	return nil
}

func (p *cappedProtocol) ReadListBegin(ctx context.Context) (thrift.TType, int, error) {
	t, n, err := p.TProtocol.ReadListBegin(ctx)
	if err == nil {
		err = p.count(n)
	}
	return t, n, err
}

func (p *cappedProtocol) ReadSetBegin(ctx context.Context) (thrift.TType, int, error) {
	t, n, err := p.TProtocol.ReadSetBegin(ctx)
	if err == nil {
		err = p.count(n)
	}
	return t, n, err
}

func (p *cappedProtocol) ReadMapBegin(ctx context.Context) (thrift.TType, thrift.TType, int, error) {
	k, v, n, err := p.TProtocol.ReadMapBegin(ctx)
	if err == nil {
		err = p.count(n)
	}
	return k, v, n, err
}
