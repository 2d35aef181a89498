package mysqlwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/kvclient"
)

// Auth plugins a server can require (Config.AuthPlugin).
const (
	AuthNative     = mysql.AUTH_NATIVE_PASSWORD
	AuthCachingSHA = mysql.AUTH_CACHING_SHA2_PASSWORD
)

// ServerVersion is what SELECT @@version and the handshake report: MySQL
// 8.0 clients and drivers pick their dialect from the leading number.
const ServerVersion = "8.0.11-shale"

// Database is the one database name sql-lite's tables live in (sql-lite
// has no databases: every table is in this one).
const Database = "shale"

// Config configures a Server. The zero values of the limits take the
// defaults below.
type Config struct {
	// User and Password are a static account the server accepts besides
	// PD's users (Authz): the one account of an insecure server, or an
	// account for a setup such as the playground. User "" (allowed only
	// with Authz in Secure mode): none.
	User, Password string
	// Authz, in Secure mode, authenticates PD's users by their password
	// hashes (auth.go) and makes each session act as its user
	// (sqllite.Session.ActAs): every statement is checked against the
	// user's grants. The static account acts as the user it names.
	Authz *authz.Authorizer
	// AuthPlugin is the authentication method clients are asked to use:
	// AuthNative (mysql_native_password) or AuthCachingSHA
	// (caching_sha2_password). Default: AuthCachingSHA.
	AuthPlugin string
	// MaxConns bounds open connections; more are refused with error 1040
	// (default 64).
	MaxConns int
	// MaxPacket bounds one client packet (a statement's text or a
	// prepared statement's parameters), checked on the frame header
	// before it is read (default 4 MiB; at most 16 MiB - 1: larger
	// statements, sent as several frames, are refused).
	MaxPacket int
	// IdleTimeout closes a connection that sends no command for this long
	// (default 8h, MySQL's wait_timeout).
	IdleTimeout time.Duration
	// WriteTimeout bounds sending one packet to a client that does not
	// read (default 1m).
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the handshake and authentication (default
	// 10s).
	HandshakeTimeout time.Duration
	// MaxPrepared bounds the prepared statements one connection keeps
	// (default 1024; more are refused with error 1461).
	MaxPrepared int
	// Logger receives connection errors (default slog.Default()).
	Logger *slog.Logger
	// TLS, when set, is the server's certificate: clients must connect
	// with TLS (--ssl-mode=REQUIRED; a plaintext client is refused with
	// error 3159 before it authenticates), and may present a client
	// certificate signed by the cluster's CA. nil: plaintext only.
	TLS *security.Reloader
	// Registry, if set, gets the statement latency histogram
	// (docs/metrics.md).
	Registry prometheus.Registerer
}

const maxFrame = 1<<24 - 1

func (c *Config) fill() error {
	if c.AuthPlugin == "" {
		c.AuthPlugin = AuthCachingSHA
	}
	if c.AuthPlugin != AuthNative && c.AuthPlugin != AuthCachingSHA {
		return fmt.Errorf("mysql auth plugin %q is not supported (use %s or %s)", c.AuthPlugin, AuthNative, AuthCachingSHA)
	}
	if c.User == "" && (c.Authz == nil || !c.Authz.Secure()) {
		return errors.New("mysql user must not be empty (without secure authorization there are no other users)")
	}
	def := func(v *int, d int, what string) error {
		if *v == 0 {
			*v = d
		}
		if *v < 0 {
			return fmt.Errorf("mysql %s must be positive, got %d", what, *v)
		}
		return nil
	}
	if err := errors.Join(def(&c.MaxConns, 64, "max connections"), def(&c.MaxPacket, 4<<20, "max packet size"), def(&c.MaxPrepared, 1024, "max prepared statements")); err != nil {
		return err
	}
	if c.MaxPacket > maxFrame || c.MaxPacket < 1024 {
		return fmt.Errorf("mysql max packet size must be between 1 KiB and %d bytes, got %d", maxFrame, c.MaxPacket)
	}
	for _, d := range []struct {
		v *time.Duration
		d time.Duration
	}{{&c.IdleTimeout, 8 * time.Hour}, {&c.WriteTimeout, time.Minute}, {&c.HandshakeTimeout, 10 * time.Second}} {
		if *d.v <= 0 {
			*d.v = d.d
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Server serves the MySQL protocol on one listener, each connection with
// its own sqllite.Session on a shared kvclient.Client.
type Server struct {
	cfg     Config
	client  *kvclient.Client
	metrics *sqlMetrics
	proto   *server.Server
	sha2    *sha2Cache
	ctx     context.Context
	cancel  context.CancelFunc

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a server for client (which the caller keeps owning and
// closes after the server).
func New(client *kvclient.Client, cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The connection phase is Shale's (auth.go); the library replays a
	// handshake without TLS or password and runs the command phase.
	proto := server.NewServer(ServerVersion, mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil)
	return &Server{cfg: cfg, client: client, metrics: newSQLMetrics(cfg.Registry), proto: proto, sha2: &sha2Cache{}, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}, nil
}

// Listen opens a TCP listener on addr and serves it in the background;
// it returns the address actually bound (addr may use port 0).
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mysql listener: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.Serve(ln)
	}()
	return ln.Addr(), nil
}

// Serve accepts connections on ln until Close; it returns nil after
// Close and the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, instead of ending the listener.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("mysql listener: accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		if !s.track(nc) {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(nc)
			s.serveConn(nc)
		}()
	}
}

// track registers nc, or refuses it with error 1040 when MaxConns are open.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= s.cfg.MaxConns {
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		writeRawError(nc, 0, mysql.ER_CON_COUNT_ERROR, "Too many connections")
		_ = nc.Close()
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *Server) untrack(nc net.Conn) {
	_ = nc.Close()
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}

