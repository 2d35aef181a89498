package drivers_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/bench"
	"github.com/shaledb/shale/bench/drivers"
	"github.com/shaledb/shale/bench/etcdtest"
	"github.com/shaledb/shale/bench/ycsb"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
)

const seed = 42 // printed in every run's status output too

// target is one driver under test with its addresses.
type target struct {
	name   string
	pd     []string
	thrift string
	etcd   []string
	tls    *security.Reloader
}

func (tg target) options(phase ycsb.Phase, out, status *bytes.Buffer, props ...string) bench.Options {
	s := uint64(seed)
	return bench.Options{Phase: phase, Workload: "a", Target: tg.name, PD: tg.pd, Thrift: tg.thrift, Etcd: tg.etcd,
		Threads: 8, Seed: &s, Out: out, Status: status, Properties: props, TLS: tg.tls}
}

func returns(r *ycsb.Result, op, status string) int64 {
	o := r.Op(op)
	if o == nil {
		return 0
	}
	for _, s := range o.Returns {
		if s.Status == status {
			return s.Count
		}
	}
	return 0
}

// requireNoFailures fails when any operation returned anything but OK.
func requireNoFailures(t *testing.T, r *ycsb.Result, status *bytes.Buffer) {
	t.Helper()
	for _, op := range r.Ops {
		require.False(t, strings.HasSuffix(op.Name, "-FAILED"), "%s: %d failed operations, first error %q\n%s", op.Name, op.Operations, r.Op(strings.TrimSuffix(op.Name, "-FAILED")).FirstError, status)
	}
}

// loadAndRun loads 500 records with dataintegrity on, then runs a mix of
// every operation (reads, updates, inserts, scans, read-modify-writes) for
// two seconds, checking every value read, and parses the summary back.
func loadAndRun(t *testing.T, tg target, table string) {
	// Generous: on a loaded 2-core machine 500 inserts through the
	// gateway have taken over a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	common := []string{"recordcount=500", "table=" + table, "dataintegrity=true", "shale.tablets=4"}
	var out, status bytes.Buffer
	res, err := bench.Run(ctx, tg.options(ycsb.PhaseLoad, &out, &status, common...))
	require.NoError(t, err, status.String())
	requireNoFailures(t, res, &status)
	require.Equal(t, int64(500), returns(res, ycsb.OpInsert, ycsb.StatusOK))
	require.Contains(t, status.String(), fmt.Sprintf("seed %d", seed))
	if tg.name == "shale" {
		// The client's own counts: a new client looked every tablet up.
		require.Regexp(t, `client: retries ambiguous=\d+ backoff=\d+ fail=\d+ refresh-route=\d+ retry-elsewhere=\d+, route cache misses [1-9]\d*\n`, status.String())
	}

	out.Reset()
	status.Reset()
	o := tg.options(ycsb.PhaseRun, &out, &status, append(common, "operationcount=0", "requestdistribution=zipfian",
		"readproportion=0.4", "updateproportion=0.2", "insertproportion=0.1", "scanproportion=0.1",
		"readmodifywriteproportion=0.2", "maxscanlength=20")...)
	o.Duration = 2 * time.Second
	res, err = bench.Run(ctx, o)
	require.NoError(t, err, status.String())
	requireNoFailures(t, res, &status)
	for _, op := range []string{ycsb.OpRead, ycsb.OpUpdate, ycsb.OpInsert, ycsb.OpScan, ycsb.OpReadModifyWrite, ycsb.OpVerify} {
		require.Positive(t, returns(res, op, ycsb.StatusOK), "%s ran\n%s", op, out.String())
	}
	require.Zero(t, returns(res, ycsb.OpRead, ycsb.StatusNotFound), "every chosen record was inserted before")
	require.GreaterOrEqual(t, res.RunTimeMs, int64(2000))
	t.Logf("%s: %.0f ops/s, p99 %d us over %d operations", tg.name, res.Throughput, res.P99Us, res.Operations)

	s, err := ycsb.ParseText(&out)
	require.NoError(t, err)
	ops, _ := s.Get("OVERALL", "Throughput(ops/sec)")
	require.InDelta(t, res.Throughput, ops, 0.001)
	n, _ := s.Get("SCAN", "Return=OK")
	require.Equal(t, float64(returns(res, ycsb.OpScan, ycsb.StatusOK)), n)
}

