package sqllite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver"
)

// One in-process cluster (PD + one tablet server, one replica per tablet)
// serves every test in the package; each test uses its own table names.
// The tests check the SQL layer, as sqltest's and mysqlwire's do on the
// same one-store cluster: three replicas made every write three raft
// appends and the PD's leader balancing moved leaders under the tests,
// which cost most of the package's time under -race and tested nothing of
// sql-lite (replication and leader moves are the store's and kvclient's
// tests).
var (
	testClient *kvclient.Client
	testPD     []string
)

func TestMain(m *testing.M) {
	tb := testcluster.NewMainTB("sqllite-test")
	// The cluster's INFO logs would bury the test output.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c := testcluster.Start(tb, testcluster.Options{Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	testPD = c.PDEndpoints()
	var err error
	testClient, err = kvclient.Open(ctx, kvclient.Options{PD: testPD})
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

// newSession opens a session on the package's cluster. When the test ends,
// the tables created while it was open are dropped, so tests can be rerun
// on the same cluster (go test -count=N).
func newSession(t testing.TB) *Session {
	t.Helper()
	s, err := Open(context.Background(), testClient)
	if err != nil {
		t.Fatal(err)
	}
	before := tableNames(t, s)
	t.Cleanup(func() {
		defer s.Close()
		for name := range tableNames(t, s) {
			if !before[name] {
				mustExec(t, s, "DROP TABLE IF EXISTS `"+name+"`")
			}
		}
	})
	return s
}

// tableNames lists the cluster's SQL tables.
func tableNames(t testing.TB, s *Session) map[string]bool {
	t.Helper()
	res := mustExec(t, s, "SHOW TABLES")
	names := map[string]bool{}
	for _, row := range res[len(res)-1].Rows {
		names[row[0].String()] = true
	}
	return names
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustExec runs sql and fails the test on error.
func mustExec(t testing.TB, s *Session, sql string) []*Result {
	t.Helper()
	res, err := s.Exec(testCtx(t), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res
}

// query runs one query and renders its rows as "a|b" lines.
func query(t testing.TB, s *Session, sql string) string {
	t.Helper()
	res := mustExec(t, s, sql)
	return render(res[len(res)-1])
}

func render(r *Result) string {
	var lines []string
	for _, row := range r.Rows {
		var parts []string
		for _, d := range row {
			parts = append(parts, d.String())
		}
		lines = append(lines, strings.Join(parts, "|"))
	}
	return strings.Join(lines, "\n")
}
