package thriftgw_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/pdpb"
)

// env is the package's in-process cluster (thriftgw.SharedClusterForTest),
// shared by the tests: starting a cluster dominates the test time. Tests
// use their own table names.
type env struct {
	c  *testcluster.Cluster
	cl *kvclient.Client
}

func startEnv(t *testing.T) *env {
	t.Helper()
	c, cl := thriftgw.SharedClusterForTest()
	return &env{c: c, cl: cl}
}

// startOwnEnv starts a cluster for this test alone (one store, one
// replica), for a test that stops the cluster's members.
func startOwnEnv(t *testing.T) *env {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return &env{c: c, cl: cl}
}

func (e *env) gateway(t *testing.T, o thriftgw.Options) *thriftgw.Server {
	t.Helper()
	o.Client = e.cl
	o.Addr = "127.0.0.1:0"
	srv, err := thriftgw.Listen(o)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return srv
}

type client struct {
	*hbase.THBaseServiceClient
	trans thrift.TTransport
}

func dial(t *testing.T, addr string, framed, compact bool) *client {
	t.Helper()
	cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 20 * time.Second}
	var trans thrift.TTransport = thrift.NewTSocketConf(addr, cfg)
	if framed {
		trans = thrift.NewTFramedTransportConf(trans, cfg)
	} else {
		trans = thrift.NewTBufferedTransport(trans, 8192)
	}
	require.NoError(t, trans.Open())
	t.Cleanup(func() { trans.Close() })
	var pf thrift.TProtocolFactory = thrift.NewTBinaryProtocolFactoryConf(cfg)
	if compact {
		pf = thrift.NewTCompactProtocolFactoryConf(cfg)
	}
	c := hbase.NewTHBaseServiceClientFactory(trans, pf)
	return &client{THBaseServiceClient: c, trans: trans}
}

// ctxT bounds a test's operations like SucceedsSoon bounds a wait: they
// are expected to finish within seconds, and the slack is for -race on a
// loaded 2-core machine.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testutils.DefaultSucceedsSoonDuration)
	t.Cleanup(cancel)
	return ctx
}

func tn(name string) *hbase.TTableName { return &hbase.TTableName{Qualifier: []byte(name)} }

func i64(v int64) *int64 { return &v }

func cv(f, q, v string) *hbase.TColumnValue {
	return &hbase.TColumnValue{Family: []byte(f), Qualifier: []byte(q), Value: []byte(v)}
}

func value(r *hbase.TResult_, f, q string) (string, bool) {
	for _, c := range r.ColumnValues {
		if string(c.Family) == f && string(c.Qualifier) == q {
			return string(c.Value), true
		}
	}
	return "", false
}

func requireIOError(t *testing.T, err error, contains string) {
	t.Helper()
	var ioe *hbase.TIOError
	require.True(t, errors.As(err, &ioe), "want TIOError, got %T %v", err, err)
	require.Contains(t, ioe.GetMessage(), contains)
}

