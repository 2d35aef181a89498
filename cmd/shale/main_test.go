package main

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/tabletserver/store"
)

// One in-process cluster (PD + 3 tablet servers, periodic consistency
// checks off, as startedStores) is shared by the tests that only need a
// cluster to run commands against (kv, table, sql, sql-server, import,
// the cell checksums): each uses its own table names and leaves the
// built-in kv table as it found it. It starts on first use, so a run of
// tests that do not need it starts none, and stops when the package's
// tests end. Tests that stop stores, inject faults or need other options
// start their own.
var shared struct {
	once    sync.Once
	tb      *testcluster.MainTB
	c       *testcluster.Cluster
	storeBy func(id uint64) *store.Store
}

// sharedPD returns the shared cluster's --pd value, starting the cluster
// the first time.
func sharedPD(t *testing.T) string {
	t.Helper()
	return strings.Join(sharedCluster(t).PDEndpoints(), ",")
}

// sharedCluster returns the shared cluster, starting it the first time.
func sharedCluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	c, _ := sharedStores(t)
	return c
}

// sharedStores is sharedCluster with its stores by ID, as startedStores
// (periodic consistency checks are off on the shared cluster).
func sharedStores(t *testing.T) (*testcluster.Cluster, func(id uint64) *store.Store) {
	t.Helper()
	shared.once.Do(func() {
		shared.tb = testcluster.NewMainTB("shale-cmd-test")
		shared.c, shared.storeBy = startedStores(shared.tb, 3, nil)
	})
	if shared.c == nil {
		t.Fatal("the shared cluster failed to start")
	}
	return shared.c, shared.storeBy
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tb := shared.tb; tb != nil {
		tb.Close()
		if tb.Failed() && code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// dropAtEnd drops the raw tables names from the shared cluster when the
// test ends (whether or not the test dropped them itself), so that the
// names are free for a rerun (go test -count=N) and other tests' lists
// stay short.
func dropAtEnd(t *testing.T, pd string, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_, _ = runShale(t, "table", "--pd", pd, "drop", n)
		}
	})
}

// dropSQLAtEnd is dropAtEnd for SQL tables.
func dropSQLAtEnd(t *testing.T, pd string, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			_, _ = runShale(t, "sql", "--pd", pd, "-e", "DROP TABLE IF EXISTS "+n)
		}
	})
}

// clearKVAtEnd deletes every key of the shared cluster's built-in kv
// table when the test ends: the kv tests expect to find it empty.
func clearKVAtEnd(t *testing.T, pd string) {
	t.Cleanup(func() {
		if _, err := runShale(t, "kv", "--pd", pd, "del", "", "--prefix"); err != nil {
			t.Errorf("clearing the kv table: %v", err)
		}
	})
}
