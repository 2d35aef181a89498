package sqltest

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
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

func TestMain(m *testing.M) {
	flag.Parse()
	// The cluster's INFO logs would bury the test output.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	tb := testcluster.NewMainTB("sqltest-main")
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
	tb.Close()
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
