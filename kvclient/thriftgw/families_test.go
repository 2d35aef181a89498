package thriftgw_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/proto/hbase"
)

// HBase's addColumnFamily, modifyColumnFamily, deleteColumnFamily and
// modifyTable change a live table through the gateway (PD's
// ModifyColumnFamilies): an added family takes puts, a modified one
// reports its new policy, a deleted one's cells are gone from the next
// get, and modifyTable adds and deletes to match its descriptor.
func TestColumnFamilyAdmin(t *testing.T) {
	e := startEnv(t)
	ctx := ctxT(t)
	srv := e.gateway(t, thriftgw.Options{})
	c := dial(t, srv.Addr().String(), false, false)
	require.NoError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{TableName: tn("tfam"), Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("f")}}}, nil))

	require.NoError(t, c.AddColumnFamily(ctx, tn("tfam"), &hbase.TColumnFamilyDescriptor{Name: []byte("g"), MaxVersions: i32(3)}))
	require.NoError(t, c.Put(ctx, []byte("tfam"), &hbase.TPut{Row: []byte("r"), ColumnValues: []*hbase.TColumnValue{cv("f", "q", "1"), cv("g", "q", "2")}}))
	require.NoError(t, c.ModifyColumnFamily(ctx, tn("tfam"), &hbase.TColumnFamilyDescriptor{Name: []byte("g"), MaxVersions: i32(1), TimeToLive: i32(3600)}))
	ti, err := e.cl.DescribeTable(ctx, "tfam")
	require.NoError(t, err)
	require.Contains(t, ti.Families, kvclient.Family{Name: "g", MaxVersions: 1, MaxAge: 3600e9})

	require.NoError(t, c.DeleteColumnFamily(ctx, tn("tfam"), []byte("g")))
	r, err := c.Get(ctx, []byte("tfam"), &hbase.TGet{Row: []byte("r")})
	require.NoError(t, err)
	_, ok := value(r, "g", "q")
	require.False(t, ok, "a deleted family's cell is not read")
	v, ok := value(r, "f", "q")
	require.True(t, ok)
	require.Equal(t, "1", v)

	// modifyTable: keep f, add h.
	require.NoError(t, c.ModifyTable(ctx, &hbase.TTableDescriptor{TableName: tn("tfam"), Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("h")}, {Name: []byte("f"), MaxVersions: i32(2)}}}))
	ti, err = e.cl.DescribeTable(ctx, "tfam")
	require.NoError(t, err)
	require.ElementsMatch(t, []kvclient.Family{{Name: "f", MaxVersions: 2}, {Name: "h"}}, ti.Families)
	// ... and one that drops f.
	require.NoError(t, c.ModifyTable(ctx, &hbase.TTableDescriptor{TableName: tn("tfam"), Columns: []*hbase.TColumnFamilyDescriptor{{Name: []byte("h")}}}))
	r, err = c.Get(ctx, []byte("tfam"), &hbase.TGet{Row: []byte("r")})
	require.NoError(t, err)
	require.Empty(t, r.ColumnValues)

	for name, err := range map[string]error{
		"delete a missing family": c.DeleteColumnFamily(ctx, tn("tfam"), []byte("nope")),
		"add an existing family":  c.AddColumnFamily(ctx, tn("tfam"), &hbase.TColumnFamilyDescriptor{Name: []byte("h")}),
		"re-add a deleted family": c.AddColumnFamily(ctx, tn("tfam"), &hbase.TColumnFamilyDescriptor{Name: []byte("g")}),
		"a missing table":         c.AddColumnFamily(ctx, tn("nope"), &hbase.TColumnFamilyDescriptor{Name: []byte("x")}),
	} {
		var tio *hbase.TIOError
		require.ErrorAs(t, err, &tio, name)
	}
}
