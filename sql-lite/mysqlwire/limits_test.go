package mysqlwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// More than MaxConns connections: the extra one gets error 1040, and once
// one closes a new one is accepted.
func TestMaxConnections(t *testing.T) {
	srv, addr := startServer(t, Config{MaxConns: 2})
	db := openDB(t, addr, "root", "", "")
	ctx := context.Background()
	c1, err := db.Conn(ctx)
	require.NoError(t, err)
	c2, err := db.Conn(ctx)
	require.NoError(t, err)
	waitFor(t, "two connections", func() bool { return srv.NumConns() == 2 })
	_, err = db.Conn(ctx)
	// Sent before the handshake, so without SQLSTATE (as MySQL does).
	require.Equal(t, uint16(1040), driverErr(t, err).Number, "%v", err)
	require.NoError(t, c1.Close())
	// database/sql keeps the closed conn idle in its pool: drop it.
	db.SetMaxIdleConns(0)
	waitFor(t, "a connection to close", func() bool { return srv.NumConns() == 1 })
	c3, err := db.Conn(ctx)
	require.NoError(t, err)
	require.NoError(t, c3.PingContext(ctx))
	require.NoError(t, c2.PingContext(ctx))
}

// A packet above MaxPacket is refused with error 1153 from its header
// alone, the connection is closed, and the server goes on serving.
func TestMaxPacketSize(t *testing.T) {
	srv, addr := startServer(t, Config{MaxPacket: 64 << 10})
	db := openDB(t, addr, "root", "", "")
	db.SetMaxIdleConns(0)
	_, err := db.Exec("SELECT '" + strings.Repeat("x", 100<<10) + "'")
	require.Error(t, err)
	var one int
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one))

	// A raw client declaring a 16 MiB frame after the handshake gets
	// 1153 without sending the payload.
	nc := handshake(t, addr)
	_, err = nc.Write([]byte{0xff, 0xff, 0xff, 0})
	require.NoError(t, err)
	pkt := readPacket(t, nc)
	require.Equal(t, byte(0xff), pkt[0], "want an ERR packet, got %q", pkt)
	require.Equal(t, uint16(1153), binary.LittleEndian.Uint16(pkt[1:3]))
	waitFor(t, "the connection to close", func() bool { return srv.NumConns() == 0 })
}

// A connection idle for IdleTimeout is closed by the server, and so is one
// that never completes its handshake.
func TestIdleAndHandshakeTimeouts(t *testing.T) {
	srv, addr := startServer(t, Config{IdleTimeout: 300 * time.Millisecond, HandshakeTimeout: 300 * time.Millisecond})
	nc := handshake(t, addr)
	waitFor(t, "the idle connection to close", func() bool { return srv.NumConns() == 0 })
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(nc)
	require.NoError(t, err) // EOF: the server closed it
	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()
	waitFor(t, "the silent connection to be accepted", func() bool { return srv.NumConns() == 1 })
	waitFor(t, "the handshake to time out", func() bool { return srv.NumConns() == 0 })
}