// staleReads loads records, then runs reads and scans a little in the past
// from any replica (shale.readstaleness), checking every value.
func staleReads(t *testing.T, tg target, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	common := []string{"recordcount=200", "table=" + table, "dataintegrity=true", "shale.tablets=4"}
	var out, status bytes.Buffer
	res, err := bench.Run(ctx, tg.options(ycsb.PhaseLoad, &out, &status, common...))
	require.NoError(t, err, status.String())
	requireNoFailures(t, res, &status)
	loaded := time.Now()
	const staleness = 300 * time.Millisecond
	// Reads at now - staleness must be past every load write.
	testutils.SucceedsSoon(t, func() error {
		if time.Since(loaded) <= staleness {
			return fmt.Errorf("load ended %v ago", time.Since(loaded))
		}
		return nil
	})
	out.Reset()
	status.Reset()
	o := tg.options(ycsb.PhaseRun, &out, &status, append(common, "operationcount=0", "readproportion=0.8", "scanproportion=0.2",
		"updateproportion=0", "maxscanlength=10", "shale.readstaleness=300ms")...)
	o.Duration = time.Second
	res, err = bench.Run(ctx, o)
	require.NoError(t, err, status.String())
	requireNoFailures(t, res, &status)
	require.Positive(t, returns(res, ycsb.OpRead, ycsb.StatusOK))
	require.Positive(t, returns(res, ycsb.OpVerify, ycsb.StatusOK))
	require.Zero(t, returns(res, ycsb.OpRead, ycsb.StatusNotFound), "every record was loaded before the read timestamp")

	_, err = drivers.Open(ctx, "shale", drivers.Config{PD: tg.pd, Props: props(t, "shale.readstaleness=soon"), Workload: &ycsb.Workload{Table: table}})
	require.ErrorContains(t, err, "shale.readstaleness")
}

func props(t *testing.T, kvs ...string) *ycsb.Properties {
	p := ycsb.NewProperties()
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		p.Set(k, v)
	}
	return p
}

// rmwIsATransaction runs concurrent read-modify-writes of one record, each
// writing a value of its own, and checks that no two successful ones read
// the same value: each read the value the previous one wrote, so none was
// lost to a concurrent writer.
func rmwIsATransaction(t *testing.T, tg target, table string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := ycsb.NewProperties()
	p.Set("recordcount", "1")
	p.Set("table", table)
	p.Set("fieldcount", "2")
	w, err := ycsb.NewWorkload(p)
	require.NoError(t, err)
	d, err := drivers.Open(ctx, tg.name, drivers.Config{PD: tg.pd, Thrift: tg.thrift, Etcd: tg.etcd, Props: p, Workload: w})
	require.NoError(t, err)
	defer d.Close()

	db, err := d.Session(ctx)
	require.NoError(t, err)
	_, err = db.ReadModifyWrite(ctx, table, "hot", nil, ycsb.Record{{Name: "field0", Value: []byte("x")}})
	require.ErrorIs(t, err, ycsb.ErrNotFound, "no write to a missing record")
	require.NoError(t, db.Insert(ctx, table, "hot", ycsb.Record{{Name: "field0", Value: []byte("start")}, {Name: "field1", Value: []byte("other")}}))
	require.NoError(t, db.Close())

	const workers, each = 6, 15
	var mu sync.Mutex
	seen := map[string]string{} // value read -> writer that read it
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := d.Session(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			for j := range each {
				me := fmt.Sprintf("w%d-%d", i, j)
				rec, err := db.ReadModifyWrite(ctx, table, "hot", []string{"field0", "field1"}, ycsb.Record{{Name: "field0", Value: []byte(me)}})
				if err != nil {
					errs <- fmt.Errorf("%s: %w", me, err)
					return
				}
				read, _ := rec.Get("field0")
				other, _ := rec.Get("field1")
				mu.Lock()
				if prev, dup := seen[string(read)]; dup {
					errs <- fmt.Errorf("%s and %s both read %q: an update was lost", prev, me, read)
				}
				seen[string(read)] = me
				mu.Unlock()
				if string(other) != "other" {
					errs <- fmt.Errorf("%s read field1=%q", me, other)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, seen, workers*each)
	require.Contains(t, seen, "start")
}

// The shale and thrift drivers against one in-process cluster.
func TestShaleAndThriftDrivers(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	// The setup's deadline only: loadAndRun takes its own, and the checks
	// after it take theirs (a load on a busy machine outlasts 30 s).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	gw, err := thriftgw.Listen(thriftgw.Options{Client: cl, Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	t.Cleanup(func() {
		require.NoError(t, gw.Close())
		<-served
	})

	shale := target{name: "shale", pd: c.PDEndpoints()}
	thrift := target{name: "thrift", thrift: gw.Addr().String()}
	t.Run("shale", func(t *testing.T) {
		loadAndRun(t, shale, "usertable")
		// The table was created pre-split with one family keeping one
		// version.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tbl, err := cl.Table(ctx, "usertable")
		require.NoError(t, err)
		require.Equal(t, []kvclient.Family{{Name: "f", MaxVersions: 1}}, tbl.Info().Families)
		require.Equal(t, drivers.SplitRows(4), tbl.Info().SplitRows)
		tablets, err := tbl.Tablets(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(tablets), 4)
		rmwIsATransaction(t, shale, "rmw")
		staleReads(t, shale, "usertable_stale")
	})
	t.Run("thrift", func(t *testing.T) {
		loadAndRun(t, thrift, "usertable_thrift")
		rmwIsATransaction(t, thrift, "rmw_thrift")
	})
}

