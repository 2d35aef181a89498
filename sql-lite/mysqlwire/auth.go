package mysqlwire

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/packet"
	"github.com/go-mysql-org/go-mysql/server"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
)

// The connection phase (handshake and authentication) is run here, not by
// the protocol library: the library checks a password only against a clear
// password its CredentialProvider returns, and Shale's users have only
// hashes (argon2id, and for mysql_native_password the SHA1(SHA1())
// verifier MySQL itself stores; docs/security.md). Once a client is
// authenticated, the library is handed a connection whose handshake is
// replayed from memory (the client's capabilities and database, the user,
// an empty password of a provider made for that one connection), and then
// the client's real connection for the command phase.
//
// Methods (the server asks for Config.AuthPlugin and switches a client
// that offers the other):
//   - mysql_native_password: the SHA1 challenge, checked against the
//     stored verifier; it needs no TLS (the password never crosses).
//   - caching_sha2_password: the fast SHA-256 challenge when this server
//     already holds SHA256(SHA256(password)) from an earlier login of the
//     same password hash; otherwise "full authentication": over TLS the
//     client sends the password, which is checked against the argon2id
//     hash and then cached. Without TLS full authentication is refused
//     (Shale offers no RSA key exchange).

// login is what the client sent in its handshake response.
type login struct {
	caps      uint32
	maxPacket uint32
	charset   byte
	user, db  string
	plugin    string
	auth      []byte
}

// serverCaps are the capabilities offered (the library's, plus TLS).
const serverCaps = mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_LONG_FLAG | mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_PROTOCOL_41 |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_CONNECT_ATTRS |
	mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA

// authError is a refusal sent to the client as an ERR packet.
type authError struct {
	code  uint16
	state string // "": MySQL's for code
	msg   string
}

func (e *authError) Error() string { return fmt.Sprintf("mysql error %d: %s", e.code, e.msg) }

func accessDenied(l *login, remote net.Addr, withPassword bool) error {
	host := "localhost"
	if h, _, err := net.SplitHostPort(remote.String()); err == nil {
		host = h
	}
	return &authError{code: mysql.ER_ACCESS_DENIED_ERROR, msg: fmt.Sprintf("Access denied for user '%s'@'%s' (using password: %s)", l.user, host, map[bool]string{true: "YES", false: "NO"}[withPassword])}
}

// Bounds of the drain of a refused client.
const (
	authDrainTimeout = 200 * time.Millisecond
	authDrainMax     = 64 << 10
)

// authConn is the connection phase of one client.
type authConn struct {
	s      *Server
	pc     *packet.Conn
	raw    *framedConn
	salt   []byte
	connID uint32
	tls    bool
	useDB  func(string) error // checks the database the client names
}

// authenticate runs the connection phase on fc. It returns the client's
// login, who it is, and the connection to carry the command phase on
// (fc, or TLS above it).
func (s *Server) authenticate(fc *framedConn, connID uint32, useDB func(string) error) (*login, authz.Identity, net.Conn, error) {
	a := &authConn{s: s, pc: packet.NewTLSConn(fc), raw: fc, salt: mysql.RandomBuf(20), connID: connID, useDB: useDB}
	l, id, err := a.run()
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			_ = a.writeErr(ae.code, ae.state, ae.msg)
		}
		// Read (a bounded amount of) what the client sent beyond what was
		// parsed, so that closing does not reset the connection before
		// the client reads the answer.
		fc.linger(authDrainMax, authDrainTimeout)
		return nil, authz.Identity{}, nil, err
	}
	return l, id, a.pc.Conn, nil
}

