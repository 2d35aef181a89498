package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shale sql-server: serves the MySQL protocol on --addr with the given
// user, until its context ends; an empty password needs
// --allow-empty-password.
func TestSQLServerCommand(t *testing.T) {
	t.Setenv(passwordEnv, "")
	t.Setenv("SHALE_SECURITY_INSECURE", "true") // TLS: security_test.go
	pd := sharedPD(t)
	dropSQLAtEnd(t, pd, "sqlserver_cmd")

	_, err := runShale(t, "sql-server", "--pd", pd, "--addr", "127.0.0.1:0")
	require.ErrorContains(t, err, "give the MySQL password with --password or $SHALE_MYSQL_PASSWORD")
	_, err = runShale(t, "sql-server", "--pd", pd, "--addr", "127.0.0.1:0", "--password", "x", "--auth-plugin", "old_password")
	require.ErrorContains(t, err, `mysql auth plugin "old_password" is not supported`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCommand()
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"sql-server", "--pd", pd, "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--user", "app", "--password", "pw", "--auth-plugin", "mysql_native_password", "--insecure"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	re := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+) \(MySQL protocol, user app, mysql_native_password, INSECURE: no TLS\)`)
	var addr string
	testutils.SucceedsSoon(t, func() error {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
			return nil
		}
		select {
		case err := <-done:
			t.Fatalf("sql-server exited: %v\n%s", err, out.String())
		default:
		}
		return fmt.Errorf("sql-server did not listen yet:\n%s", out.String())
	})
	db, err := sql.Open("mysql", "app:pw@tcp("+addr+")/shale")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec("CREATE TABLE sqlserver_cmd (k BIGINT PRIMARY KEY, v VARCHAR(5))")
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO sqlserver_cmd VALUES (?, ?)", 7, "seven")
	require.NoError(t, err)
	var v string
	require.NoError(t, db.QueryRow("SELECT v FROM sqlserver_cmd WHERE k = 7").Scan(&v))
	require.Equal(t, "seven", v)

	// Health, metrics and profiles on --http-addr.
	m := regexp.MustCompile(`/metrics on http://(127\.0\.0\.1:\d+)`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `shale_sql_statement_seconds_count{outcome="ok",statement="create"} 1`, "/debug/pprof/": "goroutine"} {
		resp, err := http.Get("http://" + m[1] + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, string(b), want, path)
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("sql-server did not stop after its context ended")
	}
}