// Strangers sending garbage: random bytes, random frames, truncated and
// mutated handshake responses (some of which make the protocol library
// index out of range) get a protocol error or a closed connection, never
// a crash; the server then still serves a real client and holds no
// connection.
func TestGarbageInput(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	srv, addr := startServer(t, Config{HandshakeTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond, MaxPacket: 1 << 20})
	valid := validHandshakeResponse("root")
	var inputs [][]byte
	for i := 0; i < 150; i++ {
		var b []byte
		switch i % 5 {
		case 0: // random bytes
			b = make([]byte, r.IntN(300))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		case 1: // a well-framed random payload
			p := make([]byte, r.IntN(200))
			for j := range p {
				p[j] = byte(r.Uint32())
			}
			b = frame(1, p)
		case 2: // a truncated handshake response
			b = frame(1, valid[:r.IntN(len(valid))])
		case 3: // a mutated handshake response
			p := append([]byte(nil), valid...)
			for k := 0; k < 1+r.IntN(4); k++ {
				p[r.IntN(len(p))] = byte(r.Uint32())
			}
			b = frame(1, p)
		case 4: // a huge declared length
			b = []byte{byte(r.Uint32()), byte(r.Uint32()), 0xff, 1}
		}
		inputs = append(inputs, b)
	}
	// The fields the library reads without bounds checks: a user name, a
	// database or a plugin name with no terminating NUL.
	noNUL := append([]byte(nil), valid[:32]...)
	noNUL = append(noNUL, "rootrootroot"...)
	inputs = append(inputs, frame(1, noNUL))
	var g errgroup.Group
	g.SetLimit(16)
	for _, in := range inputs {
		g.Go(func() error {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = readPacketErr(nc) // the server's greeting
			_, _ = nc.Write(in)
			// Whatever the answer, the server must end the exchange
			// (answer and close, or close) within its timeouts.
			_, err = io.Copy(io.Discard, nc)
			return err
		})
	}
	require.NoError(t, g.Wait(), "a connection was not closed by the server")
	waitFor(t, "every garbage connection to close", func() bool { return srv.NumConns() == 0 })
	db := openDB(t, addr, "root", "", "")
	var one int
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one))

	// After authentication too: random commands get an error or a closed
	// connection.
	for i := 0; i < 60; i++ {
		nc := handshake(t, addr)
		p := make([]byte, 1+r.IntN(100))
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		if i%3 == 0 {
			p[0] = []byte{0x16, 0x17, 0x18, 0x19, 0x1a, 0x04, 0x1b}[r.IntN(7)] // stmt and field-list commands
		}
		_, _ = nc.Write(frame(0, p))
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = readPacketErr(nc)
		_ = nc.Close()
	}
	waitFor(t, "every command connection to close", func() bool { return srv.NumConns() == 0 })
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one))
}

func frame(seq byte, payload []byte) []byte {
	h := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	h[3] = seq
	return append(h, payload...)
}

func readPacketErr(nc net.Conn) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(nc, h[:]); err != nil {
		return nil, err
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	_, err := io.ReadFull(nc, p)
	return p, err
}

func readPacket(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := readPacketErr(nc)
	require.NoError(t, err)
	return p
}

// validHandshakeResponse is a HandshakeResponse41 for user with an empty
// password and mysql_native_password.
func validHandshakeResponse(user string) []byte {
	const caps = 0x00000200 | 0x00008000 | 0x00080000 | 0x00000008 // PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, CONNECT_WITH_DB
	p := binary.LittleEndian.AppendUint32(nil, caps)
	p = binary.LittleEndian.AppendUint32(p, 1<<24)
	p = append(p, 45)
	p = append(p, make([]byte, 23)...)
	p = append(append(p, user...), 0)
	p = append(p, 0) // auth data length 0 (empty password)
	p = append(append(p, Database...), 0)
	p = append(append(p, "mysql_native_password"...), 0)
	return p
}

// handshake connects as root with an empty password on a raw connection
// (the server must use AuthNative or accept the empty password's switch).
func handshake(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	readPacket(t, nc) // greeting
	_, err = nc.Write(frame(1, validHandshakeResponse("root")))
	require.NoError(t, err)
	p := readPacket(t, nc)
	if p[0] == 0xfe { // auth switch to the server's plugin: empty password
		_, err = nc.Write(frame(3, nil))
		require.NoError(t, err)
		p = readPacket(t, nc)
		if p[0] == 0x01 { // caching_sha2 fast-auth result
			p = readPacket(t, nc)
		}
	}
	require.Equal(t, byte(0), p[0], "want OK after the handshake, got %q", p)
	require.False(t, bytes.HasPrefix(p, []byte{0xff}))
	return nc
}