func (a *authConn) run() (*login, authz.Identity, error) {
	if err := a.writeGreeting(); err != nil {
		return nil, authz.Identity{}, err
	}
	data, err := a.pc.ReadPacket()
	if err != nil {
		return nil, authz.Identity{}, err
	}
	if len(data) == sslRequestLen && a.s.cfg.TLS != nil {
		tc := tls.Server(a.raw, a.s.cfg.TLS.ServerTLS(false))
		if err := tc.Handshake(); err != nil {
			return nil, authz.Identity{}, fmt.Errorf("mysql TLS handshake: %w", err)
		}
		a.tls = true
		// Frames are checked above TLS from now on.
		a.pc.Conn = &framedConn{Conn: tc, max: a.s.cfg.MaxPacket, writeTimeout: a.s.cfg.WriteTimeout, frames: 1}
		if data, err = a.pc.ReadPacket(); err != nil {
			return nil, authz.Identity{}, err
		}
	}
	l, err := parseLogin(data)
	if err != nil {
		return nil, authz.Identity{}, err
	}
	if err := a.verify(l); err != nil {
		return l, authz.Identity{}, err
	}
	if l.db != "" {
		if err := a.useDB(l.db); err != nil {
			var me *mysql.MyError
			if errors.As(err, &me) {
				return nil, authz.Identity{}, &authError{code: me.Code, state: me.State, msg: me.Message}
			}
			return nil, authz.Identity{}, err
		}
	}
	if err := a.writeOK(); err != nil {
		return nil, authz.Identity{}, err
	}
	return l, authz.Identity{User: l.user}, nil
}

func (a *authConn) writeGreeting() error {
	caps := uint32(serverCaps)
	if a.s.cfg.TLS != nil {
		caps |= mysql.CLIENT_SSL
	}
	d := make([]byte, 4, 128)
	d = append(d, 10)
	d = append(append(d, ServerVersion...), 0)
	d = binary.LittleEndian.AppendUint32(d, a.connID)
	d = append(append(d, a.salt[:8]...), 0)
	d = append(d, byte(caps), byte(caps>>8), mysql.DEFAULT_COLLATION_ID, byte(mysql.SERVER_STATUS_AUTOCOMMIT), 0, byte(caps>>16), byte(caps>>24), 21)
	d = append(d, make([]byte, 10)...)
	d = append(append(d, a.salt[8:]...), 0)
	d = append(append(d, a.s.cfg.AuthPlugin...), 0)
	return a.pc.WritePacket(d)
}

func (a *authConn) writeErr(code uint16, state, msg string) error {
	if state == "" {
		state = mysql.MySQLState[code]
	}
	if state == "" {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	d := append(make([]byte, 4), mysql.ERR_HEADER, byte(code), byte(code>>8), '#')
	d = append(append(d, state...), msg...)
	return a.pc.WritePacket(d)
}

func (a *authConn) writeOK() error {
	d := append(make([]byte, 4), mysql.OK_HEADER, 0, 0, byte(mysql.SERVER_STATUS_AUTOCOMMIT), 0, 0, 0)
	return a.pc.WritePacket(d)
}

// exchange sends an auth packet (its payload) and reads the client's answer.
func (a *authConn) exchange(payload ...byte) ([]byte, error) {
	if err := a.pc.WritePacket(append(make([]byte, 4), payload...)); err != nil {
		return nil, err
	}
	return a.pc.ReadPacket()
}

// parseLogin decodes a HandshakeResponse41, refusing what is malformed.
func parseLogin(d []byte) (l *login, err error) {
	bad := &authError{code: mysql.ER_HANDSHAKE_ERROR, msg: "Bad handshake"}
	if len(d) < 32 {
		return nil, bad
	}
	l = &login{caps: binary.LittleEndian.Uint32(d), maxPacket: binary.LittleEndian.Uint32(d[4:]), charset: d[8]}
	if l.caps&mysql.CLIENT_PROTOCOL_41 == 0 || l.caps&mysql.CLIENT_SECURE_CONNECTION == 0 {
		return nil, &authError{code: mysql.ER_NOT_SUPPORTED_AUTH_MODE, msg: "Client does not support the MySQL 4.1 protocol"}
	}
	rest := d[32:]
	cstr := func() (string, bool) {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return "", false
		}
		s := string(rest[:i])
		rest = rest[i+1:]
		return s, true
	}
	var ok bool
	if l.user, ok = cstr(); !ok {
		return nil, bad
	}
	if len(rest) == 0 {
		return nil, bad
	}
	if l.caps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
		v, isNull, n, err := mysql.LengthEncodedString(rest)
		if err != nil || isNull || n > len(rest) {
			return nil, bad
		}
		l.auth, rest = v, rest[n:]
	} else {
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return nil, bad
		}
		l.auth, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
	}
	if l.caps&mysql.CLIENT_CONNECT_WITH_DB != 0 && len(rest) > 0 {
		if l.db, ok = cstr(); !ok {
			return nil, bad
		}
	}
	l.plugin = mysql.AUTH_NATIVE_PASSWORD
	if l.caps&mysql.CLIENT_PLUGIN_AUTH != 0 && len(rest) > 0 {
		if l.plugin, ok = cstr(); !ok {
			return nil, bad
		}
	}
	return l, nil
}

