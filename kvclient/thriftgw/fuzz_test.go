package thriftgw

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
)

// fuzzAllocSlack is how many bytes one fuzz input may make the process
// allocate beyond fuzzAllocPerByte per input byte; the cluster's own
// background work fits well inside it.
const (
	fuzzAllocSlack   = 64 << 20
	fuzzAllocPerByte = 1 << 10
)

// fuzzServers creates table "fz" (family f) on the package's cluster,
// once for both fuzz targets, and returns one gateway per (framed,
// compact) combination, not serving: the fuzz target drives their
// processors directly.
func fuzzServers(f *testing.F) map[[2]bool]*Server {
	_, cl := SharedClusterForTest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[[2]bool]*Server{}
	for _, framed := range []bool{false, true} {
		for _, compact := range []bool{false, true} {
			s, err := Listen(Options{Client: cl, Addr: "127.0.0.1:0", Framed: framed, Compact: compact, MaxScanners: 8})
			if err != nil {
				f.Fatal(err)
			}
			f.Cleanup(func() { s.Close() })
			out[[2]bool{framed, compact}] = s
		}
	}
	fuzzTable.Do(func() {
		h := &connHandler{handler: out[[2]bool{}].handler, owner: &owner{}}
		fuzzTable.err = h.CreateTable(ctx, &hbase.TTableDescriptor{TableName: &hbase.TTableName{Qualifier: []byte("fz")},
			Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("f")}}}, nil)
	})
	if fuzzTable.err != nil {
		f.Fatal(fuzzTable.err)
	}
	return out
}

// fuzzTable is the creation of table "fz", shared by the fuzz targets.
var fuzzTable struct {
	sync.Once
	err error
}

// seedCalls writes a few requests with the generated client into the
// bytes a client would send (framed or not, binary or compact).
func seedCalls(f *testing.F, framed, compact bool) [][]byte {
	tbl := []byte("fz")
	cv := []*hbase.TColumnValue{{Family: []byte("f"), Qualifier: []byte("q"), Value: []byte("v")}}
	calls := []func(context.Context, *hbase.THBaseServiceClient){
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.Put(ctx, tbl, &hbase.TPut{Row: []byte("r1"), ColumnValues: cv})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.Get(ctx, tbl, &hbase.TGet{Row: []byte("r1")})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.GetMultiple(ctx, tbl, []*hbase.TGet{{Row: []byte("a")}, {Row: []byte("b"), Columns: []*hbase.TColumn{{Family: []byte("f")}}}})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.PutMultiple(ctx, tbl, []*hbase.TPut{{Row: []byte("a"), ColumnValues: cv}, {Row: []byte("b"), ColumnValues: cv}})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.OpenScanner(ctx, tbl, &hbase.TScan{StartRow: []byte("a"), StopRow: []byte("z")})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) { c.GetScannerRows(ctx, 1, 10) },
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.GetScannerResults(ctx, tbl, &hbase.TScan{FilterString: []byte("PrefixFilter('a')")}, 5)
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.CheckAndMutate(ctx, tbl, []byte("r1"), []byte("f"), []byte("q"), hbase.TCompareOperator_EQUAL, []byte("v"),
				&hbase.TRowMutations{Row: []byte("r1"), Mutations: []*hbase.TMutation{{DeleteSingle: &hbase.TDelete{Row: []byte("r1")}}}})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.Increment(ctx, tbl, &hbase.TIncrement{Row: []byte("n"), Columns: []*hbase.TColumnIncrement{{Family: []byte("f"), Qualifier: []byte("c")}}})
		},
		func(ctx context.Context, c *hbase.THBaseServiceClient) {
			c.GetTableDescriptor(ctx, &hbase.TTableName{Qualifier: tbl})
		},
	}
	cfg := &thrift.TConfiguration{}
	var out [][]byte
	var all bytes.Buffer
	for _, call := range calls {
		var buf bytes.Buffer
		var trans thrift.TTransport = thrift.NewStreamTransport(bytes.NewReader(nil), &buf)
		if framed {
			trans = thrift.NewTFramedTransportConf(trans, cfg)
		}
		var pf thrift.TProtocolFactory = thrift.NewTBinaryProtocolFactoryConf(cfg)
		if compact {
			pf = thrift.NewTCompactProtocolFactoryConf(cfg)
		}
		call(context.Background(), hbase.NewTHBaseServiceClientFactory(trans, pf)) // the reply read fails: nothing to read
		out = append(out, append([]byte(nil), buf.Bytes()...))
		all.Write(buf.Bytes())
	}
	return append(out, all.Bytes()) // all calls on one connection
}

// FuzzThriftGateway feeds arbitrary bytes, as a client connection would
// send them, through the gateway's real transport and protocol stack into
// its processor and handler (backed by a real cluster), for each transport
// (buffered, framed) and protocol (binary, compact). Nothing may panic
// (the fuzz processor has no panic-recovering middleware), hang, or
// allocate much more than the input's size.
func FuzzThriftGateway(f *testing.F) {
	servers := fuzzServers(f)
	for _, framed := range []bool{false, true} {
		for _, compact := range []bool{false, true} {
			for _, s := range seedCalls(f, framed, compact) {
				f.Add(s, framed, compact)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, framed, compact bool) {
		s := servers[[2]bool{framed, compact}]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan struct{})
		go func() { //stop:short-lived one fuzz input, waited for below
			defer close(done)
			serveBytes(t, s, data)
		}()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("processing %d bytes did not finish within a minute", len(data))
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > fuzzAllocSlack+fuzzAllocPerByte*uint64(len(data)) {
			t.Fatalf("%d input bytes made the gateway allocate %d bytes", len(data), d)
		}
	})
}

