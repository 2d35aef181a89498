package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/hbase"
)

func clearSecurityEnv(t *testing.T) {
	for _, k := range securityKeys {
		name := "SHALE_SECURITY_" + strings.ToUpper(strings.ReplaceAll(k.key, "-", "_"))
		t.Setenv(name, "")
		require.NoError(t, os.Unsetenv(name))
	}
}

func nodeCerts(t *testing.T) string {
	dir := t.TempDir()
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: dir}))
	require.NoError(t, security.CreateNode(security.CertOptions{Dir: dir}, "127.0.0.1"))
	return dir
}

// Every server refuses to start without certificates unless --insecure
// is given, and says how to get certificates; --insecure with
// certificates is a contradiction.
func TestServersRefuseToStartWithoutCertificates(t *testing.T) {
	clearSecurityEnv(t)
	data := t.TempDir()
	servers := map[string][]string{
		"pd":         {"pd", "--data-dir", filepath.Join(data, "pd")},
		"tablet":     {"tablet", "--store-id", "1", "--data-dir", filepath.Join(data, "s1")},
		"thrift":     {"thrift"},
		"sql-server": {"sql-server", "--password", "pw"},
	}
	certs := nodeCerts(t)
	tlsFlags := []string{"--tls-ca", filepath.Join(certs, security.CAFile), "--tls-cert", filepath.Join(certs, security.NodeCert), "--tls-key", filepath.Join(certs, security.NodeKey)}
	for name, args := range servers {
		_, err := runShale(t, args...)
		require.ErrorIs(t, err, security.ErrNoCertificates, name)
		require.ErrorContains(t, err, "shale cert create-ca", name)
		require.ErrorContains(t, err, "--insecure", name)
		_, err = runShale(t, append(append(args, "--insecure"), tlsFlags...)...)
		require.ErrorContains(t, err, "contradict", name)
	}
}

// The security section of the config file, the SHALE_SECURITY_* variables
// and the flags, in that order of precedence, give a server its identity.
func TestSecuritySettingsSources(t *testing.T) {
	clearSecurityEnv(t)
	certs := nodeCerts(t)
	file := filepath.Join(t.TempDir(), "shale.yaml")
	require.NoError(t, os.WriteFile(file, []byte("security:\n  ca: "+filepath.Join(certs, security.CAFile)+
		"\n  cert: "+filepath.Join(certs, security.NodeCert)+"\n  key: "+filepath.Join(certs, security.NodeKey)+
		"\n  cert-allowed-cn: [node, node-b]\n"), 0o600))
	env := map[string]string{"SHALE_CONFIG": file, "SHALE_SECURITY_INSECURE": ""}
	o, err := runPDCmd(t, env, "--data-dir", t.TempDir())
	require.NoError(t, err)
	require.NotNil(t, o.TLS, "the file's security section")

	env["SHALE_SECURITY_KEY"] = filepath.Join(certs, "missing.key")
	_, err = runPDCmd(t, env, "--data-dir", t.TempDir())
	require.ErrorContains(t, err, "missing.key", "the environment over the file")

	_, err = runPDCmd(t, env, "--data-dir", t.TempDir(), "--tls-key", filepath.Join(certs, security.NodeKey))
	require.NoError(t, err, "the flag over the environment")

	cmd := newPDCommand()
	require.NoError(t, cmd.ParseFlags([]string{"--cert-allowed-cn", "a,b"}))
	c, insecure, err := securitySettings(cmd)
	require.NoError(t, err)
	require.False(t, insecure)
	require.Equal(t, []string{"a", "b"}, c.AllowedCNs)
}

