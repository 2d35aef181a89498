package mysqlwire

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mysqlCLI returns the mysql/mariadb command-line client (the Debian
// package mariadb-client, which scripts/install-tools.sh ci installs).
// Its absence fails the test: it is what the protocol is checked against.
func mysqlCLI(t *testing.T) string {
	for _, name := range []string{"mariadb", "mysql"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("the MySQL protocol tests need the mariadb (or mysql) command-line client: run scripts/install-tools.sh ci (Debian package mariadb-client)")
	return ""
}

// runCLI runs the client in batch mode (tab-separated output) against
// addr and returns its combined output.
func runCLI(t *testing.T, bin, addr, user, password, sql string, extra ...string) (string, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--no-defaults", "-h", host, "-P", port, "-u", user, "--password=" + password, "--batch", "--skip-ssl"}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, "-e", sql)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The real mysql/mariadb client: connect (its startup queries), DDL,
// writes, queries, SHOW/DESCRIBE, information_schema, errors with codes.
func TestMySQLCommandLineClient(t *testing.T) {
	bin := mysqlCLI(t)
	_, addr := startServer(t, Config{})
	tbl := tableName(t, "cli")
	out, err := runCLI(t, bin, addr, "root", "", strings.Join([]string{
		"CREATE TABLE " + tbl + " (id BIGINT PRIMARY KEY, name VARCHAR(20), price DECIMAL(6,2), ok BOOLEAN)",
		"INSERT INTO " + tbl + " VALUES (1, 'ada', 9.50, TRUE), (2, NULL, 12.00, FALSE)",
		"SELECT * FROM " + tbl + " ORDER BY id",
		"SELECT @@version_comment, DATABASE()",
		"SHOW TABLES LIKE '" + tbl + "'",
		"DESCRIBE " + tbl,
		"SELECT table_name, column_name, column_type FROM information_schema.columns WHERE table_name = '" + tbl + "' ORDER BY ordinal_position",
	}, ";\n"), "-D", "shale")
	require.NoError(t, err, out)
	for _, want := range []string{
		"id\tname\tprice\tok\n1\tada\t9.50\t1\n2\tNULL\t12.00\t0\n",
		"@@version_comment\tDATABASE()\nShale sql-lite\tshale\n",
		"Tables_in_shale\n" + tbl + "\n",
		"Field\tType\tNull\tKey\tDefault\nid\tBIGINT\tNO\tPRI\tNULL\nname\tVARCHAR(20)\tYES\t\tNULL\n",
		tbl + "\tprice\tdecimal(6,2)\n",
	} {
		require.Contains(t, out, want)
	}

	out, err = runCLI(t, bin, addr, "root", "", "INSERT INTO "+tbl+" VALUES (1, 'dup', 1, TRUE)")
	require.Error(t, err)
	require.Contains(t, out, "ERROR 1062 (23000)")
	out, err = runCLI(t, bin, addr, "root", "", "SELECT * FROM missing_table_cli")
	require.Error(t, err)
	require.Contains(t, out, "ERROR 1146 (42S02)")
	out, err = runCLI(t, bin, addr, "root", "", "SELEC 1")
	require.Error(t, err)
	require.Contains(t, out, "ERROR 1064 (42000)")
	out, err = runCLI(t, bin, addr, "root", "", "SELECT 1", "-D", "nope")
	require.Error(t, err)
	require.Contains(t, out, "ERROR 1049 (42000)")
}

// The client authenticates with both plugins, and a wrong password is
// refused with 1045.
func TestMySQLCommandLineClientAuth(t *testing.T) {
	bin := mysqlCLI(t)
	for _, plugin := range []string{AuthNative, AuthCachingSHA} {
		t.Run(plugin, func(t *testing.T) {
			_, addr := startServer(t, Config{User: "app", Password: "pa55", AuthPlugin: plugin})
			out, err := runCLI(t, bin, addr, "app", "pa55", "SELECT USER()")
			require.NoError(t, err, out)
			require.Contains(t, out, "app@127.0.0.1")
			out, err = runCLI(t, bin, addr, "app", "wrong", "SELECT 1")
			require.Error(t, err)
			require.Contains(t, out, "ERROR 1045 (28000)")
		})
	}
}