// serveBytes processes data as one connection's input, the way
// thrift.TSimpleServer does, but with the processor unwrapped and table
// DDL left out (it would change the cluster under the next input).
func serveBytes(t *testing.T, s *Server, data []byte) {
	_, tf, pf := factories(s.opts)
	trans, err := tf.GetTransport(thrift.NewStreamTransport(bytes.NewReader(data), io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	o := &owner{}
	defer s.handler.scanners.closeOwner(o)
	p := hbase.NewTHBaseServiceProcessor(&connHandler{handler: s.handler, owner: o})
	for _, ddl := range thriftDDL {
		delete(p.ProcessorMap(), ddl)
	}
	in, out := pf.GetProtocol(trans), pf.GetProtocol(thrift.NewStreamTransportW(io.Discard))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 64; i++ {
		ok, err := p.Process(ctx, in, out)
		var te thrift.TTransportException
		if errors.As(err, &te) || !ok {
			return
		}
	}
}

// thriftDDL are the methods the fuzz targets leave out: they change the
// cluster under the next input.
var thriftDDL = []string{"createTable", "deleteTable", "truncateTable", "enableTable", "disableTable",
	"createNamespace", "modifyNamespace", "deleteNamespace"}

// seedCalls1 are Thrift1 requests as a client sends them, the fuzzer's
// starting points.
func seedCalls1(f *testing.F, framed, compact bool) [][]byte {
	tbl := []byte("fz")
	calls := []func(context.Context, *hbase1.HbaseClient){
		func(ctx context.Context, c *hbase1.HbaseClient) { c.GetTableNames(ctx) },
		func(ctx context.Context, c *hbase1.HbaseClient) {
			c.MutateRows(ctx, tbl, []*hbase1.BatchMutation{{Row: []byte("a"), Mutations: []*hbase1.Mutation{{Column: []byte("f:q"), Value: []byte("v")}}}}, nil)
		},
		func(ctx context.Context, c *hbase1.HbaseClient) {
			c.GetRowsWithColumns(ctx, tbl, []hbase1.Text{[]byte("a"), []byte("b")}, []hbase1.Text{[]byte("f:q")}, nil)
		},
		func(ctx context.Context, c *hbase1.HbaseClient) {
			c.ScannerOpenWithScan(ctx, tbl, &hbase1.TScan{FilterString: []byte("PrefixFilter('a') AND KeyOnlyFilter()")}, nil)
		},
		func(ctx context.Context, c *hbase1.HbaseClient) { c.ScannerGetList(ctx, 1, 10) },
		func(ctx context.Context, c *hbase1.HbaseClient) {
			c.AtomicIncrement(ctx, tbl, []byte("n"), []byte("f:c"), 3)
		},
		func(ctx context.Context, c *hbase1.HbaseClient) { c.DeleteAllRowTs(ctx, tbl, []byte("a"), 5, nil) },
	}
	cfg := &thrift.TConfiguration{}
	var out [][]byte
	var all bytes.Buffer
	for _, call := range calls {
		var buf bytes.Buffer
		var trans thrift.TTransport = thrift.NewStreamTransport(bytes.NewReader(nil), &buf)
		if framed {
			trans = thrift.NewTFramedTransportConf(trans, cfg)
		}
		var pf thrift.TProtocolFactory = thrift.NewTBinaryProtocolFactoryConf(cfg)
		if compact {
			pf = thrift.NewTCompactProtocolFactoryConf(cfg)
		}
		call(context.Background(), hbase1.NewHbaseClientFactory(trans, pf)) // the reply read fails: nothing to read
		out = append(out, append([]byte(nil), buf.Bytes()...))
		all.Write(buf.Bytes())
	}
	return append(out, all.Bytes())
}

// FuzzThrift1Gateway is FuzzThriftGateway for the Thrift1 service Hbase.
func FuzzThrift1Gateway(f *testing.F) {
	servers := fuzzServers(f)
	for _, framed := range []bool{false, true} {
		for _, compact := range []bool{false, true} {
			for _, s := range seedCalls1(f, framed, compact) {
				f.Add(s, framed, compact)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, framed, compact bool) {
		s := servers[[2]bool{framed, compact}]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan struct{})
		go func() { //stop:short-lived one fuzz input, waited for below
			defer close(done)
			serveBytes1(t, s, data)
		}()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("processing %d bytes did not finish within a minute", len(data))
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > fuzzAllocSlack+fuzzAllocPerByte*uint64(len(data)) {
			t.Fatalf("%d input bytes made the gateway allocate %d bytes", len(data), d)
		}
	})
}

// serveBytes1 is serveBytes for Thrift1.
func serveBytes1(t *testing.T, s *Server, data []byte) {
	_, tf, pf := factories(s.opts)
	trans, err := tf.GetTransport(thrift.NewStreamTransport(bytes.NewReader(data), io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	o := &owner{}
	defer s.handler.scanners.closeOwner(o)
	p := hbase1.NewHbaseProcessor(&thrift1{&connHandler{handler: s.handler, owner: o}})
	for _, ddl := range thriftDDL {
		delete(p.ProcessorMap(), ddl)
	}
	in, out := pf.GetProtocol(trans), pf.GetProtocol(thrift.NewStreamTransportW(io.Discard))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 64; i++ {
		ok, err := p.Process(ctx, in, out)
		var te thrift.TTransportException
		if errors.As(err, &te) || !ok {
			return
		}
	}
}
