package transport

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/transportpb"
)

// certsFor writes a node certificate for host (or, with host "", a client
// certificate for alice) signed by the CA in ca, into a new directory, and
// returns a Reloader for it.
func certsFor(t *testing.T, ca, host string) *security.Reloader {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{security.CAFile, security.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(ca, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	cfg := security.Config{CAFile: filepath.Join(dir, security.CAFile)}
	if host == "" {
		require.NoError(t, security.CreateClient(security.CertOptions{Dir: dir}, "alice"))
		cfg.CertFile, cfg.KeyFile = filepath.Join(dir, security.ClientCertFile("alice")), filepath.Join(dir, security.ClientKeyFile("alice"))
	} else {
		require.NoError(t, security.CreateNode(security.CertOptions{Dir: dir}, host))
		cfg.CertFile, cfg.KeyFile = filepath.Join(dir, security.NodeCert), filepath.Join(dir, security.NodeKey)
	}
	r, err := security.NewReloader(cfg)
	require.NoError(t, err)
	return r
}

// secureReceiver serves a TLS transport for store 1 on 127.0.0.1; stores 2
// and 3 resolve to 127.0.0.2 and 127.0.0.3.
func secureReceiver(t *testing.T, ca string) (string, *recorder) {
	res := newTestResolver()
	h := &recorder{unreachable: map[uint64]int{}}
	tr, err := New(Options{StoreID: 1, Resolver: res, TLS: certsFor(t, ca, "127.0.0.1"), Logger: testLogger(t)}, h)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpcutil.ServerOptions(tr.opts.TLS)...)
	tr.Register(srv)
	go func() { _ = srv.Serve(lis) }() //stop:short-lived test server, stopped at cleanup
	t.Cleanup(func() { tr.Close(); srv.Stop() })
	res.set(1, lis.Addr().String())
	res.set(2, "127.0.0.2:20160")
	res.set(3, "127.0.0.3:20160")
	return lis.Addr().String(), h
}

func sendBatch(t *testing.T, addr string, as *security.Reloader, b *transportpb.RaftMessageBatch) error {
	cc, err := grpc.NewClient(addr, grpcutil.DialOptions(as)...)
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := transportpb.NewRaftTransportClient(cc).Send(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(b); err != nil {
		_, err = st.CloseAndRecv()
		return err
	}
	_, err = st.CloseAndRecv()
	return err
}

// On a secure transport a batch is accepted only from a node certificate
// valid for the address of the store it claims; a client certificate, a
// node speaking for another store, or a message claiming another store
// inside the batch is refused with PermissionDenied and never reaches the
// store.
func TestTransportBindsStoreToCertificate(t *testing.T) {
	ca := t.TempDir()
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: ca}))
	addr, h := secureReceiver(t, ca)
	node2 := certsFor(t, ca, "127.0.0.2")

	require.NoError(t, sendBatch(t, addr, node2, &transportpb.RaftMessageBatch{FromStore: 2, Messages: []*transportpb.RaftMessage{msg(7, 2, 1, 1)}}))
	require.Len(t, h.messages(), 1, "store 2's own batch is delivered")

	refused := map[string]struct {
		as *security.Reloader
		b  *transportpb.RaftMessageBatch
	}{
		"node 2 claiming store 3":          {node2, &transportpb.RaftMessageBatch{FromStore: 3, Messages: []*transportpb.RaftMessage{msg(7, 3, 1, 1)}}},
		"store 3 inside store 2's batch":   {node2, &transportpb.RaftMessageBatch{FromStore: 2, Messages: []*transportpb.RaftMessage{msg(7, 3, 1, 1)}}},
		"a client certificate":             {certsFor(t, ca, ""), &transportpb.RaftMessageBatch{FromStore: 2}},
		"node 2 claiming an unknown store": {node2, &transportpb.RaftMessageBatch{FromStore: 9}},
	}
	for name, c := range refused {
		err := sendBatch(t, addr, c.as, c.b)
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%s: %v", name, err)
	}
	require.Len(t, h.messages(), 1, "no refused batch reached the store")

	// Another CA's node certificate for the right address fails the
	// handshake, and so does no certificate at all.
	other := t.TempDir()
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: other}))
	require.Equal(t, codes.Unavailable, status.Code(sendBatch(t, addr, certsFor(t, other, "127.0.0.2"), &transportpb.RaftMessageBatch{FromStore: 2})))
	require.Equal(t, codes.Unavailable, status.Code(sendBatch(t, addr, nil, &transportpb.RaftMessageBatch{FromStore: 2})))
	require.Len(t, h.messages(), 1)
}

// A snapshot's claimed sender is checked like a batch's.
func TestTransportSnapshotBindsStoreToCertificate(t *testing.T) {
	ca := t.TempDir()
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: ca}))
	addr, _ := secureReceiver(t, ca)
	cc, err := grpc.NewClient(addr, grpcutil.DialOptions(certsFor(t, ca, "127.0.0.2"))...)
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := transportpb.NewRaftTransportClient(cc).Snapshot(ctx)
	require.NoError(t, err)
	_ = st.Send(&transportpb.SnapshotChunk{Header: &transportpb.SnapshotHeader{TabletId: 7, FromStore: 3, ToStore: 1}, Final: true})
	_, err = st.CloseAndRecv()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
}
