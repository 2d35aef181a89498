package mysqlwire

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver"
)

// One in-process cluster (PD + one tablet server) serves every test of
// the package; each test starts its own wire server on it and uses its
// own table names.
var testClient *kvclient.Client

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	tb := testcluster.NewMainTB("mysqlwire-test")
	c := testcluster.Start(tb, testcluster.Options{Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var err error
	testClient, err = kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	testClient.Close()
	tb.Close()
	if code == 0 && tb.Failed() {
		code = 1
	}
	os.Exit(code)
}

// startServer starts a wire server on 127.0.0.1:0, closed with the test.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.User == "" {
		cfg.User = "root"
	}
	s, err := New(testClient, cfg)
	require.NoError(t, err)
	addr, err := s.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, addr.String()
}

// openDB opens database/sql through go-sql-driver/mysql; params are extra
// DSN parameters (k=v&...).
func openDB(t testing.TB, addr, user, password, params string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s?parseTime=true&timeout=10s", user, password, addr, Database)
	if params != "" {
		dsn += "&" + params
	}
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// mustExec runs statements and fails the test on error.
func mustExec(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		_, err := db.Exec(s)
		require.NoError(t, err, s)
	}
}

// driverErr returns the MySQL error of err (failing the test when it has none).
func driverErr(t testing.TB, err error) *mysqldrv.MySQLError {
	t.Helper()
	var me *mysqldrv.MySQLError
	require.True(t, errors.As(err, &me), "want a MySQL error, got %v", err)
	return me
}

// requireCode checks err's MySQL code and SQLSTATE.
func requireCode(t testing.TB, err error, code uint16, state string) {
	t.Helper()
	me := driverErr(t, err)
	require.Equal(t, code, me.Number, "%v", err)
	require.Equal(t, state, string(me.SQLState[:]), "%v", err)
}

// tableName returns a table name unique to the test.
func tableName(t testing.TB, base string) string {
	return strings.ToLower(fmt.Sprintf("%s_%d", base, time.Now().UnixNano()%1e9))
}

// waitFor waits until cond holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}
