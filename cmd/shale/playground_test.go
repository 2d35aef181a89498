package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
)

// startPlayground runs `shale playground args...` as a real process and
// returns it with the endpoint lines it printed (name → value).
func startPlayground(t *testing.T, logPath string, args ...string) (*proctest.Proc, map[string]string) {
	t.Helper()
	p := proctest.Start(t, "playground", logPath, append([]string{"playground", "--log-level", "warn"}, args...)...)
	out := p.WaitOutput(t, "Press Ctrl-C to stop.", playgroundBackstop)
	eps := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(pd|thrift|thrift1|http|console|data|mysql): (\S+)`).FindAllStringSubmatch(out, -1) {
		eps[m[1]] = m[2]
	}
	if m := regexp.MustCompile(`(?m)^tablet: (\S+) \(metrics (\S+)\)$`).FindStringSubmatch(out); m != nil {
		eps["tablet"], eps["tablet-metrics"] = m[1], m[2] // the first store's
	}
	if m := regexp.MustCompile(`(?m)^(INSECURE|secure):`).FindStringSubmatch(out); m != nil {
		eps["mode"] = m[1]
	}
	if m := regexp.MustCompile(`(?m)^  bin/shale kv --pd (.*) get hello$`).FindStringSubmatch(out); m != nil {
		eps["kv"] = m[1] // the --pd value and any TLS flags
	}
	return p, eps
}

// playgroundBackstop bounds the wait for a playground that neither serves
// nor exits. The playground bounds its own startup by progress (it exits
// when its servers stop making any), so this only catches a hang.
const playgroundBackstop = 10 * time.Minute

// A playground with three PD members: it prints the three client
// addresses as one --pd list, shale kv works against it, it serves the
// MySQL protocol by default (user root, no password) and prints its
// address, SIGTERM stops it cleanly, and it starts again on its kept data
// directory.
func TestPlaygroundThreePDMembers(t *testing.T) {
	// The restart below is where the stores once kept dialling each
	// other's addresses from before it, for 10 s (docs/decisions.md, "A
	// store re-resolves a peer's address it cannot reach").
	dir := filepath.Join(t.TempDir(), "data")
	logPath := filepath.Join(t.TempDir(), "playground.log")
	p, eps := startPlayground(t, logPath, "--pd-members", "3", "--stores", "3", "--data-dir", dir)
	pd := eps["pd"]
	require.Len(t, strings.Split(pd, ","), 3, "pd line %q", pd)
	require.NotEmpty(t, eps["thrift"])
	require.NotEmpty(t, eps["thrift1"], "the Thrift1 listener has its own line")
	require.NotEqual(t, eps["thrift"], eps["thrift1"])
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/pd/api/v1/stores$`, eps["http"])
	require.Equal(t, dir, eps["data"])
	require.Equal(t, "INSECURE", eps["mode"], "an insecure playground says so")

	_, err := runShale(t, "kv", "--pd", pd, "put", "hello", "world")
	require.NoError(t, err)
	out, err := runShale(t, "kv", "--pd", pd, "get", "hello")
	require.NoError(t, err)
	require.Equal(t, "world\n", out)
	out, err = runShale(t, "ctl", "--pd", pd, "members")
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "leader"), "members:\n%s", out)
	require.Equal(t, 2, strings.Count(out, "follower"), "members:\n%s", out)

	require.Regexp(t, `^127\.0\.0\.1:\d+$`, eps["mysql"])
	db, err := sql.Open("mysql", "root:@tcp("+eps["mysql"]+")/shale")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec("CREATE TABLE pg_mysql (k BIGINT PRIMARY KEY)")
	require.NoError(t, err)
	var tables string
	require.NoError(t, db.QueryRow("SHOW TABLES LIKE 'pg_mysql'").Scan(&tables))
	require.Equal(t, "pg_mysql", tables)

	require.Equal(t, 0, p.Signal(syscall.SIGTERM, 30*time.Second), "SIGTERM: want a clean exit\n%s", proctest.Tail(logPath, 20))
	for _, sub := range []string{"pd1", "pd2", "pd3", "store-1", "store-2", "store-3"} {
		require.DirExists(t, filepath.Join(dir, sub))
	}

	// The data directory is reused (the ports differ this time).
	p, eps = startPlayground(t, logPath, "--pd-members", "3", "--data-dir", dir)
	out, err = runShale(t, "kv", "--pd", eps["pd"], "get", "hello")
	require.NoError(t, err)
	require.Equal(t, "world\n", out)
	require.Equal(t, 0, p.Signal(syscall.SIGTERM, 30*time.Second), "SIGTERM: want a clean exit\n%s", proctest.Tail(logPath, 20))

	// A directory made with three members cannot start with one.
	_, err = runShale(t, "playground", "--pd-members", "1", "--data-dir", dir)
	require.ErrorContains(t, err, "holds a playground with 3 PD member(s); start it with --pd-members 3")
}

func TestPlaygroundFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pd-members", "2"}, "--pd-members must be 1 or 3, got 2"},
		{[]string{"--pd-members", "0"}, "--pd-members must be 1 or 3, got 0"},
		{[]string{"--pd-members", "5"}, "--pd-members must be 1 or 3, got 5"},
		{[]string{"--stores", "0"}, "--stores must be at least 1"},
		{[]string{"--base-port", "70000"}, "--base-port must be a port number"},
		{[]string{"--base-port", "65530"}, "past 65535"},
		{[]string{"extra"}, "unknown command"},
	} {
		_, err := runShale(t, append([]string{"playground"}, tc.args...)...)
		require.ErrorContains(t, err, tc.want, "args %v", tc.args)
	}
	// A directory made with one member cannot start with three.
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "pd1"), 0o755))
	_, err := runShale(t, "playground", "--pd-members", "3", "--data-dir", dir)
	require.ErrorContains(t, err, "holds a playground with 1 PD member(s); start it with --pd-members 1")
}

// Startup that keeps making progress is waited for past the stall bound; a
// stuck one fails after it with the last error.
func TestUntilStalledFollowsProgress(t *testing.T) {
	const stall = 100 * time.Millisecond
	start := time.Now()
	n := 0
	err := untilStalled(context.Background(), stall, 5*time.Millisecond, func() (string, error) {
		// A new stage every ~50ms, done after ~4 stalls' worth of time.
		if time.Since(start) > 4*stall {
			return "", nil
		}
		n++
		return fmt.Sprint(time.Since(start) / (stall / 2)), fmt.Errorf("stage %d", n)
	})
	require.NoError(t, err)
	require.Greater(t, time.Since(start), 4*stall)

	start = time.Now()
	err = untilStalled(context.Background(), stall, 5*time.Millisecond, func() (string, error) {
		return "healthz 127.0.0.1:1", errors.New("127.0.0.1:1 did not become healthy")
	})
	require.ErrorContains(t, err, "127.0.0.1:1 did not become healthy (no progress for 100ms)")
	require.Less(t, time.Since(start), 20*stall)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = untilStalled(ctx, time.Hour, time.Millisecond, func() (string, error) { return "x", errors.New("not yet") })
	require.ErrorIs(t, err, context.Canceled)
}

// A playground of one tablet server serves (its tablets have one replica):
// before, PD waited for three stores and the playground gave up after its
// startup stalled for a minute.
func TestPlaygroundOneStore(t *testing.T) {
	p, eps := startPlayground(t, filepath.Join(t.TempDir(), "playground.log"), "--stores", "1", "--data-dir", filepath.Join(t.TempDir(), "data"))
	_, err := runShale(t, "kv", "--pd", eps["pd"], "put", "k", "v")
	require.NoError(t, err)
	out, err := runShale(t, "kv", "--pd", eps["pd"], "get", "k")
	require.NoError(t, err)
	require.Equal(t, "v\n", out)
	// The store's line names its metrics page (bench/qos.sh counts the
	// engine's flushes there).
	resp, err := http.Get(eps["tablet-metrics"])
	require.NoError(t, err, "tablet metrics %q", eps["tablet-metrics"])
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "shale_pebble_flushes_total ")
	require.Equal(t, 0, p.Signal(syscall.SIGTERM, 30*time.Second), "SIGTERM: want a clean exit")
}