// COM_RESET_CONNECTION rolls back the open transaction and forgets
// session variables; an unknown command gets an error, and the connection
// goes on.
func TestResetConnectionAndUnknownCommand(t *testing.T) {
	_, addr := startServer(t, Config{AuthPlugin: AuthNative})
	db := openDB(t, addr, "root", "", "")
	tbl := tableName(t, "reset")
	mustExec(t, db, "CREATE TABLE "+tbl+" (k BIGINT PRIMARY KEY)")
	nc := handshake(t, addr)
	// query returns the first packet of the answer and, for a result
	// set, its rows.
	query := func(q string) (first []byte, rows [][]byte) {
		t.Helper()
		_, err := nc.Write(frame(0, append([]byte{0x03}, q...)))
		require.NoError(t, err)
		first = readPacket(t, nc)
		if first[0] == 0x00 || first[0] == 0xff {
			return first, nil
		}
		// Column definitions, EOF, rows, EOF.
		for eofs := 0; eofs < 2; {
			p := readPacket(t, nc)
			switch {
			case p[0] == 0xfe && len(p) < 9:
				eofs++
			case eofs == 1:
				rows = append(rows, p)
			}
		}
		return first, rows
	}
	ok := func(q string) {
		t.Helper()
		first, _ := query(q)
		require.Equal(t, byte(0), first[0], "%s: %q", q, first)
	}
	ok("SET @v = 1")
	_, rows := query("SELECT @v")
	require.Equal(t, [][]byte{{1, '1'}}, rows)
	ok("BEGIN")
	ok("INSERT INTO " + tbl + " VALUES (1)")
	_, err := nc.Write(frame(0, []byte{0x1f})) // COM_RESET_CONNECTION
	require.NoError(t, err)
	require.Equal(t, byte(0), readPacket(t, nc)[0])
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+tbl).Scan(&n))
	require.Equal(t, 0, n, "the reset rolled the transaction back")
	_, err = nc.Write(frame(0, []byte{0x1d})) // unused command byte
	require.NoError(t, err)
	p := readPacket(t, nc)
	require.Equal(t, byte(0xff), p[0])
	require.Equal(t, uint16(1047), binary.LittleEndian.Uint16(p[1:3]))
	_, rows = query("SELECT @v")
	require.Equal(t, [][]byte{{0xfb}}, rows, "the reset forgot @v; the connection is still served")
}

// Parameters sent in pieces (COM_STMT_SEND_LONG_DATA, which
// go-sql-driver uses for values above maxAllowedPacket/(params+1)) are
// refused with an error that says so; inline they work.
func TestLongDataRefused(t *testing.T) {
	_, addr := startServer(t, Config{MaxPacket: 256 << 10})
	db := openDB(t, addr, "root", "", "")
	tbl := tableName(t, "long")
	mustExec(t, db, "CREATE TABLE "+tbl+" (k BIGINT PRIMARY KEY, v BLOB)")
	big := bytes.Repeat([]byte("0123456789"), 4<<10) // 40 KiB
	_, err := db.Exec("REPLACE INTO "+tbl+" VALUES (?, ?)", 1, big)
	require.NoError(t, err)
	var got []byte
	require.NoError(t, db.QueryRow("SELECT v FROM "+tbl+" WHERE k = ?", 1).Scan(&got))
	require.Equal(t, big, got)

	small := openDB(t, addr, "root", "", "maxAllowedPacket=65536") // 40 KiB goes as long data
	_, err = small.Exec("REPLACE INTO "+tbl+" VALUES (?, ?)", 2, big)
	require.ErrorContains(t, err, "COM_STMT_SEND_LONG_DATA is not supported")
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+tbl).Scan(&n))
	require.Equal(t, 1, n)
}

// A client that sends long data and the execute before it reads any
// answer (as go-sql-driver does) reads the refusal and a clean end of
// stream: the server reads what is still coming before it closes, since
// closing with unread bytes resets the connection and the client's
// writes fail ("connection reset by peer") instead of it reading the
// error.
func TestLongDataRefusalReadsTheRestBeforeClosing(t *testing.T) {
	_, addr := startServer(t, Config{AuthPlugin: AuthNative})
	nc := handshake(t, addr)
	// COM_STMT_SEND_LONG_DATA (0x18) for statement 1, parameter 0, 40 KiB;
	// then COM_STMT_EXECUTE (0x17).
	payload := append([]byte{0x18, 1, 0, 0, 0, 0, 0}, bytes.Repeat([]byte("x"), 40<<10)...)
	long := frame(0, payload)
	_, err := nc.Write(long[:16])
	require.NoError(t, err)
	p := readPacket(t, nc)
	require.Equal(t, byte(0xff), p[0])
	require.Contains(t, string(p), "COM_STMT_SEND_LONG_DATA is not supported")
	_, err = nc.Write(long[16:])
	require.NoError(t, err, "the rest of the long data")
	_, err = nc.Write(frame(0, []byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0}))
	require.NoError(t, err, "the execute after the long data")
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = nc.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}
