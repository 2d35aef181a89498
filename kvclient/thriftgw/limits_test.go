package thriftgw_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
)

// logBuffer collects a gateway's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLog waits until the log holds a line containing every one of want.
func (b *logBuffer) waitLog(t *testing.T, want ...string) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		for _, line := range strings.Split(b.String(), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("no log line with %q in:\n%s", want, b.String())
	})
}

// limitGateway serves a gateway whose handler never reaches Shale (the
// limits tests use getThriftServerType, which answers from the gateway).
func limitGateway(t *testing.T, o thriftgw.Options) (*thriftgw.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	o.Client = &kvclient.Client{}
	o.Addr = "127.0.0.1:0"
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	srv, err := thriftgw.Listen(o)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		require.NoError(t, <-done)
	})
	return srv, logs
}

// serverType makes one request on c and fails t unless it is served.
func serverType(t *testing.T, c *client) {
	t.Helper()
	_, err := c.GetThriftServerType(ctxT(t))
	require.NoError(t, err)
}

// requireCut waits until the server has closed conn (a read returns
// EOF or a reset), reading and discarding what it sends.
func requireCut(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(testutils.DefaultSucceedsSoonDuration)))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection: %v", err)
}

// getTypeCall is a whole getThriftServerType request (binary protocol).
func getTypeCall(t *testing.T) []byte {
	var buf bytes.Buffer
	p := thrift.NewTBinaryProtocolConf(thrift.NewStreamTransportW(&buf), nil)
	ctx := context.Background()
	require.NoError(t, p.WriteMessageBegin(ctx, "getThriftServerType", thrift.CALL, 1))
	require.NoError(t, p.WriteStructBegin(ctx, "args"))
	require.NoError(t, p.WriteFieldStop(ctx))
	require.NoError(t, p.WriteStructEnd(ctx))
	require.NoError(t, p.WriteMessageEnd(ctx))
	require.NoError(t, p.Flush(ctx))
	return buf.Bytes()
}

// TestIdleConnectionCutOff: a connection on which no request starts is
// closed after IdleTimeout, and the log names the limit; one that keeps
// sending requests is not.
func TestIdleConnectionCutOff(t *testing.T) {
	srv, logs := limitGateway(t, thriftgw.Options{IdleTimeout: 300 * time.Millisecond})
	busy := dial(t, srv.Addr().String(), false, false)
	idle, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer idle.Close()
	start := time.Now()
	for time.Since(start) < time.Second {
		serverType(t, busy)
		// Models a client that pauses between requests for less than
		// IdleTimeout.
		time.Sleep(100 * time.Millisecond)
	}
	requireCut(t, idle)
	logs.waitLog(t, "closing connection", "limit=IdleTimeout")
	serverType(t, busy)
}

// TestSlowlorisCutOff: a client that sends a request a byte at a time,
// each byte well within any per-read timeout, is cut off FrameTimeout
// after the request's first byte, and the log names the limit.
func TestSlowlorisCutOff(t *testing.T) {
	srv, logs := limitGateway(t, thriftgw.Options{IdleTimeout: time.Minute, FrameTimeout: 500 * time.Millisecond})
	conn, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	call := getTypeCall(t)
	start := time.Now()
	var werr error
	for i := 0; i < len(call)-1 && werr == nil; i++ {
		_, werr = conn.Write(call[i : i+1])
		// Models the slow client: a byte every 100ms, never the last.
		time.Sleep(100 * time.Millisecond)
		if time.Since(start) > 10*time.Second {
			t.Fatal("the gateway let a request take 10s to arrive")
		}
	}
	requireCut(t, conn)
	require.Less(t, time.Since(start), 10*time.Second)
	logs.waitLog(t, "closing connection", "limit=FrameTimeout")
	// The gateway still serves others.
	serverType(t, dial(t, srv.Addr().String(), false, false))
}

