package mysqlwire

import (
	"path/filepath"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/security"
)

// With TLS configured, clients must use it: a TLS client authenticates
// and runs statements (the packet limit still holds, checked above TLS),
// and a plaintext client is refused with error 3159 before it
// authenticates.
func TestTLSRequired(t *testing.T) {
	dir := t.TempDir()
	o := security.CertOptions{Dir: dir}
	require.NoError(t, security.CreateCA(o))
	require.NoError(t, security.CreateNode(o, "127.0.0.1"))
	require.NoError(t, security.CreateClient(o, "root"))
	ca := filepath.Join(dir, security.CAFile)
	node, err := security.NewReloader(security.Config{CAFile: ca, CertFile: filepath.Join(dir, security.NodeCert), KeyFile: filepath.Join(dir, security.NodeKey)})
	require.NoError(t, err)
	client, err := security.NewReloader(security.Config{CAFile: ca, CertFile: filepath.Join(dir, security.ClientCertFile("root")), KeyFile: filepath.Join(dir, security.ClientKeyFile("root"))})
	require.NoError(t, err)
	require.NoError(t, mysqldrv.RegisterTLSConfig("shale-test", client.ClientTLS("127.0.0.1")))

	_, addr := startServer(t, Config{Password: "pw", TLS: node, MaxPacket: 64 << 10})
	db := openDB(t, addr, "root", "pw", "tls=shale-test")
	var one int
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one))
	var s string
	require.NoError(t, db.QueryRow("SELECT '"+strings.Repeat("x", 32<<10)+"'").Scan(&s))
	require.Len(t, s, 32<<10)
	db.SetMaxIdleConns(0)
	_, err = db.Exec("SELECT '" + strings.Repeat("x", 100<<10) + "'")
	require.Equal(t, uint16(1153), driverErr(t, err).Number, "the packet limit holds over TLS")
	require.NoError(t, db.QueryRow("SELECT 1").Scan(&one))

	plain := openDB(t, addr, "root", "pw", "")
	require.Equal(t, uint16(3159), driverErr(t, plain.Ping()).Number)
	bad := openDB(t, addr, "root", "wrong", "tls=shale-test")
	require.Equal(t, uint16(1045), driverErr(t, bad.Ping()).Number)
}
