package thriftgw_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
	"github.com/shaledb/shale/proto/pdpb"
)

type noGrants struct{}

func (noGrants) Policy() (*authz.Policy, error) { return authz.NewPolicy(nil), nil }

func requireRefused(t *testing.T, err error, code string) {
	t.Helper()
	var ae thrift.TApplicationException
	require.True(t, errors.As(err, &ae), "want a TApplicationException, got %T %v", err, err)
	require.Contains(t, ae.Error(), code)
}

// A secure gateway refuses a connection without a client certificate (this
// one has no TLS) on everything but the public call, before the arguments
// are used, and the connection stays usable.
func TestSecureGatewayRefusesAnonymousCallers(t *testing.T) {
	e := startEnv(t)
	ctx := ctxT(t)
	_, err := e.cl.CreateTable(ctx, "authzt", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: noGrants{}})
	require.NoError(t, err)
	srv := e.gateway(t, thriftgw.Options{Authz: a})
	c := dial(t, srv.Addr().String(), false, false)

	err = c.Put(ctx, []byte("authzt"), &hbase.TPut{Row: []byte("r"), ColumnValues: []*hbase.TColumnValue{cv("f", "q", "v")}})
	requireRefused(t, err, "Unauthenticated")
	typ, err := c.GetThriftServerType(ctx)
	require.NoError(t, err, "the public call works on the same connection")
	require.Equal(t, hbase.TThriftServerType_TWO, typ)
	_, err = c.Get(ctx, []byte("authzt"), &hbase.TGet{Row: []byte("r")})
	requireRefused(t, err, "Unauthenticated")
	err = c.DeleteTable(ctx, tn("authzt"))
	requireRefused(t, err, "Unauthenticated")

	tbl, err := e.cl.Table(ctx, "authzt")
	require.NoError(t, err)
	row, err := tbl.Get(ctx, []byte("r"))
	require.NoError(t, err)
	require.Nil(t, row, "the refused put wrote nothing")
}

type fixedPolicy struct{ p *authz.Policy }

func (f fixedPolicy) Policy() (*authz.Policy, error) { return f.p, nil }

