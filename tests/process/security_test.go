package process

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/proto/transportpb"
	sqllite "github.com/shaledb/shale/sql-lite"
)

// secureCerts are a secure test cluster's certificates, made by the
// `shale cert` command: the CA and root's client certificate in dir, and
// one directory per process (dir/NAME) with its node certificate.
type secureCerts struct {
	t   *testing.T
	dir string
}

func shaleCert(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(proctest.Binary(t), append([]string{"cert", "--log-level", "warn"}, args...)...).CombinedOutput()
	require.NoError(t, err, "shale cert %v: %s", args, out)
}

func newSecureCerts(t *testing.T) *secureCerts {
	s := &secureCerts{t: t, dir: filepath.Join(t.TempDir(), "certs")}
	shaleCert(t, "create-ca", "--certs-dir", s.dir)
	shaleCert(t, "create-client", "--certs-dir", s.dir, "root")
	return s
}

// nodeFlags creates (once) the node certificate of process name for host
// and returns the flags it starts with; a nil s gives --insecure.
func (s *secureCerts) nodeFlags(t *testing.T, name, host string) []string {
	if s == nil {
		return []string{"--insecure"}
	}
	d := filepath.Join(s.dir, name)
	if _, err := os.Stat(filepath.Join(d, security.NodeCert)); err != nil {
		require.NoError(t, os.MkdirAll(d, 0o700))
		for _, f := range []string{security.CAFile, security.CAKeyFile} {
			b, err := os.ReadFile(filepath.Join(s.dir, f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(d, f), b, 0o600))
		}
		shaleCert(t, "create-node", "--certs-dir", d, host)
	}
	return []string{"--tls-ca", filepath.Join(d, security.CAFile), "--tls-cert", filepath.Join(d, security.NodeCert), "--tls-key", filepath.Join(d, security.NodeKey)}
}

// rotate replaces every node certificate (same hosts, new keys) and root's
// client certificate on disk, as an operator renewing them would.
func (s *secureCerts) rotate(t *testing.T, hosts map[string]string) {
	for name, host := range hosts {
		shaleCert(t, "create-node", "--certs-dir", filepath.Join(s.dir, name), "--overwrite", host)
	}
	shaleCert(t, "create-client", "--certs-dir", s.dir, "--overwrite", "root")
}

func (s *secureCerts) clientTLS() *security.Reloader {
	if s == nil {
		return nil
	}
	return s.reloader(s.dir, security.ClientCertFile("root"), security.ClientKeyFile("root"))
}

func (s *secureCerts) reloader(dir, cert, key string) *security.Reloader {
	r, err := security.NewReloader(security.Config{CAFile: filepath.Join(dir, security.CAFile), CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)})
	require.NoError(s.t, err)
	return r
}

// httpTLS is the client configuration for a status port on host (nil
// when insecure).
func (s *secureCerts) httpTLS(host string) *tls.Config {
	if s == nil {
		return nil
	}
	return s.clientTLS().ClientTLS(host)
}

// onHost moves a 127.0.0.1:PORT address to another loopback host.
func onHost(addr, host string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, port)
}

// serial is the serial number of the certificate in file.
func serial(t *testing.T, file string) string {
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, file)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c.SerialNumber.String()
}

