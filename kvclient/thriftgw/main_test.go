package thriftgw

import (
	"context"
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
	tb   *testcluster.MainTB
	c    *testcluster.Cluster
	cl   *kvclient.Client
}

// SharedClusterForTest returns the package's cluster and a client of it.
// Tests must not stop its members or leave state that other tests see
// (namespaces, tables under another test's names).
func SharedClusterForTest() (*testcluster.Cluster, *kvclient.Client) {
	shared.once.Do(func() {
		shared.tb = testcluster.NewMainTB("thriftgw-test")
		var err error
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
		shared.tb.Close()
	}
	os.Exit(code)
}
