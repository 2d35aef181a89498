package thriftgw

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
)

// One in-process cluster (PD + 3 tablet servers) serves every test of the
// package (internal and external) that needs one: starting a cluster
// dominates the tests' time under -race. It is started on first use and
// stopped after the last test; each test uses its own table names.
var shared struct {
	once sync.Once
	tb   *mainTB
	c    *testcluster.Cluster
	cl   *kvclient.Client
}

// SharedClusterForTest returns the package's cluster and a client of it.
// Tests must not stop its members or leave state that other tests see
// (namespaces, tables under another test's names).
func SharedClusterForTest() (*testcluster.Cluster, *kvclient.Client) {
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "thriftgw-test")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		shared.tb = &mainTB{dir: dir}
		shared.c = testcluster.Start(shared.tb, testcluster.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.cl, err = kvclient.Open(ctx, kvclient.Options{PD: shared.c.PDEndpoints()})
		if err != nil {
			shared.tb.Fatal(err)
		}
	})
	return shared.c, shared.cl
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.tb != nil {
		shared.cl.Close()
		for i := len(shared.tb.cleanups) - 1; i >= 0; i-- {
			shared.tb.cleanups[i]()
		}
		os.RemoveAll(shared.tb.dir)
	}
	os.Exit(code)
}

// mainTB lets testcluster.Start run outside a test.
type mainTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dir      string
}

func (m *mainTB) Helper()                           {}
func (m *mainTB) Name() string                      { return "thriftgw-main" }
func (m *mainTB) Logf(format string, args ...any)   {}
func (m *mainTB) Log(args ...any)                   {}
func (m *mainTB) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (m *mainTB) Error(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (m *mainTB) Fatal(args ...any)                 { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }
func (m *mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}
func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}
func (m *mainTB) TempDir() string {
	d, err := os.MkdirTemp(m.dir, "tc")
	if err != nil {
		m.Fatal(err)
	}
	return d
}
