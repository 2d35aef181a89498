package kvclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient"
)

// Deletes keep history: a read AS OF a timestamp before a row, family or
// column delete returns what it deleted, through the client's routing and
// retries; a read after returns nothing.
func TestAsOfBeforeDeletes(t *testing.T) {
	_, cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cl.CreateTable(ctx, "hist", []kvclient.Family{{Name: "f"}, {Name: "g"}})
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "hist")
	require.NoError(t, err)
	r := []byte("r")
	put, err := tbl.MutateRow(ctx, r, kvclient.SetCell("f", []byte("a"), []byte("1")), kvclient.SetCell("f", []byte("b"), []byte("2")), kvclient.SetCell("g", []byte("c"), []byte("3")))
	require.NoError(t, err)
	delCol, err := tbl.MutateRow(ctx, r, kvclient.DeleteColumn("f", []byte("a")))
	require.NoError(t, err)
	delRow, err := tbl.MutateRow(ctx, r, kvclient.DeleteRow())
	require.NoError(t, err)

	values := func(opts ...kvclient.ReadOption) []string {
		t.Helper()
		row, err := tbl.Get(ctx, r, opts...)
		require.NoError(t, err)
		if row == nil {
			return nil
		}
		var out []string
		for _, c := range row.Cells {
			out = append(out, c.Family+":"+string(c.Qualifier)+"="+string(c.Value))
		}
		return out
	}
	require.Equal(t, []string{"f:a=1", "f:b=2", "g:c=3"}, values(kvclient.AsOf(put)))
	require.Equal(t, []string{"f:a=1", "f:b=2", "g:c=3"}, values(kvclient.AsOf(delCol-1)))
	require.Equal(t, []string{"f:b=2", "g:c=3"}, values(kvclient.AsOf(delCol)))
	require.Equal(t, []string{"f:b=2", "g:c=3"}, values(kvclient.AsOf(delRow-1)))
	require.Nil(t, values(kvclient.AsOf(delRow)))
	require.Nil(t, values())

	sc := tbl.Scan(ctx, kvclient.ScanOptions{Read: []kvclient.ReadOption{kvclient.AsOf(put)}})
	defer sc.Close()
	n := 0
	for sc.Next() {
		n += len(sc.Row().Cells)
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 3, n, "cells a scan as of the put returns")
}