func TestGateway(t *testing.T) {
	e := startEnv(t)
	srv := e.gateway(t, thriftgw.Options{MaxMessageSize: 1 << 20})
	addr := srv.Addr().String()
	c := dial(t, addr, false, false)
	ctx := ctxT(t)

	// Admin.
	require.NoError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{
		TableName: tn("t1"),
		Columns:   []*hbase.TColumnFamilyDescriptor{{Name: []byte("cf")}, {Name: []byte("g")}},
	}, nil))
	err := c.CreateTable(ctx, &hbase.TTableDescriptor{TableName: tn("t1"), Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("cf")}}}, nil)
	requireIOError(t, err, "TableExistsException")
	ok, err := c.TableExists(ctx, tn("t1"))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = c.TableExists(ctx, tn("nope"))
	require.NoError(t, err)
	require.False(t, ok)
	desc, err := c.GetTableDescriptor(ctx, &hbase.TTableName{Ns: []byte("default"), Qualifier: []byte("t1")})
	require.NoError(t, err)
	require.Len(t, desc.Columns, 2)
	names, err := c.GetTableNamesByNamespace(ctx, "default")
	require.NoError(t, err)
	var found bool
	for _, n := range names {
		found = found || string(n.Qualifier) == "t1"
	}
	require.True(t, found)

	table := []byte("t1")

	t.Run("PutGetExists", func(t *testing.T) {
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: []byte("r1"), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "v1"), cv("g", "b", "w1")}}))
		r, err := c.Get(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		require.Equal(t, "r1", string(r.Row))
		v, ok := value(r, "cf", "a")
		require.True(t, ok)
		require.Equal(t, "v1", v)
		// HBase timestamps are milliseconds: a server-assigned one is near now.
		now := time.Now().UnixMilli()
		require.InDelta(t, now, r.ColumnValues[0].GetTimestamp(), 60_000)

		// Restricting to a family.
		r, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("r1"), Columns: []*hbase.TColumn{{Family: []byte("g")}}})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 1)
		require.Equal(t, "w1", string(r.ColumnValues[0].Value))

		// Explicit millisecond timestamps round-trip, and select by timestamp.
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: []byte("ts"), Timestamp: i64(1000), ColumnValues: []*hbase.TColumnValue{cv("cf", "q", "old")}}))
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: []byte("ts"), ColumnValues: []*hbase.TColumnValue{{Family: []byte("cf"), Qualifier: []byte("q"), Value: []byte("new"), Timestamp: i64(2000)}}}))
		r, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("ts")})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 1)
		require.Equal(t, "new", string(r.ColumnValues[0].Value))
		require.Equal(t, int64(2000), r.ColumnValues[0].GetTimestamp())
		r, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("ts"), Timestamp: i64(1000)})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 1)
		require.Equal(t, "old", string(r.ColumnValues[0].Value))
		mv := int32(5)
		r, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("ts"), MaxVersions: &mv})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 2)

		ok, err = c.Exists(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = c.Exists(ctx, table, &hbase.TGet{Row: []byte("missing")})
		require.NoError(t, err)
		require.False(t, ok)
		all, err := c.ExistsAll(ctx, table, []*hbase.TGet{{Row: []byte("r1")}, {Row: []byte("missing")}})
		require.NoError(t, err)
		require.Equal(t, []bool{true, false}, all)

		// Missing row: empty result, no row.
		r, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("missing")})
		require.NoError(t, err)
		require.Empty(t, r.ColumnValues)
		require.Nil(t, r.Row)

		// Errors answer TIOError and the connection keeps working.
		err = c.Put(ctx, table, &hbase.TPut{Row: []byte("r1"), ColumnValues: []*hbase.TColumnValue{cv("nofamily", "a", "x")}})
		requireIOError(t, err, "")
		_, err = c.Get(ctx, []byte("no_such_table"), &hbase.TGet{Row: []byte("r1")})
		requireIOError(t, err, "TableNotFoundException")
		_, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("r1"), FilterString: []byte("PrefixFilter('a'")})
		requireIOError(t, err, "bad filter string")
		err = c.DisableTable(ctx, tn("t1"))
		requireIOError(t, err, "not supported")
	})

	t.Run("Scan", func(t *testing.T) {
		var puts []*hbase.TPut
		for _, k := range []string{"s1", "s2", "s3", "s4", "s5"} {
			puts = append(puts, &hbase.TPut{Row: []byte(k), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "v"+k)}})
		}
		require.NoError(t, c.PutMultiple(ctx, table, puts))
		id, err := c.OpenScanner(ctx, table, &hbase.TScan{StartRow: []byte("s1"), StopRow: []byte("s5")})
		require.NoError(t, err)
		var got []string
		for {
			rows, err := c.GetScannerRows(ctx, id, 3)
			require.NoError(t, err)
			if len(rows) == 0 {
				break
			}
			for _, r := range rows {
				got = append(got, string(r.Row))
			}
		}
		require.Equal(t, []string{"s1", "s2", "s3", "s4"}, got)
		require.NoError(t, c.CloseScanner(ctx, id))

		// Reversed: startRow inclusive upper bound, stopRow exclusive lower.
		rev := true
		rows, err := c.GetScannerResults(ctx, table, &hbase.TScan{StartRow: []byte("s4"), StopRow: []byte("s1"), Reversed: &rev}, 10)
		require.NoError(t, err)
		got = nil
		for _, r := range rows {
			got = append(got, string(r.Row))
		}
		require.Equal(t, []string{"s4", "s3", "s2"}, got)

		// A closed or unknown scanner id: TIllegalArgument, and the
		// connection keeps serving.
		_, err = c.GetScannerRows(ctx, id, 1)
		var ia *hbase.TIllegalArgument
		require.True(t, errors.As(err, &ia), "got %T %v", err, err)
		err = c.CloseScanner(ctx, 987654)
		require.True(t, errors.As(err, &ia), "got %T %v", err, err)
		ok, err := c.Exists(ctx, table, &hbase.TGet{Row: []byte("s1")})
		require.NoError(t, err)
		require.True(t, ok)
	})

	t.Run("CheckAndMutate", func(t *testing.T) {
		row := []byte("c1")
		put := func(v string) *hbase.TPut {
			return &hbase.TPut{Row: row, ColumnValues: []*hbase.TColumnValue{cv("cf", "q", v)}}
		}
		// Absent value: check for non-existence.
		ok, err := c.CheckAndPut(ctx, table, row, []byte("cf"), []byte("q"), nil, put("one"))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = c.CheckAndPut(ctx, table, row, []byte("cf"), []byte("q"), nil, put("two"))
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = c.CheckAndPut(ctx, table, row, []byte("cf"), []byte("q"), []byte("wrong"), put("two"))
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = c.CheckAndPut(ctx, table, row, []byte("cf"), []byte("q"), []byte("one"), put("two"))
		require.NoError(t, err)
		require.True(t, ok)
		r, err := c.Get(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		v, _ := value(r, "cf", "q")
		require.Equal(t, "two", v)

		// HBase order: GREATER holds when the expected value > stored.
		mut := &hbase.TRowMutations{Row: row, Mutations: []*hbase.TMutation{{Put: put("three")}}}
		ok, err = c.CheckAndMutate(ctx, table, row, []byte("cf"), []byte("q"), hbase.TCompareOperator_GREATER, []byte("a"), mut)
		require.NoError(t, err)
		require.False(t, ok) // "a" > "two" is false
		ok, err = c.CheckAndMutate(ctx, table, row, []byte("cf"), []byte("q"), hbase.TCompareOperator_GREATER, []byte("z"), mut)
		require.NoError(t, err)
		require.True(t, ok)

		// Mismatched row: TIOError.
		_, err = c.CheckAndPut(ctx, table, row, []byte("cf"), []byte("q"), nil, &hbase.TPut{Row: []byte("other"), ColumnValues: []*hbase.TColumnValue{cv("cf", "q", "x")}})
		requireIOError(t, err, "does not match")

		ok, err = c.CheckAndDelete(ctx, table, row, []byte("cf"), []byte("q"), []byte("three"), &hbase.TDelete{Row: row})
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = c.Exists(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("IncrementAppend", func(t *testing.T) {
		row := []byte("n1")
		inc := &hbase.TIncrement{Row: row, Columns: []*hbase.TColumnIncrement{{Family: []byte("cf"), Qualifier: []byte("cnt"), Amount: 5}}}
		r, err := c.Increment(ctx, table, inc)
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 1)
		require.Equal(t, int64(5), int64(binary.BigEndian.Uint64(r.ColumnValues[0].Value)))
		r, err = c.Increment(ctx, table, inc)
		require.NoError(t, err)
		require.Equal(t, int64(10), int64(binary.BigEndian.Uint64(r.ColumnValues[0].Value)))

		ap := &hbase.TAppend{Row: row, Columns: []*hbase.TColumnValue{cv("cf", "s", "ab")}}
		_, err = c.Append(ctx, table, ap)
		require.NoError(t, err)
		r, err = c.Append(ctx, table, ap)
		require.NoError(t, err)
		v, _ := value(r, "cf", "s")
		require.Equal(t, "abab", v)
	})

	t.Run("Delete", func(t *testing.T) {
		row := []byte("d1")
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: row, ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "1"), cv("cf", "b", "2"), cv("g", "c", "3")}}))
		// One column (all versions, the default DELETE_COLUMNS).
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row, Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("a")}}, DeleteType: hbase.TDeleteType_DELETE_COLUMNS}))
		r, err := c.Get(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 2)
		// A family.
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row, Columns: []*hbase.TColumn{{Family: []byte("g")}}, DeleteType: hbase.TDeleteType_DELETE_COLUMNS}))
		r, err = c.Get(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 1)
		// The newest version only (DELETE_COLUMN without timestamp).
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: row, Timestamp: i64(10), ColumnValues: []*hbase.TColumnValue{cv("cf", "v", "old")}}))
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: row, Timestamp: i64(20), ColumnValues: []*hbase.TColumnValue{cv("cf", "v", "new")}}))
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row, Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("v")}}, DeleteType: hbase.TDeleteType_DELETE_COLUMN}))
		r, err = c.Get(ctx, table, &hbase.TGet{Row: row, Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("v")}}})
		require.NoError(t, err)
		v, _ := value(r, "cf", "v")
		require.Equal(t, "old", v)
		// The whole row.
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row}))
		ok, err := c.Exists(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.False(t, ok)
	})

	// putMultiple/deleteMultiple with one row twice apply every entry, in
	// order, as HBase does (issue 15).
	t.Run("SameRowTwiceInABatch", func(t *testing.T) {
		get := func(row string) (string, bool) {
			t.Helper()
			r, err := c.Get(ctx, table, &hbase.TGet{Row: []byte(row)})
			require.NoError(t, err)
			return value(r, "cf", "a")
		}
		require.NoError(t, c.PutMultiple(ctx, table, []*hbase.TPut{
			{Row: []byte("dup1"), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "first")}},
			{Row: []byte("dup2"), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "x")}},
			{Row: []byte("dup1"), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "second")}},
			{Row: []byte("dup1"), ColumnValues: []*hbase.TColumnValue{cv("cf", "b", "other column")}},
		}))
		v, _ := get("dup1")
		require.Equal(t, "second", v, "the later put of a cell wins")
		r, err := c.Get(ctx, table, &hbase.TGet{Row: []byte("dup1")})
		require.NoError(t, err)
		b, ok := value(r, "cf", "b")
		require.True(t, ok, "the third entry for dup1 was dropped")
		require.Equal(t, "other column", b)

		// Deleting a column and then a whole row in one batch: both apply.
		left, err := c.DeleteMultiple(ctx, table, []*hbase.TDelete{
			{Row: []byte("dup1"), Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("a")}}},
			{Row: []byte("dup2")},
			{Row: []byte("dup1")},
		})
		require.NoError(t, err)
		require.Empty(t, left)
		for _, row := range []string{"dup1", "dup2"} {
			ok, err := c.Exists(ctx, table, &hbase.TGet{Row: []byte(row)})
			require.NoError(t, err)
			require.False(t, ok, "row %s survived deleteMultiple", row)
		}
	})

	t.Run("RegionLocations", func(t *testing.T) {
		locs, err := c.GetAllRegionLocations(ctx, table)
		require.NoError(t, err)
		require.Len(t, locs, 1)
		require.Empty(t, locs[0].RegionInfo.StartKey)
		require.Empty(t, locs[0].RegionInfo.EndKey)
		loc, err := c.GetRegionLocation(ctx, table, []byte("x"), false)
		require.NoError(t, err)
		require.Equal(t, "t1", string(loc.RegionInfo.TableName))
		require.Equal(t, locs[0].RegionInfo.RegionId, loc.RegionInfo.RegionId)

		// A pre-split table: one region per tablet, keys within the table,
		// region ID = tablet ID, server = the tablet's leader.
		require.NoError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{
			TableName: tn("regions"), Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("cf")}},
		}, [][]byte{[]byte("g"), []byte("p")}))
		defer func() { require.NoError(t, c.DeleteTable(ctx, tn("regions"))) }()
		info, err := e.cl.DescribeTable(ctx, "regions")
		require.NoError(t, err)
		locs, err = c.GetAllRegionLocations(ctx, []byte("regions"))
		require.NoError(t, err)
		require.Len(t, locs, 3)
		bounds := [][2]string{{"", "g"}, {"g", "p"}, {"p", ""}}
		for i, l := range locs {
			require.Equal(t, "regions", string(l.RegionInfo.TableName))
			require.Equal(t, bounds[i][0], string(l.RegionInfo.StartKey), "region %d", i)
			require.Equal(t, bounds[i][1], string(l.RegionInfo.EndKey), "region %d", i)
			pd, err := e.c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: keys.RowKey(info.ID, []byte(bounds[i][0]))})
			require.NoError(t, err)
			require.Equal(t, int64(pd.Tablet.Tablet.TabletId), l.RegionInfo.RegionId, "region %d", i)
			require.Equal(t, e.storeAddr(ctx, t, pd.Tablet.LeaderStoreId), net.JoinHostPort(l.ServerName.HostName, fmt.Sprint(l.ServerName.GetPort())))
		}
		for _, reload := range []bool{false, true} {
			loc, err = c.GetRegionLocation(ctx, []byte("regions"), []byte("h"), reload)
			require.NoError(t, err)
			require.Equal(t, locs[1].RegionInfo.RegionId, loc.RegionInfo.RegionId, "reload=%v", reload)
			require.Equal(t, "g", string(loc.RegionInfo.StartKey))
			require.Equal(t, "p", string(loc.RegionInfo.EndKey))
		}
		loc, err = c.GetRegionLocation(ctx, []byte("regions"), []byte("zzz"), false)
		require.NoError(t, err)
		require.Equal(t, locs[2].RegionInfo.RegionId, loc.RegionInfo.RegionId)

		_, err = c.GetAllRegionLocations(ctx, []byte("no_such_table"))
		requireIOError(t, err, "TableNotFoundException")
		_, err = c.GetRegionLocation(ctx, []byte("no_such_table"), []byte("a"), false)
		requireIOError(t, err, "TableNotFoundException")
	})

	// HBase's LATEST_TIMESTAMP (Long.MAX_VALUE) means "now": puts and
	// deletes get the server's timestamp, a time range ending there is
	// unbounded. A timestamp truly in the future is refused.
	t.Run("LatestTimestamp", func(t *testing.T) {
		const latest = int64(math.MaxInt64)
		row := []byte("latest")
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: row, Timestamp: i64(latest), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "1")}}))
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: row, Timestamp: i64(10), ColumnValues: []*hbase.TColumnValue{
			{Family: []byte("cf"), Qualifier: []byte("b"), Value: []byte("2"), Timestamp: i64(latest)},
		}}))
		r, err := c.Get(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 2)
		now := time.Now().UnixMilli()
		for _, col := range r.ColumnValues {
			require.InDelta(t, now, col.GetTimestamp(), 60_000, "cell %s stored at %d, not now", col.Qualifier, col.GetTimestamp())
		}
		// A newer put (server timestamp) supersedes it for a normal get.
		require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: row, ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "3")}}))
		r, err = c.Get(ctx, table, &hbase.TGet{Row: row, Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("a")}}})
		require.NoError(t, err)
		v, _ := value(r, "cf", "a")
		require.Equal(t, "3", v)
		// A time range ending at LATEST_TIMESTAMP has no upper bound.
		r, err = c.Get(ctx, table, &hbase.TGet{Row: row, TimeRange: &hbase.TTimeRange{MinStamp: 0, MaxStamp: latest}})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 2)
		sc, err := c.GetScannerResults(ctx, table, &hbase.TScan{StartRow: row, StopRow: []byte("latest\x00"), TimeRange: &hbase.TTimeRange{MinStamp: 0, MaxStamp: latest}}, 10)
		require.NoError(t, err)
		require.Len(t, sc, 1)
		// Deletes at LATEST_TIMESTAMP: the newest version of a column
		// (DELETE_COLUMN), all of a column (DELETE_COLUMNS), the row.
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row, Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("a"), Timestamp: i64(latest)}}, DeleteType: hbase.TDeleteType_DELETE_COLUMN}))
		r, err = c.Get(ctx, table, &hbase.TGet{Row: row, Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("a")}}})
		require.NoError(t, err)
		v, _ = value(r, "cf", "a")
		require.Equal(t, "1", v)
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row, Timestamp: i64(latest), Columns: []*hbase.TColumn{{Family: []byte("cf"), Qualifier: []byte("a")}}, DeleteType: hbase.TDeleteType_DELETE_COLUMNS}))
		r, err = c.Get(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.Len(t, r.ColumnValues, 1)
		require.NoError(t, c.DeleteSingle(ctx, table, &hbase.TDelete{Row: row, Timestamp: i64(latest)}))
		ok, err := c.Exists(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.False(t, ok)
		// Reading at exactly LATEST_TIMESTAMP is refused, as by HBase.
		_, err = c.Get(ctx, table, &hbase.TGet{Row: row, Timestamp: i64(latest)})
		require.Error(t, err)
		// An explicit timestamp an hour ahead is refused, not stored.
		err = c.Put(ctx, table, &hbase.TPut{Row: row, Timestamp: i64(time.Now().Add(time.Hour).UnixMilli()), ColumnValues: []*hbase.TColumnValue{cv("cf", "a", "future")}})
		requireIOError(t, err, "clock")
		ok, err = c.Exists(ctx, table, &hbase.TGet{Row: row})
		require.NoError(t, err)
		require.False(t, ok)
	})

	t.Run("MalformedInput", func(t *testing.T) {
		// Garbage on a raw connection: that connection is closed ...
		raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		defer raw.Close()
		_, err = raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage garbage"))
		require.NoError(t, err)
		requireClosed(t, raw)
		// ... while the established client keeps working.
		ok, err := c.Exists(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		require.True(t, ok)
	})

	t.Run("OversizedContainer", func(t *testing.T) {
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		// existsAll(table, tgets) declaring 1<<30 TGets, and a get whose
		// row is a 1 GiB binary: rejected without allocating it.
		for _, body := range []func(p thrift.TProtocol){
			func(p thrift.TProtocol) {
				p.WriteFieldBegin(context.Background(), "tgets", thrift.LIST, 2)
				p.WriteListBegin(context.Background(), thrift.STRUCT, 1<<30)
			},
			func(p thrift.TProtocol) {
				p.WriteFieldBegin(context.Background(), "tget", thrift.STRUCT, 2)
				p.WriteFieldBegin(context.Background(), "row", thrift.STRING, 1)
				p.WriteI32(context.Background(), 1<<30)
			},
		} {
			raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
			require.NoError(t, err)
			buf := thrift.NewTMemoryBuffer()
			p := thrift.NewTBinaryProtocolConf(buf, nil)
			bg := context.Background()
			p.WriteMessageBegin(bg, "existsAll", thrift.CALL, 1)
			p.WriteStructBegin(bg, "args")
			p.WriteFieldBegin(bg, "table", thrift.STRING, 1)
			p.WriteBinary(bg, table)
			p.WriteFieldEnd(bg)
			body(p)
			_, err = raw.Write(buf.Bytes())
			require.NoError(t, err)
			requireClosed(t, raw)
			raw.Close()
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		require.Less(t, after.HeapAlloc, before.HeapAlloc+256<<20, "the gateway allocated what the request declared")
		ok, err := c.Exists(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		require.True(t, ok)
		// A fresh client works too.
		c2 := dial(t, addr, false, false)
		ok, err = c2.Exists(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		require.True(t, ok)
	})

	t.Run("ScannerLimitAndExpiry", func(t *testing.T) {
		g := e.gateway(t, thriftgw.Options{MaxScanners: 2, ScannerIdleTimeout: 200 * time.Millisecond})
		c := dial(t, g.Addr().String(), false, false)
		id1, err := c.OpenScanner(ctx, table, &hbase.TScan{})
		require.NoError(t, err)
		_, err = c.OpenScanner(ctx, table, &hbase.TScan{})
		require.NoError(t, err)
		_, err = c.OpenScanner(ctx, table, &hbase.TScan{})
		requireIOError(t, err, "too many open scanners")
		// Idle scanners expire: room frees up (polling openScanner does not
		// touch the open ones) and the old ids become invalid.
		testutils.SucceedsSoon(t, func() error {
			id, err := c.OpenScanner(ctx, table, &hbase.TScan{})
			if err != nil {
				return err
			}
			return c.CloseScanner(ctx, id)
		})
		_, err = c.GetScannerRows(ctx, id1, 1)
		var ia *hbase.TIllegalArgument
		require.True(t, errors.As(err, &ia), "got %T %v", err, err)
		require.Contains(t, ia.GetMessage(), "expired")
	})

	t.Run("ScannersPerConnection", func(t *testing.T) {
		g := e.gateway(t, thriftgw.Options{MaxScanners: 2, ScannerIdleTimeout: time.Minute})
		a := dial(t, g.Addr().String(), false, false)
		b := dial(t, g.Addr().String(), false, false)
		scan := &hbase.TScan{StartRow: []byte("s1"), StopRow: []byte("s5")}
		a1, err := a.OpenScanner(ctx, table, scan)
		require.NoError(t, err)
		_, err = a.OpenScanner(ctx, table, scan)
		require.NoError(t, err)
		_, err = a.OpenScanner(ctx, table, scan)
		requireIOError(t, err, "too many open scanners on this connection: at most 2 per connection")
		// Another connection has a limit of its own.
		b1, err := b.OpenScanner(ctx, table, scan)
		require.NoError(t, err)
		_, err = b.OpenScanner(ctx, table, scan)
		require.NoError(t, err)
		require.Equal(t, 4, g.OpenScanners())
		// A scanner belongs to its connection: another one cannot read or
		// close it, and it keeps working for its owner.
		var ia *hbase.TIllegalArgument
		_, err = b.GetScannerRows(ctx, a1, 1)
		require.True(t, errors.As(err, &ia), "got %T %v", err, err)
		require.Contains(t, ia.GetMessage(), "unknown on this connection")
		err = b.CloseScanner(ctx, a1)
		require.True(t, errors.As(err, &ia), "got %T %v", err, err)
		rows, err := a.GetScannerRows(ctx, a1, 1)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		require.Equal(t, "s1", string(rows[0].Row))
		// Closing a scanner makes room on its connection.
		require.NoError(t, b.CloseScanner(ctx, b1))
		_, err = b.OpenScanner(ctx, table, scan)
		require.NoError(t, err)
		// A connection that closes frees its scanners; the others stay.
		require.NoError(t, a.trans.Close())
		testutils.SucceedsSoon(t, func() error {
			if n := g.OpenScanners(); n != 2 {
				return fmt.Errorf("the closed connection's scanners were not freed: %d open, want 2", n)
			}
			return nil
		})
		_, err = b.OpenScanner(ctx, table, scan)
		requireIOError(t, err, "too many open scanners on this connection")
		c3 := dial(t, g.Addr().String(), false, false)
		id, err := c3.OpenScanner(ctx, table, scan)
		require.NoError(t, err)
		rows, err = c3.GetScannerRows(ctx, id, 10)
		require.NoError(t, err)
		require.Len(t, rows, 4)
	})

	t.Run("MalformedFrames", func(t *testing.T) {
		g := e.gateway(t, thriftgw.Options{Framed: true, MaxMessageSize: 1 << 20})
		fc := dial(t, g.Addr().String(), true, false)
		exists := func(c *client) {
			t.Helper()
			ok, err := c.Exists(ctx, table, &hbase.TGet{Row: []byte("r1")})
			require.NoError(t, err)
			require.True(t, ok)
		}
		exists(fc)
		frame := func(size uint32, body []byte) []byte {
			return append(binary.BigEndian.AppendUint32(nil, size), body...)
		}
		for name, payload := range map[string][]byte{
			"oversized frame":            frame(1<<31-1, []byte("x")),
			"negative frame size":        frame(1<<31, nil),
			"garbage inside a frame":     frame(16, []byte("\x80\x01\x00\x01garbage!garb")),
			"message longer than frame":  frame(8, []byte("\x80\x01\x00\x01\x00\x00\x00\xff")),
			"truncated frame then close": frame(100, []byte("\x80\x01")),
		} {
			raw, err := net.DialTimeout("tcp", g.Addr().String(), 5*time.Second)
			require.NoError(t, err, name)
			_, err = raw.Write(payload)
			require.NoError(t, err, name)
			if name == "truncated frame then close" || name == "message longer than frame" {
				// The gateway waits for the rest, as for a slow client,
				// until the client hangs up.
				require.NoError(t, raw.(*net.TCPConn).CloseWrite())
			}
			requireClosed(t, raw)
			raw.Close()
			exists(fc) // the established connection is not disturbed
		}
		exists(dial(t, g.Addr().String(), true, false))
	})

	t.Run("FramedCompact", func(t *testing.T) {
		g := e.gateway(t, thriftgw.Options{Framed: true, Compact: true})
		c := dial(t, g.Addr().String(), true, true)
		r, err := c.Get(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		v, _ := value(r, "cf", "a")
		require.Equal(t, "v1", v)
	})

	t.Run("Truncate", func(t *testing.T) {
		require.NoError(t, c.TruncateTable(ctx, tn("t1"), true))
		ok, err := c.Exists(ctx, table, &hbase.TGet{Row: []byte("r1")})
		require.NoError(t, err)
		require.False(t, ok)
		require.NoError(t, c.DeleteTable(ctx, tn("t1")))
		ok, err = c.TableExists(ctx, tn("t1"))
		require.NoError(t, err)
		require.False(t, ok)
	})
}

// storeAddr returns a store's address as the PD knows it.
func (e *env) storeAddr(ctx context.Context, t *testing.T, id uint64) string {
	t.Helper()
	resp, err := e.c.PD().GetStore(ctx, &pdpb.GetStoreRequest{StoreId: id})
	require.NoError(t, err)
	return resp.GetStore().GetStore().GetAddress()
}

// requireClosed waits for the server to close conn (any reply it sends
// first, such as a protocol exception, is drained).
func requireClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	require.NoError(t, err, "the gateway did not close the connection")
}

// Every value the servers accept reads back, by kvclient Get and Scan and
// through the gateway's get and scanners: a max-size value, and a row of
// several. A scanner asked for 2^31-1 rows returns a bounded reply.
func TestMaxSizeValues(t *testing.T) {
	e := startEnv(t)
	// One deadline for the whole test, which moves 5 max-size values
	// through raft to 3 replicas and reads each back 4 ways: under -race
	// on a busy 2-core machine that outlasts one SucceedsSoon bound.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, err := e.cl.CreateTable(ctx, "big", []kvclient.Family{{Name: "cf"}})
	require.NoError(t, err)
	tbl, err := e.cl.Table(ctx, "big")
	require.NoError(t, err)
	val := func(b byte) []byte { return bytes.Repeat([]byte{b}, limits.MaxValueBytes) }
	want := map[string][][]byte{"big1": {val('a')}, "big2": {val('b')}, "wide": {val('c'), val('d'), val('e')}}
	rows := []string{"big1", "big2", "wide"}
	for _, row := range rows {
		for i, v := range want[row] {
			_, err := tbl.MutateRow(ctx, []byte(row), kvclient.SetCell("cf", []byte{'q', byte('0' + i)}, v))
			require.NoError(t, err)
		}
	}
	check := func(what, row string, values [][]byte) {
		t.Helper()
		require.Equal(t, len(want[row]), len(values), "%s %s: cells", what, row)
		for i := range values {
			require.True(t, bytes.Equal(want[row][i], values[i]), "%s %s: cell %d differs", what, row, i)
		}
	}
	kvValues := func(r *kvclient.Row) (out [][]byte) {
		for _, c := range r.Cells {
			out = append(out, c.Value)
		}
		return out
	}
	for _, row := range rows {
		r, err := tbl.Get(ctx, []byte(row))
		require.NoError(t, err)
		check("kvclient Get", row, kvValues(r))
	}
	sc := tbl.Scan(ctx, kvclient.ScanOptions{})
	var got []string
	for sc.Next() {
		got = append(got, string(sc.Row().Key))
		check("kvclient Scan", string(sc.Row().Key), kvValues(sc.Row()))
	}
	require.NoError(t, sc.Err())
	sc.Close()
	require.Equal(t, rows, got)

	srv := e.gateway(t, thriftgw.Options{})
	c := dial(t, srv.Addr().String(), false, false)
	tValues := func(r *hbase.TResult_) (out [][]byte) {
		for _, cv := range r.ColumnValues {
			out = append(out, cv.Value)
		}
		return out
	}
	for _, row := range rows {
		r, err := c.Get(ctx, []byte("big"), &hbase.TGet{Row: []byte(row)})
		require.NoError(t, err)
		check("thrift get", row, tValues(r))
	}
	id, err := c.OpenScanner(ctx, []byte("big"), &hbase.TScan{})
	require.NoError(t, err)
	got = nil
	calls := 0
	for ; ; calls++ {
		rs, err := c.GetScannerRows(ctx, id, math.MaxInt32)
		require.NoError(t, err)
		if len(rs) == 0 {
			break
		}
		for _, r := range rs {
			got = append(got, string(r.Row))
			check("thrift getScannerRows", string(r.Row), tValues(r))
		}
	}
	require.Equal(t, rows, got)
	require.Greater(t, calls, 1, "getScannerRows(2^31-1) returned 40 MiB in one reply")
	_, err = c.GetScannerRows(ctx, id, -1)
	var ia *hbase.TIllegalArgument
	require.True(t, errors.As(err, &ia), "getScannerRows(-1): %T %v", err, err)
	require.NoError(t, c.CloseScanner(ctx, id))

	rs, err := c.GetScannerResults(ctx, []byte("big"), &hbase.TScan{StopRow: []byte("big2")}, math.MaxInt32)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	check("thrift getScannerResults", "big1", tValues(rs[0]))
	_, err = c.GetScannerResults(ctx, []byte("big"), &hbase.TScan{}, math.MaxInt32)
	requireIOError(t, err, "exceed")
	_, err = c.GetScannerResults(ctx, []byte("big"), &hbase.TScan{}, -1)
	requireIOError(t, err, "negative")
}

// TestRunStopsOnCancel: Run serves until its context ends, then closes the
// gateway's connections and scanners and leaves no goroutine behind.
func TestRunStopsOnCancel(t *testing.T) {
	e := startEnv(t)
	warm := dial(t, e.gateway(t, thriftgw.Options{}).Addr().String(), false, false)
	ctx := ctxT(t)
	table := []byte("run")
	require.NoError(t, warm.CreateTable(ctx, &hbase.TTableDescriptor{TableName: tn("run"), Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("cf")}}}, nil))
	require.NoError(t, warm.Put(ctx, table, &hbase.TPut{Row: []byte("r"), ColumnValues: []*hbase.TColumnValue{cv("cf", "q", "v")}}))
	// Scanning warms the client's connections too, so that what stays
	// running after Run is the gateway's alone.
	id, err := warm.OpenScanner(ctx, table, &hbase.TScan{})
	require.NoError(t, err)
	require.NoError(t, warm.CloseScanner(ctx, id))
	before := goroutineIDs()

	srv, err := thriftgw.Listen(thriftgw.Options{Client: e.cl, Addr: "127.0.0.1:0", ScannerIdleTimeout: time.Minute})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(rctx) }()
	c := dial(t, srv.Addr().String(), false, false)
	_, err = c.OpenScanner(ctx, table, &hbase.TScan{})
	require.NoError(t, err)
	require.Equal(t, 1, srv.OpenScanners())
	require.NotEmpty(t, newGatewayGoroutines(before), "the check sees the running gateway's goroutines")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	require.Equal(t, 0, srv.OpenScanners())
	_, err = c.Exists(ctx, table, &hbase.TGet{Row: []byte("r")})
	require.Error(t, err, "the connection outlived Run")
	testutils.SucceedsSoon(t, func() error {
		if left := newGatewayGoroutines(before); len(left) > 0 {
			return fmt.Errorf("Run left %d goroutines behind:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		return nil
	})
}

// gatewayFrames mark a goroutine as the gateway's: its own code, the
// Thrift server's, and the scans it opens through kvclient.
var gatewayFrames = []string{"shale/kvclient/thriftgw.", "apache/thrift/lib/go/thrift.", "shale/kvclient.(*Table).Scan"}

// goroutineStacks returns every goroutine's stack by its ID.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		out[id] = g
	}
	return out
}

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for id := range goroutineStacks() {
		ids[id] = true
	}
	return ids
}

// newGatewayGoroutines lists the goroutines started since before that
// run gateway code. Not goleak over the whole process: the shared
// cluster in this process starts and ends goroutines of its own at any
// time (Pebble flushes and WAL writers, leader transfers), and those are
// not Run's to stop.
func newGatewayGoroutines(before map[string]bool) []string {
	var left []string
	for id, g := range goroutineStacks() {
		if before[id] {
			continue
		}
		for _, f := range gatewayFrames {
			if strings.Contains(g, f) {
				left = append(left, g)
				break
			}
		}
	}
	return left
}
