package thriftgw_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/proto/hbase"
)

// env is one in-process cluster shared by the subtests (starting a
// cluster dominates the test time).
type env struct {
	cl *kvclient.Client
}

func startEnv(t *testing.T) *env {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return &env{cl: cl}
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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
		_, err = c.Get(ctx, table, &hbase.TGet{Row: []byte("r1"), FilterString: []byte("PrefixFilter('a')")})
		requireIOError(t, err, "not supported")
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

	t.Run("RegionLocations", func(t *testing.T) {
		locs, err := c.GetAllRegionLocations(ctx, table)
		require.NoError(t, err)
		require.Len(t, locs, 1)
		loc, err := c.GetRegionLocation(ctx, table, []byte("x"), false)
		require.NoError(t, err)
		require.Equal(t, "t1", string(loc.RegionInfo.TableName))
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
		require.Eventually(t, func() bool {
			id, err := c.OpenScanner(ctx, table, &hbase.TScan{})
			if err != nil {
				return false
			}
			return c.CloseScanner(ctx, id) == nil
		}, 10*time.Second, 50*time.Millisecond)
		_, err = c.GetScannerRows(ctx, id1, 1)
		var ia *hbase.TIllegalArgument
		require.True(t, errors.As(err, &ia), "got %T %v", err, err)
		require.Contains(t, ia.GetMessage(), "expired")
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

// requireClosed waits for the server to close conn (any reply it sends
// first, such as a protocol exception, is drained).
func requireClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	require.NoError(t, err, "the gateway did not close the connection")
}