// thriftCalls makes one call of each Thrift method on table (the ones that
// name a table; admin calls use names that do not exist, so an allowed
// call fails harmlessly).
func thriftCalls(table string) map[string]func(context.Context, *client) error {
	tb := []byte(table)
	put := &hbase.TPut{Row: []byte("r"), ColumnValues: []*hbase.TColumnValue{cv("f", "q", "v")}}
	get := &hbase.TGet{Row: []byte("r")}
	del := &hbase.TDelete{Row: []byte("r")}
	rm := &hbase.TRowMutations{Row: []byte("r"), Mutations: []*hbase.TMutation{{Put: put}}}
	col := &hbase.TColumnIncrement{Family: []byte("f"), Qualifier: []byte("n")}
	missing := tn(table + "_missing")
	return map[string]func(context.Context, *client) error{
		"exists": func(ctx context.Context, c *client) error { _, err := c.Exists(ctx, tb, get); return err },
		"existsAll": func(ctx context.Context, c *client) error {
			_, err := c.ExistsAll(ctx, tb, []*hbase.TGet{get})
			return err
		},
		"get": func(ctx context.Context, c *client) error { _, err := c.Get(ctx, tb, get); return err },
		"getMultiple": func(ctx context.Context, c *client) error {
			_, err := c.GetMultiple(ctx, tb, []*hbase.TGet{get})
			return err
		},
		"openScanner": func(ctx context.Context, c *client) error {
			_, err := c.OpenScanner(ctx, tb, &hbase.TScan{})
			return err
		},
		"put":          func(ctx context.Context, c *client) error { return c.Put(ctx, tb, put) },
		"putMultiple":  func(ctx context.Context, c *client) error { return c.PutMultiple(ctx, tb, []*hbase.TPut{put}) },
		"deleteSingle": func(ctx context.Context, c *client) error { return c.DeleteSingle(ctx, tb, del) },
		"deleteMultiple": func(ctx context.Context, c *client) error {
			_, err := c.DeleteMultiple(ctx, tb, []*hbase.TDelete{del})
			return err
		},
		"checkAndPut": func(ctx context.Context, c *client) error {
			_, err := c.CheckAndPut(ctx, tb, []byte("r"), []byte("f"), []byte("q"), nil, put)
			return err
		},
		"checkAndDelete": func(ctx context.Context, c *client) error {
			_, err := c.CheckAndDelete(ctx, tb, []byte("r"), []byte("f"), []byte("q"), nil, del)
			return err
		},
		"checkAndMutate": func(ctx context.Context, c *client) error {
			_, err := c.CheckAndMutate(ctx, tb, []byte("r"), []byte("f"), []byte("q"), hbase.TCompareOperator_EQUAL, []byte("v"), rm)
			return err
		},
		"mutateRow": func(ctx context.Context, c *client) error { return c.MutateRow(ctx, tb, rm) },
		"increment": func(ctx context.Context, c *client) error {
			_, err := c.Increment(ctx, tb, &hbase.TIncrement{Row: []byte("r"), Columns: []*hbase.TColumnIncrement{col}})
			return err
		},
		"append": func(ctx context.Context, c *client) error {
			_, err := c.Append(ctx, tb, &hbase.TAppend{Row: []byte("r"), Columns: []*hbase.TColumnValue{cv("f", "a", "x")}})
			return err
		},
		"getScannerResults": func(ctx context.Context, c *client) error {
			_, err := c.GetScannerResults(ctx, tb, &hbase.TScan{}, 1)
			return err
		},
		"getRegionLocation": func(ctx context.Context, c *client) error {
			_, err := c.GetRegionLocation(ctx, tb, []byte("r"), false)
			return err
		},
		"getTableDescriptor": func(ctx context.Context, c *client) error { _, err := c.GetTableDescriptor(ctx, tn(table)); return err },
		"tableExists":        func(ctx context.Context, c *client) error { _, err := c.TableExists(ctx, tn(table)); return err },
		"deleteTable":        func(ctx context.Context, c *client) error { return c.DeleteTable(ctx, missing) },
		"truncateTable":      func(ctx context.Context, c *client) error { return c.TruncateTable(ctx, missing, false) },
		"disableTable":       func(ctx context.Context, c *client) error { return c.DisableTable(ctx, missing) },
		// Family administration on the table, each failing after the
		// check (a missing family, an invalid name, no families).
		"addColumnFamily": func(ctx context.Context, c *client) error {
			return c.AddColumnFamily(ctx, tn(table), &hbase.TColumnFamilyDescriptor{Name: []byte("bad name!")})
		},
		"deleteColumnFamily": func(ctx context.Context, c *client) error {
			return c.DeleteColumnFamily(ctx, tn(table), []byte("nofam"))
		},
		"modifyColumnFamily": func(ctx context.Context, c *client) error {
			return c.ModifyColumnFamily(ctx, tn(table), &hbase.TColumnFamilyDescriptor{Name: []byte("nofam")})
		},
		"modifyTable": func(ctx context.Context, c *client) error {
			return c.ModifyTable(ctx, &hbase.TTableDescriptor{TableName: tn(table)})
		},
		"getThriftServerType": func(ctx context.Context, c *client) error {
			_, err := c.GetThriftServerType(ctx)
			return err
		},
	}
}

func refused(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	var ioe *hbase.TIOError
	if errors.As(err, &ioe) {
		msg = ioe.GetMessage()
	}
	var ioe1 *hbase1.IOError
	if errors.As(err, &ioe1) {
		msg = ioe1.GetMessage()
	}
	return strings.Contains(msg, "PermissionDenied") || strings.Contains(msg, "permission denied")
}

