package security

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// reloader loads a certificate pair from dir.
func reloader(t *testing.T, dir, cert, key string) *security.Reloader {
	t.Helper()
	r, err := security.NewReloader(security.Config{CAFile: filepath.Join(dir, security.CAFile), CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)})
	require.NoError(t, err)
	return r
}

// otherCA is a client certificate for root from an unrelated CA.
func otherCA(t *testing.T) *security.Reloader {
	dir := t.TempDir()
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: dir}))
	require.NoError(t, security.CreateClient(security.CertOptions{Dir: dir}, "root"))
	return reloader(t, dir, security.ClientCertFile("root"), security.ClientKeyFile("root"))
}

func open(ctx context.Context, c *testcluster.Cluster, tls *security.Reloader) (*kvclient.Client, error) {
	return kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: tls, RequestTimeout: 3 * time.Second})
}

func TestSecureCluster(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Secure: true, PDMembers: 3}) // PD members talk over TLS too
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	kv, err := open(ctx, c, c.ClientTLS())
	require.NoError(t, err)
	defer kv.Close()
	require.NoError(t, kv.RawPut(ctx, []byte("k"), []byte("v")))
	v, ok, err := kv.RawGet(ctx, []byte("k"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "v", string(v))

	t.Run("refused", func(t *testing.T) {
		for name, tls := range map[string]*security.Reloader{"no certificate": nil, "another CA": otherCA(t)} {
			octx, ocancel := context.WithTimeout(ctx, 3*time.Second)
			cl, err := open(octx, c, tls)
			if err == nil {
				_, _, err = cl.RawGet(octx, []byte("k"))
				cl.Close()
			}
			ocancel()
			require.Error(t, err, name)
		}
	})

	// PD binds a store's address to its registering certificate.
	t.Run("registration", func(t *testing.T) {
		register := func(tls *security.Reloader, st *metapb.Store) error {
			pd, err := pdclient.New(c.PDEndpoints(), 0, pdclient.WithTLS(tls))
			require.NoError(t, err)
			defer pd.Close()
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			defer rcancel()
			_, err = pd.RegisterStore(rctx, &pdpb.RegisterStoreRequest{Store: st})
			return err
		}
		err := register(c.ClientTLS(), &metapb.Store{Address: "127.0.0.1:1"})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "a client certificate registering a store: %v", err)
		err = register(c.NodeTLS(), &metapb.Store{Address: "10.9.9.9:20160"})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "a node certificate registering an address it is not valid for: %v", err)
		// Another certificate from the same CA, valid only for
		// 127.0.0.2, may not move store 1000 (registered at 127.0.0.1).
		dir := t.TempDir()
		for _, f := range []string{security.CAFile, security.CAKeyFile} {
			b, err := os.ReadFile(filepath.Join(c.CertsDir(), f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
		}
		require.NoError(t, security.CreateNode(security.CertOptions{Dir: dir}, "127.0.0.2"))
		stores, err := c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
		require.NoError(t, err)
		victim := stores.Stores[0].Store.StoreId
		err = register(reloader(t, dir, security.NodeCert, security.NodeKey), &metapb.Store{StoreId: victim, Address: "127.0.0.2:20160"})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "moving store %d to another node's address: %v", victim, err)
	})

	t.Run("thrift", func(t *testing.T) {
		gw, err := thriftgw.Listen(thriftgw.Options{Client: kv, Addr: "127.0.0.1:0", Thrift1Addr: "127.0.0.1:0", TLS: c.NodeTLS()})
		require.NoError(t, err)
		gctx, gcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- gw.Run(gctx) }() //stop:short-lived gateway, stopped below
		defer func() { gcancel(); <-done }()
		get := func(sock thrift.TTransport) error {
			cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 5 * time.Second}
			trans := thrift.NewTBufferedTransport(sock, 8192)
			if err := trans.Open(); err != nil {
				return err
			}
			defer trans.Close()
			cl := hbase.NewTHBaseServiceClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(cfg))
			r, err := cl.Get(ctx, []byte("kv"), &hbase.TGet{Row: []byte("k")})
			if err == nil && (len(r.ColumnValues) != 1 || string(r.ColumnValues[0].Value) != "v") {
				t.Fatalf("thrift get: %v", r)
			}
			return err
		}
		conf := func(tls *security.Reloader) *thrift.TConfiguration {
			cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 5 * time.Second}
			if tls != nil {
				cfg.TLSConfig = tls.ClientTLS("127.0.0.1")
			}
			return cfg
		}
		addr := gw.Addr().String()
		require.NoError(t, get(thrift.NewTSSLSocketConf(addr, conf(c.ClientTLS()))))
		require.Error(t, get(thrift.NewTSocketConf(addr, conf(nil))), "a plaintext Thrift client")
		require.Error(t, get(thrift.NewTSSLSocketConf(addr, conf(otherCA(t)))), "a Thrift client of another CA")

		// The Thrift1 listener: the same TLS.
		get1 := func(sock thrift.TTransport) error {
			trans := thrift.NewTBufferedTransport(sock, 8192)
			if err := trans.Open(); err != nil {
				return err
			}
			defer trans.Close()
			cl := hbase1.NewHbaseClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(&thrift.TConfiguration{}))
			r, err := cl.GetRow(ctx, []byte("kv"), []byte("k"), nil)
			if err == nil && (len(r) != 1 || r[0].Columns["v:"] == nil || string(r[0].Columns["v:"].Value) != "v") {
				t.Fatalf("thrift1 getRow: %v", r)
			}
			return err
		}
		addr1 := gw.Thrift1Addr().String()
		require.NoError(t, get1(thrift.NewTSSLSocketConf(addr1, conf(c.ClientTLS()))))
		require.Error(t, get1(thrift.NewTSocketConf(addr1, conf(nil))), "a plaintext Thrift1 client")
		require.Error(t, get1(thrift.NewTSSLSocketConf(addr1, conf(otherCA(t)))), "a Thrift1 client of another CA")
	})
}