// Close stops accepting, closes every connection (rolling back their
// open transactions) and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	for nc := range s.conns {
		_ = nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// NumConns returns the number of open connections.
func (s *Server) NumConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// serveConn runs one connection: handshake, then commands until the
// client quits, errs or idles out.
func (s *Server) serveConn(nc net.Conn) {
	log := s.cfg.Logger.With("remote", nc.RemoteAddr().String())
	defer func() {
		// The protocol library indexes some client fields without bounds
		// checks: a malformed packet must cost only its connection.
		if r := recover(); r != nil {
			log.Warn("mysql connection: malformed input made the protocol library panic; connection closed", "panic", fmt.Sprint(r))
			log.Debug("mysql connection: panic stack", "stack", string(debug.Stack()))
		}
	}()
	fc := &framedConn{Conn: nc, max: s.cfg.MaxPacket, writeTimeout: s.cfg.WriteTimeout, tlsRequired: s.cfg.TLS != nil}
	_ = nc.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	h, err := newHandler(s)
	if err != nil {
		log.Warn("mysql connection: opening a session", "err", err)
		return
	}
	defer h.close()
	l, id, conn, err := s.authenticate(fc, connID.Add(1), h.UseDB)
	if err != nil {
		log.Debug("mysql connection: authentication failed", "err", err)
		return
	}
	if s.cfg.Authz != nil && s.cfg.Authz.Secure() {
		h.sess.ActAs(s.cfg.Authz, id)
	}
	h.pc = newPrepareConn(conn)
	c, err := s.commandConn(l, h.pc, h)
	if err != nil {
		log.Debug("mysql connection: handshake failed", "err", err)
		return
	}
	h.conn = c
	h.syncStatus()
	for !c.Closed() {
		_ = nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if err := c.HandleCommand(); err != nil {
			if !errors.Is(err, errTooLarge) && s.ctx.Err() == nil && !c.Closed() {
				log.Debug("mysql connection closed", "err", err)
			}
			return
		}
	}
}

// connID numbers connections in the handshake.
var connID atomic.Uint32

// errTooLarge fails the read of a refused packet (too large, or long data).
var errTooLarge = errors.New("packet refused before reading it")

// framedConn follows the packet frames the client sends (4-byte header:
// 3-byte length, sequence) and fails the read of a frame longer than max
// before the protocol library sees its header (the library would
// allocate the whole declared length, up to 16 MiB, and chain frames
// without limit). Compression and TLS are not offered, so the bytes read
// are exactly the frames.
type framedConn struct {
	net.Conn
	max          int
	writeTimeout time.Duration
	hdr          [4]byte
	nhdr         int  // header bytes seen of the current frame
	left         int  // payload bytes left of the current frame
	cmdNext      bool // the next payload byte is a command byte
	// TLS: the client's first frame is an SSLRequest (exactly 32 bytes
	// of payload; a handshake response is longer), after which the
	// connection carries TLS records: this framedConn then passes bytes
	// through (raw) and another one above TLS checks the frames.
	tlsRequired bool // refuse a client whose first frame is no SSLRequest
	frames      int  // client frames seen
	rawNext     bool // raw once the current frame (the SSLRequest) ends
	raw         bool
}

// sslRequestLen is the payload length of a MySQL SSLRequest packet.
const sslRequestLen = 4 + 4 + 1 + 23