// servedSerial handshakes with addr and returns its certificate's serial.
func servedSerial(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// sendRaft sends one raft batch to the store at addr as the holder of tls.
func sendRaft(addr string, as *security.Reloader, b *transportpb.RaftMessageBatch) error {
	cc, err := grpc.NewClient(addr, grpcutil.DialOptions(as)...)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := transportpb.NewRaftTransportClient(cc).Send(ctx)
	if err != nil {
		return err
	}
	_ = st.Send(b)
	_, err = st.CloseAndRecv()
	return err
}

// TestSecureCluster runs PD, three tablet servers and the Thrift gateway
// as processes with certificates made by `shale cert` (each tablet server
// on its own loopback address with its own certificate), and checks that
// clients with root's certificate are served, clients without one or
// with another CA's are refused, raft traffic from a client certificate
// or from a node claiming another store is refused, and certificates
// renewed on disk are picked up without a restart.
func TestSecureCluster(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	c.secure = newSecureCerts(t)
	c.startPD("pd1")
	for range 3 {
		c.addStore()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	gwAddr := proctest.FreeAddr(t)
	gw := proctest.Start(t, "thrift", filepath.Join(c.dir, "thrift.log"), append([]string{"thrift", "--pd", strings.Join(c.endpoints(), ","), "--addr", gwAddr, "--http-addr", proctest.FreeAddr(t)},
		c.secure.nodeFlags(t, "pd1", "127.0.0.1")...)...)
	gw.WaitOutput(t, "TLS with client certificates", time.Minute)

	root := c.secure.clientTLS()
	put := func(tls *security.Reloader, key string) error {
		octx, ocancel := context.WithTimeout(ctx, 20*time.Second)
		defer ocancel()
		kv, err := kvclient.Open(octx, kvclient.Options{PD: c.endpoints(), TLS: tls, RequestTimeout: 15 * time.Second})
		if err != nil {
			return err
		}
		defer kv.Close()
		if err := kv.RawPut(octx, []byte(key), []byte("v-"+key)); err != nil {
			return err
		}
		v, ok, err := kv.RawGet(octx, []byte(key))
		if err == nil && (!ok || string(v) != "v-"+key) {
			err = fmt.Errorf("read back %q, %v", v, ok)
		}
		return err
	}
	testutils.SucceedsSoon(t, func() error { return put(root, "before") })

	other := t.TempDir()
	shaleCert(t, "create-ca", "--certs-dir", other)
	shaleCert(t, "create-client", "--certs-dir", other, "root")
	for name, tls := range map[string]*security.Reloader{
		"no certificate": nil,
		"another CA":     c.secure.reloader(other, security.ClientCertFile("root"), security.ClientKeyFile("root")),
	} {
		octx, ocancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := kvclient.Open(octx, kvclient.Options{PD: c.endpoints(), TLS: tls})
		ocancel()
		require.Error(t, err, name)
	}

	// Raft traffic: store IDs by address.
	stores, err := c.pdc().ListStores(ctx, &pdpb.ListStoresRequest{})
	require.NoError(t, err)
	ids := map[string]uint64{}
	for _, s := range stores.Stores {
		ids[s.Store.Address] = s.Store.StoreId
	}
	target, self, victim := c.stores[0].addr, ids[c.stores[1].addr], ids[c.stores[2].addr]
	require.NotZero(t, self)
	require.NotZero(t, victim)
	err = sendRaft(target, root, &transportpb.RaftMessageBatch{FromStore: self})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "raft batch with a client certificate: %v", err)
	store1 := c.secure.reloader(filepath.Join(c.secure.dir, "store1"), security.NodeCert, security.NodeKey)
	err = sendRaft(target, store1, &transportpb.RaftMessageBatch{FromStore: victim})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "store %d's certificate claiming store %d: %v", self, victim, err)
	require.NoError(t, sendRaft(target, store1, &transportpb.RaftMessageBatch{FromStore: self}), "a store's own liveness ping")

	thriftGet := func(tls *security.Reloader) error {
		cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 10 * time.Second, TLSConfig: tls.ClientTLS("127.0.0.1")}
		trans := thrift.NewTBufferedTransport(thrift.NewTSSLSocketConf(gwAddr, cfg), 8192)
		if err := trans.Open(); err != nil {
			return err
		}
		defer trans.Close()
		r, err := hbase.NewTHBaseServiceClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(cfg)).Get(ctx, []byte("kv"), &hbase.TGet{Row: []byte("before")})
		if err == nil && len(r.ColumnValues) != 1 {
			err = fmt.Errorf("thrift get: %v", r)
		}
		return err
	}
	require.NoError(t, thriftGet(root))

	// Renew every certificate on disk; the processes serve the new ones
	// on new connections, and the cluster keeps serving.
	hosts := map[string]string{"pd1": "127.0.0.1"}
	for i := range c.stores {
		hosts[fmt.Sprintf("store%d", i)] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	c.secure.rotate(t, hosts)
	checks := map[string]string{c.pdClient["pd1"]: "pd1", gwAddr: "pd1"}
	for i, s := range c.stores {
		checks[s.addr], checks[s.http] = fmt.Sprintf("store%d", i), fmt.Sprintf("store%d", i)
	}
	fresh := c.secure.clientTLS()
	for addr, name := range checks {
		want := serial(t, filepath.Join(c.secure.dir, name, security.NodeCert))
		host, _, _ := net.SplitHostPort(addr)
		cfg := fresh.ClientTLS(host)
		cfg.NextProtos = []string{"h2", "http/1.1"}
		testutils.SucceedsSoon(t, func() error {
			got, err := servedSerial(addr, cfg)
			if err == nil && got != want {
				err = fmt.Errorf("%s (%s) still serves certificate %s, not the renewed %s", addr, name, got, want)
			}
			return err
		})
	}
	require.NoError(t, put(fresh, "after"), "the cluster serves a client with the renewed certificate")
	require.NoError(t, thriftGet(fresh))
	for _, p := range append([]*proctest.Proc{c.pd["pd1"], gw}, c.stores[0].p, c.stores[1].p, c.stores[2].p) {
		require.False(t, p.Exited(), "%s restarted or died", p.Name)
	}
}