// TestMaxConnections: connections beyond MaxConnections are closed as they
// arrive, with the limit in the log; once one closes, a new one is served.
func TestMaxConnections(t *testing.T) {
	srv, logs := limitGateway(t, thriftgw.Options{MaxConnections: 2})
	addr := srv.Addr().String()
	a, b := dial(t, addr, false, false), dial(t, addr, false, false)
	serverType(t, a)
	serverType(t, b)
	over, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer over.Close()
	_, _ = over.Write(getTypeCall(t))
	requireCut(t, over)
	logs.waitLog(t, "refusing connection", "limit=MaxConnections", "max_connections=2")
	require.NoError(t, a.trans.Close())
	testutils.SucceedsSoon(t, func() error {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.Write(getTypeCall(t)); err != nil {
			return err
		}
		if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 1))
		return err // nil: a reply
	})
	serverType(t, b)
}

// allocatedDuring returns how many bytes the process allocated while f
// ran.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestOversizedFrameRefused: a frame header declaring more than
// MaxMessageSize is refused, naming the limit, without the gateway
// allocating the frame.
func TestOversizedFrameRefused(t *testing.T) {
	srv, logs := limitGateway(t, thriftgw.Options{Framed: true, MaxMessageSize: 1 << 20})
	conn, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	n := allocatedDuring(func() {
		_, err = conn.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
		require.NoError(t, err)
		_, _ = conn.Write(bytes.Repeat([]byte{1}, 1000))
		requireCut(t, conn)
	})
	require.Less(t, n, uint64(64<<20), "refusing a 1 GiB frame allocated %d bytes", n)
	logs.waitLog(t, "limit=MaxMessageSize", "frame_bytes=1073741824")
	serverType(t, dial(t, srv.Addr().String(), true, false))
}

// TestContainerElementsBounded: over the (default, unframed) buffered
// transport nothing bounds a container's declared length by the bytes
// that follow, and the generated code allocates it up front; a request
// declaring 60 million list elements in a few bytes is refused without
// that allocation.
func TestContainerElementsBounded(t *testing.T) {
	srv, _ := limitGateway(t, thriftgw.Options{})
	var buf bytes.Buffer
	p := thrift.NewTBinaryProtocolConf(thrift.NewStreamTransportW(&buf), nil)
	ctx := context.Background()
	require.NoError(t, p.WriteMessageBegin(ctx, "getMultiple", thrift.CALL, 1))
	require.NoError(t, p.WriteStructBegin(ctx, "args"))
	require.NoError(t, p.WriteFieldBegin(ctx, "table", thrift.STRING, 1))
	require.NoError(t, p.WriteBinary(ctx, []byte("t")))
	require.NoError(t, p.WriteFieldBegin(ctx, "tgets", thrift.LIST, 2))
	require.NoError(t, p.WriteListBegin(ctx, thrift.STRUCT, 60_000_000))
	require.NoError(t, p.Flush(ctx))
	conn, err := net.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	n := allocatedDuring(func() {
		_, err = conn.Write(buf.Bytes())
		require.NoError(t, err)
		requireCut(t, conn)
	})
	require.Less(t, n, uint64(64<<20), "a 60M-element list declared in %d bytes allocated %d bytes", buf.Len(), n)
}

// TestUnreadRepliesCutOff: a client that sends requests but never reads
// the replies is cut off once a reply has waited FrameTimeout to be taken
// (the replies fill the socket buffers first), with the limit in the log.
func TestUnreadRepliesCutOff(t *testing.T) {
	// A small send buffer on the gateway's side and a small receive
	// buffer on the client's (set before the handshake so the window
	// stays small): a few hundred replies fill them, not the ~100,000 the
	// kernel's defaults hold (14 s of requests under -race).
	srv, logs := limitGateway(t, thriftgw.WithSendBufferForTest(thriftgw.Options{IdleTimeout: time.Minute, FrameTimeout: 500 * time.Millisecond}, 4096))
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", srv.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	calls := bytes.Repeat(getTypeCall(t), 500_000) // ~20 MB of requests, far more replies than the buffers hold
	wrote := make(chan error, 1)
	go func() { _, err := conn.Write(calls); wrote <- err }()
	logs.waitLog(t, "client does not take its reply", "limit=FrameTimeout")
	require.Error(t, <-wrote, "the gateway kept reading from a client that takes no replies")
}
