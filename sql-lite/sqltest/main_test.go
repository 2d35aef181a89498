package sqltest

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver"
	sqllite "github.com/shaledb/shale/sql-lite"
)

var (
	flagStores = flag.Int("stores", 1, "tablet servers in the shared in-process cluster")
)

// shared is the cluster every test and benchmark of this binary uses.
var shared struct {
	cluster *testcluster.Cluster
	client  *kvclient.Client
}

// mainTB lets testcluster.Start (which wants a testing.TB) run in
// TestMain, before any test exists. Only the methods testcluster calls are
// implemented; the embedded nil TB satisfies the interface's private method.
type mainTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
	failed   atomic.Bool
}

func (m *mainTB) Helper()      {}
func (m *mainTB) Name() string { return "sqltest-main" }
func (m *mainTB) Failed() bool { return m.failed.Load() }
func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp("", "sqltest-")
	if err != nil {
		m.Fatal(err)
	}
	m.mu.Lock()
	m.dirs = append(m.dirs, d)
	m.mu.Unlock()
	return d
}
func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}
func (m *mainTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cluster: "+format+"\n", args...)
}
func (m *mainTB) Log(args ...any) { fmt.Fprintln(os.Stderr, append([]any{"cluster:"}, args...)...) }
func (m *mainTB) Errorf(format string, args ...any) {
	m.failed.Store(true)
	m.Logf("ERROR: "+format, args...)
}
func (m *mainTB) Error(args ...any) { m.failed.Store(true); m.Log(append([]any{"ERROR:"}, args...)...) }
func (m *mainTB) Fatalf(format string, args ...any) {
	m.Errorf(format, args...)
	m.close()
	os.Exit(1)
}
func (m *mainTB) Fatal(args ...any) {
	m.Error(args...)
	m.close()
	os.Exit(1)
}

func (m *mainTB) close() {
	m.mu.Lock()
	cl := m.cleanups
	m.cleanups = nil
	dirs := m.dirs
	m.dirs = nil
	m.mu.Unlock()
	for i := len(cl) - 1; i >= 0; i-- {
		cl[i]()
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The cluster's INFO logs would bury the test output.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	tb := &mainTB{}
	start := time.Now()
	// One store (and so one replica) by default: the suites check the SQL
	// layer, and the machine is small; -stores 3 runs them replicated.
	shared.cluster = testcluster.Start(tb, testcluster.Options{
		Stores:   *flagStores,
		Schedule: placementdriver.Config{MaxReplicas: min(*flagStores, 3)},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: shared.cluster.PDEndpoints()})
	cancel()
	if err != nil {
		tb.Fatalf("kvclient.Open: %v", err)
	}
	shared.client = cl
	fmt.Fprintf(os.Stderr, "sqltest: cluster with %d store(s) up in %v\n", *flagStores, time.Since(start).Round(time.Millisecond))
	code := m.Run()
	cl.Close()
	tb.close()
	if code == 0 && tb.Failed() {
		code = 1
	}
	os.Exit(code)
}

// openSession opens a session on the shared cluster, closed with the test.
func openSession(tb testing.TB) *sqllite.Session {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqllite.Open(ctx, shared.client)
	if err != nil {
		tb.Fatalf("sqllite.Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// mustExec runs sql and fails the test on error.
func mustExec(tb testing.TB, s *sqllite.Session, sql string) []*sqllite.Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.Exec(ctx, sql)
	if err != nil {
		tb.Fatalf("%s: %v", abbrev(sql), err)
	}
	return res
}

func abbrev(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}

// createFresh drops table name if an earlier run (go test -count N) left
// it, then creates it.
func createFresh(tb testing.TB, s *sqllite.Session, name, ddl string) {
	tb.Helper()
	mustExec(tb, s, "DROP TABLE IF EXISTS "+name)
	mustExec(tb, s, ddl)
}