// creds are what a user's password is checked against.
type creds struct {
	clear  *string // the static account's password (Config.Password)
	native []byte  // SHA1(SHA1(password))
	phc    string  // argon2id
}

// lookup finds user: the static account, or a user of PD's auth state.
func (a *authConn) lookup(user string) (creds, bool, error) {
	if c := a.s.cfg; c.User != "" && user == c.User {
		pw := c.Password
		return creds{clear: &pw, native: authz.MySQLNativeHash(pw)}, true, nil
	}
	if az := a.s.cfg.Authz; az != nil && az.Secure() {
		u, err := az.User(user)
		if err != nil {
			return creds{}, false, err
		}
		if u == nil || u.PasswordHash == "" {
			return creds{}, false, nil
		}
		return creds{native: u.MysqlNativeHash, phc: u.PasswordHash}, true, nil
	}
	return creds{}, false, nil
}

// verify authenticates l (switching its method to the server's first).
func (a *authConn) verify(l *login) error {
	want := a.s.cfg.AuthPlugin
	if l.plugin != want {
		resp, err := a.exchange(append(append(append([]byte{mysql.EOF_HEADER}, want...), 0), append(a.salt, 0)...)...)
		if err != nil {
			return err
		}
		l.plugin, l.auth = want, resp
	}
	c, found, err := a.lookup(l.user)
	if err != nil {
		return &authError{code: mysql.ER_UNKNOWN_ERROR, msg: "users unavailable: " + status.Convert(err).Message()}
	}
	if !found {
		// Same answer, and the same exchange, as a wrong password: no
		// user enumeration (caching_sha2_password asks a user it has no
		// verifier for to send the password).
		if want == mysql.AUTH_CACHING_SHA2_PASSWORD && a.tls && len(l.auth) > 0 {
			_ = a.cachingSHA2(l, creds{})
		}
		return accessDenied(l, a.raw.RemoteAddr(), len(l.auth) > 0)
	}
	if len(l.auth) == 0 {
		if c.clear != nil && *c.clear == "" {
			return nil
		}
		return accessDenied(l, a.raw.RemoteAddr(), false)
	}
	if want == mysql.AUTH_NATIVE_PASSWORD {
		if !checkNative(a.salt, l.auth, c.native) {
			return accessDenied(l, a.raw.RemoteAddr(), true)
		}
		return nil
	}
	return a.cachingSHA2(l, c)
}

// checkNative checks a mysql_native_password answer, SHA1(pw) XOR
// SHA1(salt, SHA1(SHA1(pw))), against the stored SHA1(SHA1(pw)).
func checkNative(salt, answer, stored []byte) bool {
	if len(answer) != sha1.Size || len(stored) != sha1.Size {
		return false
	}
	h := sha1.New()
	h.Write(salt)
	h.Write(stored)
	x := h.Sum(nil)
	for i := range x {
		x[i] ^= answer[i]
	}
	y := sha1.Sum(x)
	return subtle.ConstantTimeCompare(y[:], stored) == 1
}

// checkSHA2 checks a caching_sha2_password answer, SHA256(pw) XOR
// SHA256(SHA256(SHA256(pw)), salt), against SHA256(SHA256(pw)).
func checkSHA2(salt, answer, m2 []byte) bool {
	if len(answer) != sha256.Size || len(m2) != sha256.Size {
		return false
	}
	h := sha256.New()
	h.Write(m2)
	h.Write(salt)
	x := h.Sum(nil)
	for i := range x {
		x[i] ^= answer[i]
	}
	y := sha256.Sum256(x)
	return subtle.ConstantTimeCompare(y[:], m2) == 1
}

func sha2Verifier(pw string) []byte {
	a := sha256.Sum256([]byte(pw))
	b := sha256.Sum256(a[:])
	return b[:]
}

// Auth-more-data answers of caching_sha2_password.
const (
	sha2FastOK   = 3
	sha2FullAuth = 4
)

