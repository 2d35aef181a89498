package mysqlwire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/pdpb"
	sqllite "github.com/shaledb/shale/sql-lite"
)

// secureSQL is a secure one-store cluster with a wire server acting as
// PD's users: tables ta and tb (one row each), user alice (password
// alice-pw) with read on ta.
type secureSQL struct {
	c      *testcluster.Cluster
	root   *kvclient.Client
	caFile string
	tlsKey string // go-sql-driver TLS config name (CA only: no client certificate)
	ta, tb string
}

func startSecureSQL(t *testing.T) *secureSQL {
	c := testcluster.Start(t, testcluster.Options{Secure: true, Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.ClientTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = root.Close() })
	s := &secureSQL{c: c, root: root, caFile: filepath.Join(c.CertsDir(), security.CAFile), ta: tableName(t, "ta"), tb: tableName(t, "tb")}
	sess, err := sqllite.Open(ctx, root)
	require.NoError(t, err)
	defer sess.Close()
	for _, q := range []string{
		"CREATE TABLE " + s.ta + " (id BIGINT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO " + s.ta + " VALUES (1, 'a')",
		"CREATE TABLE " + s.tb + " (id BIGINT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO " + s.tb + " VALUES (1, 'b')",
	} {
		_, err := sess.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, root.CreateUser(ctx, "alice", "alice-pw"))
	require.NoError(t, root.Grant(ctx, &pdpb.GrantRequest{Role: "alice", Table: s.ta, Grant: &pdpb.AuthGrant{Permission: pdpb.AuthPermission_READ, On: &pdpb.AuthGrant_TableId{}}}))

	pem, err := os.ReadFile(s.caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	s.tlsKey = fmt.Sprintf("shale-users-%d", time.Now().UnixNano())
	require.NoError(t, mysqldrv.RegisterTLSConfig(s.tlsKey, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}))
	return s
}

// server starts a wire server for plugin whose sessions act as PD's users,
// reaching the cluster as a node (as `shale sql-server` does).
func (s *secureSQL) server(t *testing.T, plugin string) (*Server, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gw, err := kvclient.Open(ctx, kvclient.Options{PD: s.c.PDEndpoints(), TLS: s.c.NodeTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = gw.Close() })
	cache, err := authz.NewCache(gw, authz.CacheOptions{})
	require.NoError(t, err)
	stopper := stop.New()
	t.Cleanup(func() { _ = stopper.Stop(context.Background()) })
	require.NoError(t, cache.Run(context.Background(), stopper))
	az, err := authz.New(authz.Options{Mode: authz.Secure, Policies: cache})
	require.NoError(t, err)
	srv, err := New(gw, Config{TLS: s.c.NodeTLS(), Authz: az, AuthPlugin: plugin})
	require.NoError(t, err)
	addr, err := srv.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, addr.String()
}

// Users of PD log in over the MySQL protocol with the passwords PD stores
// only as hashes, with both authentication methods, through
// go-sql-driver/mysql; each session acts as its user: alice reads the
// table she may read and is refused (1142) writing it or reading another.
// Wrong passwords and unknown users get 1045; a changed password takes
// over (the caching_sha2_password cache does not keep the old one).
func TestPDUsersLogInWithDriver(t *testing.T) {
	s := startSecureSQL(t)
	for _, plugin := range []string{AuthNative, AuthCachingSHA} {
		t.Run(plugin, func(t *testing.T) {
			srv, addr := s.server(t, plugin)
			params := "tls=" + s.tlsKey
			var v string
			// The authorizer's cache may not hold alice yet.
			testutils.SucceedsSoon(t, func() error {
				return openDB(t, addr, "alice", "alice-pw", params).QueryRow("SELECT v FROM " + s.ta).Scan(&v)
			})
			require.Equal(t, "a", v)
			db := openDB(t, addr, "alice", "alice-pw", params)
			require.NoError(t, db.QueryRow("SELECT USER()").Scan(&v))
			require.True(t, strings.HasPrefix(v, "alice@"), v)
			_, err := db.Exec("INSERT INTO " + s.ta + " VALUES (2, 'x')")
			require.Equal(t, uint16(1142), driverErr(t, err).Number, "%v", err)
			err = db.QueryRow("SELECT v FROM " + s.tb).Scan(&v)
			require.Equal(t, uint16(1142), driverErr(t, err).Number, "%v", err)
			if plugin == AuthCachingSHA {
				u, err := srv.cfg.Authz.User("alice")
				require.NoError(t, err)
				_, cached := srv.sha2.get("alice", u.PasswordHash)
				require.True(t, cached, "a full authentication fills the cache")
				// A second login takes the fast path.
				require.NoError(t, openDB(t, addr, "alice", "alice-pw", params).Ping())
			}

			for _, c := range []struct{ user, pw string }{{"alice", "wrong"}, {"nobody", "alice-pw"}, {"alice", ""}} {
				err := openDB(t, addr, c.user, c.pw, params).Ping()
				require.Equal(t, uint16(1045), driverErr(t, err).Number, "%s/%q: %v", c.user, c.pw, err)
			}
			err = openDB(t, addr, "alice", "alice-pw", "").Ping()
			require.Equal(t, uint16(3159), driverErr(t, err).Number, "plaintext: %v", err)
		})
	}

	t.Run("password change", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, native := s.server(t, AuthNative)
		_, sha := s.server(t, AuthCachingSHA)
		params := "tls=" + s.tlsKey
		for _, addr := range []string{native, sha} {
			testutils.SucceedsSoon(t, func() error { return openDB(t, addr, "alice", "alice-pw", params).Ping() })
		}
		require.NoError(t, s.root.SetPassword(ctx, "alice", "new-pw"))
		for _, addr := range []string{native, sha} {
			testutils.SucceedsSoon(t, func() error { return openDB(t, addr, "alice", "new-pw", params).Ping() })
			err := openDB(t, addr, "alice", "alice-pw", params).Ping()
			require.Equal(t, uint16(1045), driverErr(t, err).Number, "the old password: %v", err)
		}
	})
}

// The real mariadb/mysql client logs in as a user of PD with both methods
// over TLS (verifying the server against the cluster's CA) and is refused
// what the user was not granted.
func TestPDUsersLogInWithCLI(t *testing.T) {
	bin := mysqlCLI(t)
	s := startSecureSQL(t)
	for _, plugin := range []string{AuthNative, AuthCachingSHA} {
		t.Run(plugin, func(t *testing.T) {
			_, addr := s.server(t, plugin)
			host, port, err := net.SplitHostPort(addr)
			require.NoError(t, err)
			run := func(pw, sql string) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := exec.CommandContext(ctx, bin, "--no-defaults", "-h", host, "-P", port, "-u", "alice", "--password="+pw,
					"--batch", "--ssl", "--ssl-ca="+s.caFile, "-D", Database, "-e", sql).CombinedOutput()
				return string(out), err
			}
			var out string
			testutils.SucceedsSoon(t, func() error {
				out, err = run("alice-pw", "SELECT v FROM "+s.ta)
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			require.Equal(t, "v\na\n", out)
			out, err = run("alice-pw", "SELECT v FROM "+s.tb)
			require.Error(t, err)
			require.Contains(t, out, "ERROR 1142 (42000)")
			out, err = run("wrong", "SELECT 1")
			require.Error(t, err)
			require.Contains(t, out, "ERROR 1045 (28000)")
		})
	}
}