func (f *framedConn) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	for i := 0; i < n && !f.raw; {
		if f.left > 0 {
			if f.cmdNext {
				f.cmdNext = false
				// The library appends long-data chunks without limit and
				// then misreads the execute's parameters (it does not skip
				// those sent as long data): refused instead.
				if p[i] == mysql.COM_STMT_SEND_LONG_DATA {
					err := f.refuse(mysql.ER_NOT_SUPPORTED_YET, "COM_STMT_SEND_LONG_DATA is not supported: send parameters inline (go-sql-driver/mysql does below maxAllowedPacket/(parameters+1); keep its maxAllowedPacket at the default)")
					// The client sends the execute (and maybe more long
					// data) before it reads any answer.
					f.linger(longDataLingerMax, drainTimeout)
					return 0, err
				}
			}
			k := min(f.left, n-i)
			f.left -= k
			i += k
			f.raw = f.left == 0 && f.rawNext
			continue
		}
		f.hdr[f.nhdr] = p[i]
		f.nhdr++
		i++
		if f.nhdr == 4 {
			f.nhdr = 0
			f.left = int(f.hdr[0]) | int(f.hdr[1])<<8 | int(f.hdr[2])<<16
			if f.left > f.max {
				err := f.refuse(mysql.ER_NET_PACKET_TOO_LARGE, fmt.Sprintf("Got a packet bigger than 'max_allowed_packet' bytes (%d > %d)", f.left, f.max))
				f.linger(int64(f.left-(n-i)), drainTimeout)
				return 0, err
			}
			f.cmdNext = f.hdr[3] == 0 // commands are sequence 0
			if f.frames++; f.frames == 1 {
				f.rawNext = f.tlsRequired && f.left == sslRequestLen
				if f.tlsRequired && !f.rawNext {
					return 0, f.refuse(3159, "Connections using insecure transport are prohibited: connect with TLS (mysql --ssl-mode=REQUIRED, go-sql-driver tls=custom)")
				}
			}
		}
	}
	return n, err
}

// linger half-closes the connection after a refusal and reads and
// discards what the client still sends (at most limit bytes, for at most
// timeout) before the caller closes it. A client that sends its
// whole request before it reads the answer then reads the error and a
// clean end of stream: closing a socket with unread bytes would send a
// reset, which can discard the error on the client's side or fail its
// next write ("connection reset by peer").
func (f *framedConn) linger(limit int64, timeout time.Duration) {
	if cw, ok := f.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if limit <= 0 {
		return
	}
	_ = f.Conn.SetReadDeadline(time.Now().Add(timeout))
	_, _ = io.CopyN(io.Discard, f.Conn, limit)
}

// drainTimeout bounds linger after a refused command.
const drainTimeout = 2 * time.Second

// longDataLingerMax bounds what linger reads after refused long data: the
// rest of the parameters and the execute, for the default client packet
// size.
const longDataLingerMax = 64 << 20

// refuse sends an error and fails the read, which closes the connection.
func (f *framedConn) refuse(code uint16, msg string) error {
	_ = f.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	writeRawError(f.Conn, f.hdr[3]+1, code, msg)
	return errTooLarge
}

func (f *framedConn) Write(p []byte) (int, error) {
	_ = f.Conn.SetWriteDeadline(time.Now().Add(f.writeTimeout))
	if f.raw {
		return f.Conn.Write(p) // TLS records; the frames are above
	}
	if q, ok := restoreTracedError(p); ok {
		if _, err := f.Conn.Write(q); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return f.Conn.Write(p)
}

// tracedErrRE matches the message of an ERR packet the library made from
// a *mysql.MyError it had wrapped (see restoreTracedError).
var tracedErrRE = regexp.MustCompile(`^ERROR (\d{4,5}) \(([0-9A-Z]{5})\): `)

// restoreTracedError works around the protocol library's COM_STMT_EXECUTE
// path, which wraps the handler's error (errors.Trace) so that its own
// writer no longer recognises the *mysql.MyError and sends code 1105 with
// the text "ERROR <code> (<state>): <message>". The packet (one whole
// packet per Write: WritePacket writes header and payload at once) is
// rewritten to carry the original code, SQLSTATE and message.
func restoreTracedError(p []byte) ([]byte, bool) {
	// header(4) 0xff code(2) '#' state(5) message
	if len(p) < 13 || p[4] != mysql.ERR_HEADER || binary.LittleEndian.Uint16(p[5:7]) != mysql.ER_UNKNOWN_ERROR || p[7] != '#' {
		return nil, false
	}
	msg := p[13:]
	m := tracedErrRE.FindSubmatch(msg)
	if m == nil {
		return nil, false
	}
	code, err := strconv.Atoi(string(m[1]))
	if err != nil || code > 0xffff {
		return nil, false
	}
	body := []byte{mysql.ERR_HEADER, byte(code), byte(code >> 8), '#'}
	body = append(append(body, m[2]...), msg[len(m[0]):]...)
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	out[3] = p[3]
	return append(out, body...), true
}

// writeRawError sends an ERR packet outside the library (before a
// handshake, or instead of reading an oversized packet). Before the
// handshake (seq 0) the client knows no capabilities, so the packet has
// no SQLSTATE, as MySQL's.
func writeRawError(w net.Conn, seq byte, code uint16, msg string) {
	body := []byte{mysql.ERR_HEADER, byte(code), byte(code >> 8)}
	if seq > 0 {
		state := mysql.MySQLState[code]
		if state == "" {
			state = mysql.DEFAULT_MYSQL_STATE
		}
		body = append(append(body, '#'), state...)
	}
	body = append(body, msg...)
	pkt := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	pkt[3] = seq
	_, _ = w.Write(append(pkt, body...))
}