// YCSB against a secure cluster (TLS on every port, the Thrift gateway
// requiring client certificates): `shale bench ycsb --tls-ca/--tls-cert/
// --tls-key` reach it through both drivers; without a certificate the
// shale driver is refused.
func TestDriversOverTLS(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Secure: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.ClientTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	gw, err := thriftgw.Listen(thriftgw.Options{Client: cl, Addr: "127.0.0.1:0", TLS: c.NodeTLS()})
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- gw.Serve() }()
	t.Cleanup(func() {
		require.NoError(t, gw.Close())
		<-served
	})
	t.Run("shale", func(t *testing.T) {
		loadAndRun(t, target{name: "shale", pd: c.PDEndpoints(), tls: c.ClientTLS()}, "usertable_tls")
	})
	t.Run("thrift", func(t *testing.T) {
		loadAndRun(t, target{name: "thrift", thrift: gw.Addr().String(), tls: c.ClientTLS()}, "usertable_tls_thrift")
	})
	var out, status bytes.Buffer
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	_, err = bench.Run(octx, target{name: "shale", pd: c.PDEndpoints()}.options(ycsb.PhaseLoad, &out, &status, "recordcount=1", "table=usertable_tls"))
	require.Error(t, err, "a client without a certificate")
}

// The etcd driver against a real etcd server (Debian's etcd-server, which
// scripts/install-tools.sh ci installs); without the binary the test
// fails with a message saying so.
func TestEtcdDriver(t *testing.T) {
	tg := target{name: "etcd", etcd: []string{etcdtest.Start(t)}}
	loadAndRun(t, tg, "usertable")
	rmwIsATransaction(t, tg, "rmw")

	// Windowed scans return what one range read to the table's end does.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scanKeys := func(windowed bool, start string, n int) []string {
		p := ycsb.NewProperties()
		p.Set("recordcount", "500")
		p.Set("etcd.scanwindow", fmt.Sprint(windowed))
		w, err := ycsb.NewWorkload(p)
		require.NoError(t, err)
		d, err := drivers.Open(ctx, "etcd", drivers.Config{Etcd: tg.etcd, Props: p, Workload: w})
		require.NoError(t, err)
		defer d.Close()
		db, err := d.Session(ctx)
		require.NoError(t, err)
		recs, err := db.Scan(ctx, "usertable", start, n, nil)
		require.NoError(t, err)
		var keys []string
		for _, r := range recs {
			k, _ := r.Get(ycsb.KeyField)
			require.Len(t, r, 11, "10 fields and the key")
			keys = append(keys, string(k))
		}
		return keys
	}
	for _, start := range []string{"user", "user5", "user6284781860667377211", "user9"} {
		for _, n := range []int{1, 7, 60} {
			want := scanKeys(false, start, n)
			require.Equal(t, want, scanKeys(true, start, n), "scan of %d from %s", n, start)
			if start != "user9" {
				require.Len(t, want, n)
			}
		}
	}
}

func TestSplitRows(t *testing.T) {
	require.Nil(t, drivers.SplitRows(1))
	require.Equal(t, [][]byte{[]byte("user51")}, drivers.SplitRows(2))
	rows := drivers.SplitRows(8)
	require.Len(t, rows, 7)
	require.Equal(t, "user20", string(rows[0]))
	require.Equal(t, "user82", string(rows[6]))
	// Hashed YCSB keys spread over the tablets: none gets more than twice
	// its share.
	p := ycsb.NewProperties()
	p.Set("recordcount", "10000")
	w, err := ycsb.NewWorkload(p)
	require.NoError(t, err)
	counts := make([]int, len(rows)+1)
	for i := int64(0); i < 10000; i++ {
		k := w.KeyName(i)
		j := 0
		for j < len(rows) && k >= string(rows[j]) {
			j++
		}
		counts[j]++
	}
	for i, n := range counts {
		require.Less(t, n, 2*10000/len(counts), "tablet %d gets %d of 10000 keys: %v", i, n, counts)
	}
}

func TestOpenRejectsMissingAddresses(t *testing.T) {
	p := ycsb.NewProperties()
	p.Set("recordcount", "1")
	w, err := ycsb.NewWorkload(p)
	require.NoError(t, err)
	ctx := context.Background()
	for name, want := range map[string]string{"shale": "--pd", "thrift": "--thrift", "etcd": "--etcd-endpoints", "mongo": "want shale, thrift or etcd"} {
		_, err := drivers.Open(ctx, name, drivers.Config{Props: p, Workload: w})
		require.ErrorContains(t, err, want)
	}
	p.Set("shale.tablets", "1000")
	_, err = drivers.Open(ctx, "shale", drivers.Config{PD: []string{"127.0.0.1:1"}, Props: p, Workload: w})
	var pe *ycsb.PropertyError
	require.ErrorAs(t, err, &pe)
}