// The Thrift part of the authorization matrix: every call that names a
// table (and a sample of the others) by a user with no grant, a reader, a
// writer, an admin and a node, end to end through the gateway.
func TestThriftAuthorizationMatrix(t *testing.T) {
	e := startEnv(t)
	ctx := ctxT(t)
	info, err := e.cl.CreateTable(ctx, "authzm", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	st, err := authz.Edit(nil, func(st *pdpb.AuthState) error {
		grant := func(role string, p pdpb.AuthPermission) error {
			return authz.GrantPermission(st, role, &pdpb.AuthGrant{Permission: p, On: &pdpb.AuthGrant_TableId{TableId: info.ID}})
		}
		if err := grant("reader", pdpb.AuthPermission_READ); err != nil {
			return err
		}
		if err := grant("writer", pdpb.AuthPermission_WRITE); err != nil {
			return err
		}
		return authz.GrantPermission(st, "admin", &pdpb.AuthGrant{Permission: pdpb.AuthPermission_ADMIN, On: &pdpb.AuthGrant_Cluster{Cluster: true}})
	})
	require.NoError(t, err)
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: fixedPolicy{authz.NewPolicy(st)}})
	require.NoError(t, err)

	calls, calls1 := thriftCalls("authzm"), thrift1Calls("authzm")
	for name, c := range authz.Thrift {
		_, ok := calls[name]
		_, ok1 := calls1[name]
		if !ok && !ok1 && c.PerTable() {
			t.Errorf("Thrift method %s (%s) names a table but the matrix does not call it", name, c)
		}
	}
	callers := map[string]authz.Identity{"nogrant": {User: "nogrant"}, "reader": {User: "reader"}, "writer": {User: "writer"}, "admin": {User: "admin"}, "node": {Node: true}}
	// The callers are independent (each has its own gateway and
	// connections): they run in parallel.
	for who, id := range callers {
		t.Run(who, func(t *testing.T) {
			t.Parallel()
			srv, err := thriftgw.Listen(thriftgw.Options{Client: e.cl, Addr: "127.0.0.1:0", Thrift1Addr: "127.0.0.1:0", Authz: a})
			require.NoError(t, err)
			thriftgw.SetIdentityForTest(srv, id)
			done := make(chan error, 1)
			go func() { done <- srv.Serve() }() //stop:short-lived test gateway, closed below
			c := dial(t, srv.Addr().String(), false, false)
			for name, call := range calls {
				class := authz.Thrift[name]
				want := id.Node || who == "admin" || class == authz.Public || class == authz.Authenticated ||
					(class == authz.DataRead && (who == "reader" || who == "writer")) || (class == authz.DataWrite && who == "writer")
				err := call(ctx, c)
				if got := !refused(err); got != want {
					t.Errorf("%s calling %s (%s): allowed=%v (%v), want allowed=%v", who, name, class, got, err, want)
				}
			}
			// Thrift1, the same checks on its own listener.
			c1 := dial1(t, srv.Thrift1Addr().String())
			for name, call := range calls1 {
				class := authz.Thrift[name]
				want := id.Node || who == "admin" || class == authz.Public || class == authz.Authenticated ||
					(class == authz.DataRead && (who == "reader" || who == "writer")) || (class == authz.DataWrite && who == "writer")
				err := call(ctx, c1)
				if got := !refused(err); got != want {
					t.Errorf("%s calling Thrift1 %s (%s): allowed=%v (%v), want allowed=%v", who, name, class, got, err, want)
				}
			}
			require.NoError(t, srv.Close())
			require.NoError(t, <-done)
		})
	}
}