// permissionDenied is nil when err is an authorization refusal.
func permissionDenied(err error) error {
	if tio := (*hbase.TIOError)(nil); errors.As(err, &tio) && tio.Message != nil {
		err = fmt.Errorf("thrift TIOError: %s", *tio.Message)
	}
	switch {
	case err == nil:
		return errors.New("allowed, want a refusal")
	case status.Code(err) == codes.PermissionDenied, strings.Contains(strings.ToLower(err.Error()), "permission denied"), strings.Contains(err.Error(), "code = PermissionDenied"),
		strings.Contains(err.Error(), "Error 1142"), strings.Contains(err.Error(), "ERROR 1142"):
		return nil
	}
	return fmt.Errorf("want a permission refusal, got %w", err)
}

// access is one way in (kvclient, Thrift, SQL, MySQL) as one user: read
// and write table a, read table b.
type access struct {
	name                 string
	readA, writeA, readB func() error
}

// TestSecureClusterUsers runs PD, three tablet servers, the Thrift gateway
// and the MySQL endpoint (`shale sql-server`) as processes with
// certificates from `shale cert`. User alice, granted read on table ta,
// reads ta and is refused writing ta and reading tb through kvclient,
// Thrift, `shale sql` and a sqllite.Session (her client certificate) and
// the MySQL protocol (her password); a revoke is enforced on every path
// within authz.RevocationBound; a raft message sent with her client
// certificate is refused.
func TestSecureClusterUsers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	c.secure = newSecureCerts(t)
	c.startPD("pd1")
	for range 3 {
		c.addStore()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pd := strings.Join(c.endpoints(), ",")
	node := c.secure.nodeFlags(t, "pd1", "127.0.0.1")
	gwAddr, myAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	gwHTTP, myHTTP := proctest.FreeAddr(t), proctest.FreeAddr(t)
	gw := proctest.Start(t, "thrift", filepath.Join(c.dir, "thrift.log"), append([]string{"thrift", "--pd", pd, "--addr", gwAddr, "--http-addr", gwHTTP}, node...)...)
	my := proctest.Start(t, "sql-server", filepath.Join(c.dir, "sql-server.log"), append([]string{"sql-server", "--pd", pd, "--addr", myAddr, "--http-addr", myHTTP}, node...)...)
	gw.WaitOutput(t, "TLS with client certificates", time.Minute)
	my.WaitOutput(t, "listening on", time.Minute)

	shaleCert(t, "create-client", "--certs-dir", c.secure.dir, "alice")
	clientFlags := func(user string) []string {
		return []string{"--tls-ca", filepath.Join(c.secure.dir, security.CAFile),
			"--tls-cert", filepath.Join(c.secure.dir, security.ClientCertFile(user)), "--tls-key", filepath.Join(c.secure.dir, security.ClientKeyFile(user))}
	}
	shaleSQL := func(user, sql string) error {
		args := append([]string{"sql", "--pd", pd, "--log-level", "warn", "-e", sql}, clientFlags(user)...)
		out, err := exec.CommandContext(ctx, proctest.Binary(t), args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("shale sql: %v: %s", err, out)
		}
		return nil
	}
	require.NoError(t, shaleSQL("root", "CREATE TABLE ta (id BIGINT PRIMARY KEY, v VARCHAR(10)); INSERT INTO ta VALUES (1, 'a');"+
		"CREATE TABLE tb (id BIGINT PRIMARY KEY, v VARCHAR(10)); INSERT INTO tb VALUES (1, 'b')"))
	root, err := kvclient.Open(ctx, kvclient.Options{PD: c.endpoints(), TLS: c.secure.clientTLS()})
	require.NoError(t, err)
	defer root.Close()
	require.NoError(t, root.CreateUser(ctx, "alice", "alice-pw"))
	readTA := &pdpb.AuthGrant{Permission: pdpb.AuthPermission_READ, On: &pdpb.AuthGrant_TableId{}}
	require.NoError(t, root.Grant(ctx, &pdpb.GrantRequest{Role: "alice", Table: "ta", Grant: readTA}))

	aliceTLS := c.secure.reloader(c.secure.dir, security.ClientCertFile("alice"), security.ClientKeyFile("alice"))
	alice, err := kvclient.Open(ctx, kvclient.Options{PD: c.endpoints(), TLS: aliceTLS, RequestTimeout: 10 * time.Second})
	require.NoError(t, err)
	defer alice.Close()
	sess, err := sqllite.Open(ctx, alice)
	require.NoError(t, err)
	defer sess.Close()
	exec1 := func(q string) func() error {
		return func() error {
			qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
			defer qcancel()
			_, err := sess.Exec(qctx, q)
			return err
		}
	}
	table := func(name string) *kvclient.Table {
		tb, err := alice.Table(ctx, name)
		require.NoError(t, err)
		return tb
	}
	ta, tb := table("ta"), table("tb")
	fam := ta.Info().Families[0].Name
	kvRead := func(tb *kvclient.Table) func() error {
		return func() error {
			qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
			defer qcancel()
			_, err := tb.Get(qctx, []byte("row"))
			return err
		}
	}

	thriftCall := func(f func(context.Context, *hbase.THBaseServiceClient) error) error {
		cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 10 * time.Second, TLSConfig: aliceTLS.ClientTLS("127.0.0.1")}
		trans := thrift.NewTBufferedTransport(thrift.NewTSSLSocketConf(gwAddr, cfg), 8192)
		if err := trans.Open(); err != nil {
			return err
		}
		defer trans.Close()
		return f(ctx, hbase.NewTHBaseServiceClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(cfg)))
	}
	thriftGet := func(table string) func() error {
		return func() error {
			return thriftCall(func(ctx context.Context, cl *hbase.THBaseServiceClient) error {
				_, err := cl.Get(ctx, []byte(table), &hbase.TGet{Row: []byte("row")})
				return err
			})
		}
	}

	caPEM, err := os.ReadFile(filepath.Join(c.secure.dir, security.CAFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	require.NoError(t, mysqldrv.RegisterTLSConfig("process-users", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	db, err := sql.Open("mysql", fmt.Sprintf("alice:alice-pw@tcp(%s)/shale?tls=process-users&timeout=10s", myAddr))
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1) // one session, kept open across the revoke
	myQuery := func(q string) func() error {
		return func() error {
			qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
			defer qcancel()
			rows, err := db.QueryContext(qctx, q)
			if err == nil {
				rows.Close()
			}
			return err
		}
	}

	paths := []access{
		{"kvclient", kvRead(ta), func() error {
			_, err := ta.MutateRow(ctx, []byte("row"), kvclient.SetCell(fam, []byte("q"), []byte("v")))
			return err
		}, kvRead(tb)},
		{"thrift", thriftGet("ta"), func() error {
			return thriftCall(func(ctx context.Context, cl *hbase.THBaseServiceClient) error {
				return cl.Put(ctx, []byte("ta"), &hbase.TPut{Row: []byte("row"), ColumnValues: []*hbase.TColumnValue{{Family: []byte(fam), Qualifier: []byte("q"), Value: []byte("v")}}})
			})
		}, thriftGet("tb")},
		{"shale sql", func() error { return shaleSQL("alice", "SELECT v FROM ta") }, func() error { return shaleSQL("alice", "INSERT INTO ta VALUES (2, 'x')") },
			func() error { return shaleSQL("alice", "SELECT v FROM tb") }},
		{"sqllite.Session", exec1("SELECT v FROM ta"), exec1("INSERT INTO ta VALUES (3, 'x')"), exec1("SELECT v FROM tb")},
		{"mysql", myQuery("SELECT v FROM ta"), func() error {
			_, err := db.ExecContext(ctx, "INSERT INTO ta VALUES (4, 'x')")
			return err
		}, myQuery("SELECT v FROM tb")},
	}
	for _, p := range paths {
		// The gateways' caches pick up the new user and grant within the bound.
		testutils.SucceedsWithin(t, authz.RevocationBound+10*time.Second, p.readA)
		require.NoError(t, permissionDenied(p.writeA()), "%s: alice writes ta", p.name)
		require.NoError(t, permissionDenied(p.readB()), "%s: alice reads tb", p.name)
	}
	var rows []string
	r, err := db.QueryContext(ctx, "SELECT v FROM ta")
	require.NoError(t, err)
	for r.Next() {
		var v string
		require.NoError(t, r.Scan(&v))
		rows = append(rows, v)
	}
	require.NoError(t, r.Close())
	require.Equal(t, []string{"a"}, rows, "no refused write was applied")

	// A revoke: every path refuses within the documented bound (the
	// MySQL session stays open across it).
	require.NoError(t, root.Revoke(ctx, &pdpb.RevokeRequest{Role: "alice", Table: "ta", Grant: &pdpb.AuthGrant{On: &pdpb.AuthGrant_TableId{}}}))
	revoked := time.Now()
	for _, p := range paths {
		if p.name == "shale sql" {
			continue // a new process per try: measured by the Session, the same client path
		}
		testutils.SucceedsWithin(t, authz.RevocationBound-time.Since(revoked), func() error { return permissionDenied(p.readA()) })
		t.Logf("%s: revoke enforced after %v (bound %v)", p.name, time.Since(revoked).Round(time.Millisecond), authz.RevocationBound)
	}
	require.NoError(t, permissionDenied(shaleSQL("alice", "SELECT v FROM ta")), "shale sql after the revoke")

	// The gateways' status ports: TLS, and authorized as PD's and the
	// stores' are (alice may read /metrics, not profiles; root may).
	for _, addr := range []string{gwHTTP, myHTTP} {
		checkSecureStatusPort(t, addr, c.secure.clientTLS(), aliceTLS)
	}

	// Raft traffic with alice's client certificate is refused.
	stores, err := c.pdc().ListStores(ctx, &pdpb.ListStoresRequest{})
	require.NoError(t, err)
	err = sendRaft(c.stores[0].addr, aliceTLS, &transportpb.RaftMessageBatch{FromStore: stores.Stores[1].Store.StoreId})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "raft batch with alice's client certificate: %v", err)
}

// checkSecureStatusPort checks a secure process's HTTP port at addr: a
// plaintext client is not served (Go's TLS server answers 400), /healthz
// needs no certificate, /metrics any identity of the CA (user, a client
// certificate without grants) and pprof a cluster admin (root), as
// internal/authz's HTTP table says.
func checkSecureStatusPort(t *testing.T, addr string, root, user *security.Reloader) {
	t.Helper()
	get := func(c *http.Client, url string) int {
		t.Helper()
		resp, err := c.Get(url)
		require.NoError(t, err, url)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	require.Equal(t, http.StatusBadRequest, get(client(nil), "http://"+addr+"/metrics"), "%s: plaintext", addr)
	base := "https://" + addr
	for _, c := range []struct {
		who                    string
		cfg                    *tls.Config
		health, metrics, pprof int
	}{
		// The server's certificate is not what this case checks.
		{"no certificate", &tls.Config{InsecureSkipVerify: true}, http.StatusOK, http.StatusUnauthorized, http.StatusUnauthorized}, //nolint:gosec
		{"a user, not an admin", user.ClientTLS("127.0.0.1"), http.StatusOK, http.StatusOK, http.StatusForbidden},
		{"root", root.ClientTLS("127.0.0.1"), http.StatusOK, http.StatusOK, http.StatusOK},
	} {
		hc := client(c.cfg)
		require.Equal(t, c.health, get(hc, base+"/healthz"), "%s: %s /healthz", addr, c.who)
		require.Equal(t, c.metrics, get(hc, base+"/metrics"), "%s: %s /metrics", addr, c.who)
		require.Equal(t, c.pprof, get(hc, base+"/debug/pprof/"), "%s: %s /debug/pprof/", addr, c.who)
	}
}