// `shale playground --secure` creates certificates in its data directory,
// serves with them, and prints the flags clients connect with; a query
// goes through each endpoint it prints (PD and the tablet servers through
// shale kv, the Thrift gateway, the HTTP API and console, the MySQL
// protocol), each with TLS, and a client without a certificate is refused.
func TestPlaygroundSecure(t *testing.T) {
	clearSecurityEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	p, eps := startPlayground(t, filepath.Join(t.TempDir(), "playground.log"), "--secure", "--data-dir", dir, "--mysql-addr", "127.0.0.1:0")
	require.Equal(t, "secure", eps["mode"])
	require.Regexp(t, `^https://`, eps["http"])
	for _, f := range []string{security.CAFile, security.NodeCert, security.ClientCertFile("root")} {
		require.FileExists(t, filepath.Join(dir, "certs", f))
	}
	args := strings.Fields(eps["kv"])
	require.Contains(t, args, "--tls-cert")
	_, err := runShale(t, append(append([]string{"kv", "--pd"}, args...), "put", "hello", "world")...)
	require.NoError(t, err)
	out, err := runShale(t, append(append([]string{"kv", "--pd"}, args...), "get", "hello")...)
	require.NoError(t, err)
	require.Equal(t, "world\n", out)
	_, err = runShale(t, "kv", "--pd", eps["pd"], "--timeout", "3s", "get", "hello")
	require.Error(t, err, "a client without a certificate")

	certs := filepath.Join(dir, "certs")
	root, err := security.NewReloader(security.Config{CAFile: filepath.Join(certs, security.CAFile),
		CertFile: filepath.Join(certs, security.ClientCertFile("root")), KeyFile: filepath.Join(certs, security.ClientKeyFile("root"))})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	caPEM, err := os.ReadFile(filepath.Join(certs, security.CAFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	caOnly := func() *tls.Config {
		return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}

	// Thrift: the row written through shale kv.
	tcfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 30 * time.Second, TLSConfig: root.ClientTLS("127.0.0.1")}
	trans := thrift.NewTBufferedTransport(thrift.NewTSSLSocketConf(eps["thrift"], tcfg), 8192)
	require.NoError(t, trans.Open())
	defer trans.Close()
	r, err := hbase.NewTHBaseServiceClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(tcfg)).Get(ctx, []byte("kv"), &hbase.TGet{Row: []byte("hello")})
	require.NoError(t, err)
	require.Len(t, r.ColumnValues, 1)
	require.Equal(t, "world", string(r.ColumnValues[0].Value))
	// A certificate from the same CA for a user without grants: the
	// gateway authorizes the call as that user, so it is refused (before,
	// the gateway had no authorizer and served it as the node).
	require.NoError(t, security.CreateClient(security.CertOptions{Dir: certs}, "mallory"))
	mallory, err := security.NewReloader(security.Config{CAFile: filepath.Join(certs, security.CAFile),
		CertFile: filepath.Join(certs, security.ClientCertFile("mallory")), KeyFile: filepath.Join(certs, security.ClientKeyFile("mallory"))})
	require.NoError(t, err)
	mcfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 30 * time.Second, TLSConfig: mallory.ClientTLS("127.0.0.1")}
	mtrans := thrift.NewTBufferedTransport(thrift.NewTSSLSocketConf(eps["thrift"], mcfg), 8192)
	require.NoError(t, mtrans.Open())
	defer mtrans.Close()
	mc := hbase.NewTHBaseServiceClientFactory(mtrans, thrift.NewTBinaryProtocolFactoryConf(mcfg))
	_, err = mc.Get(ctx, []byte("kv"), &hbase.TGet{Row: []byte("hello")})
	require.Regexp(t, `(?i)permission ?denied`, thriftMessage(err), "a read by a user without grants")
	err = mc.Put(ctx, []byte("kv"), &hbase.TPut{Row: []byte("hello"), ColumnValues: []*hbase.TColumnValue{{Family: []byte("v"), Qualifier: []byte(""), Value: []byte("mallory")}}})
	require.Regexp(t, `(?i)permission ?denied`, thriftMessage(err), "a write by a user without grants")

	// HTTP: the JSON API and the console, with root's certificate only.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: root.ClientTLS("127.0.0.1")}}
	for _, u := range []string{eps["http"], eps["console"]} {
		resp, err := hc.Get(u)
		require.NoError(t, err, u)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, body)
	}
	require.Contains(t, func() string {
		resp, err := hc.Get(eps["http"])
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}(), `"address"`, "the stores")
	anon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: caOnly()}}
	if resp, err := anon.Get(eps["http"]); err == nil {
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, "the HTTP API without a certificate")
	}

	// MySQL: over TLS, verifying the playground's CA.
	require.NoError(t, mysqldrv.RegisterTLSConfig("playground-secure", caOnly()))
	db, err := sql.Open("mysql", "root:@tcp("+eps["mysql"]+")/shale?tls=playground-secure")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE TABLE pg_secure (k BIGINT PRIMARY KEY, v VARCHAR(10))")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO pg_secure VALUES (1, 'one')")
	require.NoError(t, err)
	var v string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT v FROM pg_secure WHERE k = 1").Scan(&v))
	require.Equal(t, "one", v)
	plain, err := sql.Open("mysql", "root:@tcp("+eps["mysql"]+")/shale")
	require.NoError(t, err)
	defer plain.Close()
	require.Error(t, plain.PingContext(ctx), "MySQL without TLS")
	p.Signal(os.Interrupt, playgroundBackstop)
}

// The security flags are not taken for unknown scheduling keys of the pd
// section (which warns about those).
func TestPDSecurityFlagsAreNotScheduleKeys(t *testing.T) {
	clearSecurityEnv(t)
	clearPDEnv(t, nil)
	prevLog, prevRun := slog.Default(), runPD
	t.Cleanup(func() { slog.SetDefault(prevLog); runPD = prevRun })
	runPD = func(context.Context, placementdriver.Options) error { return nil }
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"pd", "--insecure", "--data-dir", t.TempDir(), "--cert-allowed-cn", "node"})
	require.NoError(t, root.Execute())
	require.NotContains(t, out.String(), "unknown key")
}

// thriftMessage is the text of a Thrift error: a TIOError's message, or
// the error itself.
func thriftMessage(err error) string {
	var te *hbase.TIOError
	if errors.As(err, &te) {
		return te.GetMessage()
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
