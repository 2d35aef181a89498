package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/placementdriver"
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
// serves with them, and prints the flags clients connect with; a client
// without them is refused.
func TestPlaygroundSecure(t *testing.T) {
	clearSecurityEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	p, eps := startPlayground(t, filepath.Join(t.TempDir(), "playground.log"), "--secure", "--data-dir", dir)
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
