package backup_test

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
// package but TestSafePointKeepsVersions (its stores run GC every 50 ms)
// and TestBackupUnderLoad (its chaos leaves many tablets): starting
// clusters dominated the tests' time under -race. It is started on first
// use and stopped after the last test. Each test uses its own table names
// and restores into the same cluster under new names (RestoreOptions.As),
// which also makes the restore rewrite keys to a table ID other than the
// source's.
var shared struct {
	once sync.Once
	tb   *testcluster.MainTB
	c    *testcluster.Cluster
	cl   *kvclient.Client
}

func sharedCluster() (*testcluster.Cluster, *kvclient.Client) {
	shared.once.Do(func() {
		shared.tb = testcluster.NewMainTB("backup-test")
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
