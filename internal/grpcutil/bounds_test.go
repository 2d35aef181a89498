package grpcutil_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
)

// blocking answers Get once released, counting the calls in progress and
// recording the caller's certificate name.
type blocking struct {
	kvpb.UnimplementedTabletServer
	release    chan struct{}
	active     atomic.Int64
	peak       atomic.Int64
	mu         sync.Mutex
	lastCaller string
}

func (b *blocking) Get(ctx context.Context, _ *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	n := b.active.Add(1)
	defer b.active.Add(-1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if c := grpcutil.PeerCertificate(ctx); c != nil {
		b.mu.Lock()
		b.lastCaller = c.Subject.CommonName
		b.mu.Unlock()
	}
	<-b.release
	return &kvpb.GetResponse{}, nil
}

func serve(t *testing.T, tls *security.Reloader, b *blocking) string {
	return serveOn(t, "127.0.0.1", tls, b)
}

func serveOn(t *testing.T, host string, tls *security.Reloader, b *blocking) string {
	lis, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpcutil.ServerOptions(tls)...)
	kvpb.RegisterTabletServer(srv, b)
	go func() { _ = srv.Serve(lis) }() //stop:short-lived test server, stopped at cleanup
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// One connection carries at most MaxConcurrentStreams calls at once; the
// others wait on the client (they are not refused) and run as slots free.
func TestConcurrentStreamsBounded(t *testing.T) {
	b := &blocking{release: make(chan struct{})}
	addr := serve(t, nil, b)
	cc, err := grpc.NewClient(addr, grpcutil.DialOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cl := kvpb.NewTabletClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const extra = 16
	errs := make(chan error, grpcutil.MaxConcurrentStreams+extra)
	for range grpcutil.MaxConcurrentStreams + extra {
		go func() { _, err := cl.Get(ctx, &kvpb.GetRequest{}); errs <- err }() //stop:short-lived joined through errs below
	}
	testutils.SucceedsSoon(t, func() error {
		if n := b.active.Load(); n != grpcutil.MaxConcurrentStreams {
			return status.Errorf(codes.Unknown, "%d calls in progress, want %d", n, grpcutil.MaxConcurrentStreams)
		}
		return nil
	})
	// A further call waits for a slot: its deadline passes first.
	short, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = cl.Get(short, &kvpb.GetRequest{})
	scancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call beyond the bound: %v, want DeadlineExceeded", err)
	}
	close(b.release)
	for range grpcutil.MaxConcurrentStreams + extra {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := b.peak.Load(); p != grpcutil.MaxConcurrentStreams {
		t.Fatalf("peak %d calls in progress on one connection, want %d", p, grpcutil.MaxConcurrentStreams)
	}
}

// With a Reloader on both ends the connection is mutual TLS: the handler
// sees the caller's certificate, a client without one is refused, and the
// client checks the dialed address against the server's certificate (an
// IP address too, which TLS's SNI leaves out).
func TestMutualTLSOptions(t *testing.T) {
	dir := t.TempDir()
	o := security.CertOptions{Dir: dir}
	for _, err := range []error{security.CreateCA(o), security.CreateNode(o, "127.0.0.1"), security.CreateClient(o, "alice")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	load := func(cert, key string) *security.Reloader {
		r, err := security.NewReloader(security.Config{CAFile: filepath.Join(dir, security.CAFile), CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	b := &blocking{release: make(chan struct{})}
	close(b.release)
	node := load(security.NodeCert, security.NodeKey)
	addr := serve(t, node, b)
	alice := load(security.ClientCertFile("alice"), security.ClientKeyFile("alice"))
	call := func(target string, tls *security.Reloader) error {
		cc, err := grpc.NewClient(target, grpcutil.DialOptions(tls)...)
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = kvpb.NewTabletClient(cc).Get(ctx, &kvpb.GetRequest{})
		return err
	}
	if err := call(addr, alice); err != nil {
		t.Fatal(err)
	}
	if b.lastCaller != "alice" {
		t.Fatalf("handler saw caller %q, want alice", b.lastCaller)
	}
	if err := call(addr, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: %v", err)
	}
	// The same certificate (naming 127.0.0.1) served on 127.0.0.2: a
	// client dialing 127.0.0.2 must refuse it.
	other := serveOn(t, "127.0.0.2", node, b)
	if err := call(other, alice); err == nil || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("the client accepted a certificate that does not name the address it dialed: %v", err)
	}
}
