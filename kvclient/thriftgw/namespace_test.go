package thriftgw_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
)

// Namespaces: create, list, ns:table names in every form, the guards that
// keep "ns.t" unambiguous, delete only when empty.
func TestNamespaces(t *testing.T) {
	e := startEnv(t)
	srv := e.gateway(t, thriftgw.Options{Thrift1Addr: "127.0.0.1:0"})
	c := dial(t, srv.Addr().String(), false, false)
	c1 := dial1(t, srv.Thrift1Addr().String())
	ctx := ctxT(t)
	fams := []*hbase.TColumnFamilyDescriptor{{Name: []byte("f")}}
	nsName := func(ns, q string) *hbase.TTableName { return &hbase.TTableName{Ns: []byte(ns), Qualifier: []byte(q)} }

	// A table in a namespace that does not exist.
	err := c.CreateTable(ctx, &hbase.TTableDescriptor{TableName: nsName("app", "t"), Columns: fams}, nil)
	requireIOError(t, err, "NamespaceNotFoundException: app")
	// A default table "app.x" makes namespace "app" ambiguous.
	require.NoError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{TableName: tn("app.x"), Columns: fams}, nil))
	err = c.CreateNamespace(ctx, &hbase.TNamespaceDescriptor{Name: "app"})
	requireIOError(t, err, `existing table "app.x"`)
	require.NoError(t, c.DeleteTable(ctx, tn("app.x")))

	require.NoError(t, c.CreateNamespace(ctx, &hbase.TNamespaceDescriptor{Name: "app", Configuration: map[string]string{"k": "v"}}))
	requireIOError(t, c.CreateNamespace(ctx, &hbase.TNamespaceDescriptor{Name: "app"}), "NamespaceExistException")
	requireIOError(t, c.CreateNamespace(ctx, &hbase.TNamespaceDescriptor{Name: "bad.name"}), "illegal namespace name")
	names, err := c.ListNamespaces(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"default", "app"}, names)
	require.NoError(t, c.ModifyNamespace(ctx, &hbase.TNamespaceDescriptor{Name: "app", Configuration: map[string]string{"k2": "v2"}}))
	d, err := c.GetNamespaceDescriptor(ctx, "app")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k2": "v2"}, d.Configuration)

	// The table, by TTableName, by "ns:t" bytes (Thrift2 and Thrift1).
	require.NoError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{TableName: nsName("app", "t"), Columns: fams}, nil))
	requireIOError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{TableName: tn("app.y"), Columns: fams}, nil), "would be table")
	require.NoError(t, c.Put(ctx, []byte("app:t"), &hbase.TPut{Row: []byte("r"), ColumnValues: []*hbase.TColumnValue{cv("f", "q", "v")}}))
	rows, err := c1.GetRow(ctx, []byte("app:t"), []byte("r"), nil)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "v", string(rows[0].Columns["f:q"].Value))
	tns, err := c.GetTableNamesByNamespace(ctx, "app")
	require.NoError(t, err)
	require.Len(t, tns, 1)
	require.Equal(t, "app", string(tns[0].Ns))
	require.Equal(t, "t", string(tns[0].Qualifier))
	desc, err := c.GetTableDescriptor(ctx, nsName("app", "t"))
	require.NoError(t, err)
	require.Equal(t, "app", string(desc.TableName.Ns))
	tns, err = c.GetTableNamesByNamespace(ctx, "default")
	require.NoError(t, err)
	for _, n := range tns {
		require.NotEqual(t, "t", string(n.Qualifier), "app:t listed in default")
		require.NotEqual(t, "_hbase_namespaces", string(n.Qualifier), "the namespace table is listed")
	}
	names1, err := c1.GetTableNames(ctx)
	require.NoError(t, err)
	require.Contains(t, names1, hbase1.Text("app:t"))
	byPattern, err := c.GetTableNamesByPattern(ctx, "app:.*", false)
	require.NoError(t, err)
	require.Len(t, byPattern, 1)

	// Only an empty namespace goes.
	requireIOError(t, c.DeleteNamespace(ctx, "app"), "only empty namespaces")
	require.NoError(t, c.DeleteTable(ctx, nsName("app", "t")))
	require.NoError(t, c.DeleteNamespace(ctx, "app"))
	requireIOError(t, c.DeleteNamespace(ctx, "app"), "NamespaceNotFoundException")
	requireIOError(t, c.DeleteNamespace(ctx, "default"), "default namespace")
	_, err = c.GetNamespaceDescriptor(ctx, "app")
	requireIOError(t, err, "NamespaceNotFoundException")
}