func (a *authConn) cachingSHA2(l *login, c creds) error {
	m2, cached := []byte(nil), false
	if c.clear != nil {
		m2, cached = sha2Verifier(*c.clear), true
	} else {
		m2, cached = a.s.sha2.get(l.user, c.phc)
	}
	if cached {
		if !checkSHA2(a.salt, l.auth, m2) {
			return accessDenied(l, a.raw.RemoteAddr(), true)
		}
		return a.pc.WritePacket(append(make([]byte, 4), mysql.MORE_DATE_HEADER, sha2FastOK))
	}
	if !a.tls {
		return &authError{code: mysql.ER_ACCESS_DENIED_ERROR, msg: "caching_sha2_password needs TLS for this login (connect with TLS, or use mysql_native_password)"}
	}
	pw, err := a.exchange(mysql.MORE_DATE_HEADER, sha2FullAuth)
	if err != nil {
		return err
	}
	pw = bytes.TrimSuffix(pw, []byte{0})
	if len(pw) > authz.MaxPasswordLen {
		return accessDenied(l, a.raw.RemoteAddr(), true)
	}
	// Authenticate spends a hash check on an unknown user too.
	az := a.s.cfg.Authz
	if az == nil || !az.Secure() {
		return accessDenied(l, a.raw.RemoteAddr(), true)
	}
	if _, err := az.Authenticate(l.user, string(pw)); err != nil || c.phc == "" {
		return accessDenied(l, a.raw.RemoteAddr(), true)
	}
	a.s.sha2.put(l.user, c.phc, sha2Verifier(string(pw)))
	return nil
}

// sha2Cache holds SHA256(SHA256(password)) of users who logged in with
// full authentication, keyed by user and valid only for the password hash
// it was checked against (a changed password invalidates it), as MySQL's
// caching_sha2_password does. Bounded by authz.MaxUsers.
type sha2Cache struct {
	mu sync.Mutex
	m  map[string]sha2Entry
}

type sha2Entry struct {
	phc string
	m2  []byte
}

func (c *sha2Cache) get(user, phc string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[user]
	if !ok || e.phc != phc {
		return nil, false
	}
	return e.m2, true
}

func (c *sha2Cache) put(user, phc string, m2 []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= authz.MaxUsers {
		c.m = map[string]sha2Entry{}
	}
	c.m[user] = sha2Entry{phc: phc, m2: m2}
}

// replayConn carries the library's handshake in memory: it reads the
// handshake response made from the client's login, and discards what the
// library writes (its greeting and OK: the client got ours).
type replayConn struct {
	net.Conn
	in *bytes.Reader
}

func (r *replayConn) Read(p []byte) (int, error) {
	if r.in.Len() == 0 {
		return 0, errors.New("mysql: replayed handshake read past its end")
	}
	return r.in.Read(p)
}

func (r *replayConn) Write(p []byte) (int, error) { return len(p), nil }

// replayedLogin is the handshake response the library reads: the client's
// capabilities (without TLS and attributes), user and database (already
// checked), an empty mysql_native_password answer.
func replayedLogin(l *login) []byte {
	caps := (l.caps | mysql.CLIENT_PLUGIN_AUTH) &^ (mysql.CLIENT_SSL | mysql.CLIENT_CONNECT_ATTRS | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_CONNECT_WITH_DB)
	if l.db != "" {
		caps |= mysql.CLIENT_CONNECT_WITH_DB
	}
	d := binary.LittleEndian.AppendUint32(nil, caps)
	d = binary.LittleEndian.AppendUint32(d, l.maxPacket)
	d = append(d, l.charset)
	d = append(d, make([]byte, 23)...)
	d = append(append(d, l.user...), 0)
	d = append(d, 0) // auth answer: length 0
	if l.db != "" {
		d = append(append(d, l.db...), 0)
	}
	d = append(append(d, mysql.AUTH_NATIVE_PASSWORD...), 0)
	pkt := binary.LittleEndian.AppendUint32(nil, uint32(len(d)))
	pkt[3] = 1
	return append(pkt, d...)
}

// commandConn hands the authenticated client to the library: its
// handshake is replayed from l, then the command phase runs on conn.
func (s *Server) commandConn(l *login, conn net.Conn, h server.Handler) (*server.Conn, error) {
	creds := server.NewInMemoryProvider()
	creds.AddUser(l.user, "")
	c, err := s.proto.NewCustomizedConn(&replayConn{Conn: conn, in: bytes.NewReader(replayedLogin(l))}, creds, h)
	if err != nil {
		return nil, err
	}
	c.Conn.Conn = conn
	return c, nil
}