// thrift1Calls is thriftCalls for the Thrift1 service Hbase.
func thrift1Calls(table string) map[string]func(context.Context, *hbase1.HbaseClient) error {
	tb := []byte(table)
	r, col := []byte("r"), []byte("f:q")
	cols := []hbase1.Text{col}
	rows := []hbase1.Text{r}
	muts := []*hbase1.Mutation{{Column: col, Value: []byte("v")}}
	batch := []*hbase1.BatchMutation{{Row: r, Mutations: muts}}
	type c = hbase1.HbaseClient
	scan := func(open func(ctx context.Context, c *c) (hbase1.ScannerID, error)) func(context.Context, *c) error {
		return func(ctx context.Context, cl *c) error { _, err := open(ctx, cl); return err }
	}
	return map[string]func(context.Context, *c) error{
		"get":      func(ctx context.Context, c *c) error { _, err := c.Get(ctx, tb, r, col, nil); return err },
		"getVer":   func(ctx context.Context, c *c) error { _, err := c.GetVer(ctx, tb, r, col, 2, nil); return err },
		"getVerTs": func(ctx context.Context, c *c) error { _, err := c.GetVerTs(ctx, tb, r, col, 5, 2, nil); return err },
		"getRow":   func(ctx context.Context, c *c) error { _, err := c.GetRow(ctx, tb, r, nil); return err },
		"getRowWithColumns": func(ctx context.Context, c *c) error {
			_, err := c.GetRowWithColumns(ctx, tb, r, cols, nil)
			return err
		},
		"getRowTs": func(ctx context.Context, c *c) error { _, err := c.GetRowTs(ctx, tb, r, 5, nil); return err },
		"getRowWithColumnsTs": func(ctx context.Context, c *c) error {
			_, err := c.GetRowWithColumnsTs(ctx, tb, r, cols, 5, nil)
			return err
		},
		"getRows": func(ctx context.Context, c *c) error { _, err := c.GetRows(ctx, tb, rows, nil); return err },
		"getRowsWithColumns": func(ctx context.Context, c *c) error {
			_, err := c.GetRowsWithColumns(ctx, tb, rows, cols, nil)
			return err
		},
		"getRowsTs": func(ctx context.Context, c *c) error { _, err := c.GetRowsTs(ctx, tb, rows, 5, nil); return err },
		"getRowsWithColumnsTs": func(ctx context.Context, c *c) error {
			_, err := c.GetRowsWithColumnsTs(ctx, tb, rows, cols, 5, nil)
			return err
		},
		"scannerOpenWithScan": scan(func(ctx context.Context, c *c) (hbase1.ScannerID, error) {
			return c.ScannerOpenWithScan(ctx, tb, &hbase1.TScan{}, nil)
		}),
		"scannerOpen": scan(func(ctx context.Context, c *c) (hbase1.ScannerID, error) { return c.ScannerOpen(ctx, tb, r, cols, nil) }),
		"scannerOpenWithStop": scan(func(ctx context.Context, c *c) (hbase1.ScannerID, error) {
			return c.ScannerOpenWithStop(ctx, tb, r, []byte("s"), cols, nil)
		}),
		"scannerOpenWithPrefix": scan(func(ctx context.Context, c *c) (hbase1.ScannerID, error) {
			return c.ScannerOpenWithPrefix(ctx, tb, r, cols, nil)
		}),
		"scannerOpenTs": scan(func(ctx context.Context, c *c) (hbase1.ScannerID, error) {
			return c.ScannerOpenTs(ctx, tb, r, cols, 5, nil)
		}),
		"scannerOpenWithStopTs": scan(func(ctx context.Context, c *c) (hbase1.ScannerID, error) {
			return c.ScannerOpenWithStopTs(ctx, tb, r, []byte("s"), cols, 5, nil)
		}),
		"mutateRow":    func(ctx context.Context, c *c) error { return c.MutateRow(ctx, tb, r, muts, nil) },
		"mutateRowTs":  func(ctx context.Context, c *c) error { return c.MutateRowTs(ctx, tb, r, muts, 5, nil) },
		"mutateRows":   func(ctx context.Context, c *c) error { return c.MutateRows(ctx, tb, batch, nil) },
		"mutateRowsTs": func(ctx context.Context, c *c) error { return c.MutateRowsTs(ctx, tb, batch, 5, nil) },
		"atomicIncrement": func(ctx context.Context, c *c) error {
			_, err := c.AtomicIncrement(ctx, tb, r, []byte("f:n"), 1)
			return err
		},
		"deleteAll":      func(ctx context.Context, c *c) error { return c.DeleteAll(ctx, tb, r, col, nil) },
		"deleteAllTs":    func(ctx context.Context, c *c) error { return c.DeleteAllTs(ctx, tb, r, col, 5, nil) },
		"deleteAllRow":   func(ctx context.Context, c *c) error { return c.DeleteAllRow(ctx, tb, r, nil) },
		"deleteAllRowTs": func(ctx context.Context, c *c) error { return c.DeleteAllRowTs(ctx, tb, r, 5, nil) },
		"increment": func(ctx context.Context, c *c) error {
			return c.Increment(ctx, &hbase1.TIncrement{Table: tb, Row: r, Column: []byte("f:n"), Ammount: 1})
		},
		"incrementRows": func(ctx context.Context, c *c) error {
			return c.IncrementRows(ctx, []*hbase1.TIncrement{{Table: tb, Row: r, Column: []byte("f:n"), Ammount: 1}})
		},
		"append": func(ctx context.Context, c *c) error {
			_, err := c.Append(ctx, &hbase1.TAppend{Table: tb, Row: r, Columns: cols, Values: []hbase1.Text{[]byte("x")}})
			return err
		},
		"checkAndPut": func(ctx context.Context, c *c) error {
			_, err := c.CheckAndPut(ctx, tb, r, col, nil, muts[0], nil)
			return err
		},
		"getTableNames":        func(ctx context.Context, c *c) error { _, err := c.GetTableNames(ctx); return err },
		"getColumnDescriptors": func(ctx context.Context, c *c) error { _, err := c.GetColumnDescriptors(ctx, tb); return err },
		"deleteTable":          func(ctx context.Context, c *c) error { return c.DeleteTable(ctx, []byte(table+"_missing")) },
		"getThriftServerType":  func(ctx context.Context, c *c) error { _, err := c.GetThriftServerType(ctx); return err },
	}
}

func dial1(t *testing.T, addr string) *hbase1.HbaseClient {
	t.Helper()
	cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 20 * time.Second}
	trans := thrift.NewTBufferedTransport(thrift.NewTSocketConf(addr, cfg), 8192)
	require.NoError(t, trans.Open())
	t.Cleanup(func() { trans.Close() })
	return hbase1.NewHbaseClientFactory(trans, thrift.NewTBinaryProtocolFactoryConf(cfg))
}
