package kvclient_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/tabletserver/store"
)

// gcDeleted sums the stores' gc_deleted_versions_total.
func gcDeleted(c *testcluster.Cluster) (float64, error) {
	total := 0.0
	for _, s := range c.Stores {
		resp, err := http.Get("http://" + s.HTTPAddr + "/metrics")
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, "gc_deleted_versions_total ") && !strings.HasPrefix(l, "#") {
				f := strings.Fields(l)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				if err == nil {
					total += v
				}
			}
		}
		resp.Body.Close()
	}
	return total, nil
}

// Column families change online through PD (ModifyColumnFamilies) on a
// real cluster: a new GC policy applies to reads at once and GC removes
// the versions it no longer keeps; a deleted family's cells are hidden
// from the next read (Get and Scan), writes to it are refused, its name
// cannot come back, and GC removes its cells; a created family takes
// writes. Invalid changes are refused whole.
func TestModifyColumnFamiliesOnline(t *testing.T) {
	c, cl := startCluster(t, testcluster.Options{HTTP: true, StoreOptions: func(_ int, o *store.Options) { o.GCInterval = 200 * time.Millisecond }})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := cl.CreateTable(ctx, "fams", []kvclient.Family{{Name: "f"}, {Name: "g"}})
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "fams")
	require.NoError(t, err)
	r := []byte("r")
	for ts := int64(1); ts <= 3; ts++ {
		_, err := tbl.MutateRow(ctx, r, kvclient.SetCellAt("f", []byte("a"), []byte(fmt.Sprint("v", ts)), ts))
		require.NoError(t, err)
	}
	_, err = tbl.MutateRow(ctx, r, kvclient.SetCellAt("g", []byte("b"), []byte("x"), 1))
	require.NoError(t, err)
	cells := func(t *testing.T, tbl *kvclient.Table, family string) int {
		got, err := tbl.Get(ctx, r, kvclient.MaxVersions(10))
		require.NoError(t, err)
		n := 0
		for _, c := range got.Cells {
			if c.Family == family {
				n++
			}
		}
		return n
	}
	require.Equal(t, 3, cells(t, tbl, "f"))
	require.Equal(t, 1, cells(t, tbl, "g"))
	before, err := gcDeleted(c)
	require.NoError(t, err)

	// A new GC policy: one version of f.
	ti, err := cl.ModifyColumnFamilies(ctx, "fams", kvclient.UpdateFamily(kvclient.Family{Name: "f", MaxVersions: 1}))
	require.NoError(t, err)
	require.Equal(t, []kvclient.Family{{Name: "f", MaxVersions: 1}, {Name: "g"}}, ti.Families)
	require.Equal(t, 1, cells(t, tbl, "f"), "the new policy applies to reads at once")

	// Delete g: hidden at once, from Get and Scan.
	_, err = cl.ModifyColumnFamilies(ctx, "fams", kvclient.DropFamily("g"))
	require.NoError(t, err)
	require.Equal(t, 0, cells(t, tbl, "g"), "a deleted family's cells are not visible")
	sc := tbl.Scan(ctx, kvclient.ScanOptions{})
	for sc.Next() {
		for _, cell := range sc.Row().Cells {
			require.NotEqual(t, "g", cell.Family, "scan returned a deleted family's cell")
		}
	}
	require.NoError(t, sc.Err())
	tbl, err = cl.Table(ctx, "fams")
	require.NoError(t, err)
	_, err = tbl.MutateRow(ctx, r, kvclient.SetCell("g", []byte("b"), []byte("y")))
	require.Error(t, err, "a write to a deleted family")
	_, err = cl.ModifyColumnFamilies(ctx, "fams", kvclient.CreateFamily(kvclient.Family{Name: "g"}))
	require.Equal(t, codes.FailedPrecondition, status.Code(errorsCause(err)), "%v", err)

	// GC removes f's two old versions and g's cell.
	testutils.SucceedsSoon(t, func() error {
		after, err := gcDeleted(c)
		if err == nil && after-before < 3 {
			err = fmt.Errorf("GC deleted %v versions since the changes, want at least 3", after-before)
		}
		return err
	})

	// Create h; an all-or-nothing batch with an invalid change changes nothing.
	_, err = cl.ModifyColumnFamilies(ctx, "fams", kvclient.CreateFamily(kvclient.Family{Name: "h", MaxVersions: 2}), kvclient.UpdateFamily(kvclient.Family{Name: "nope"}))
	require.Equal(t, codes.NotFound, status.Code(errorsCause(err)), "%v", err)
	ti, err = cl.DescribeTable(ctx, "fams")
	require.NoError(t, err)
	require.Len(t, ti.Families, 1)
	_, err = cl.ModifyColumnFamilies(ctx, "fams", kvclient.CreateFamily(kvclient.Family{Name: "h", MaxVersions: 2}))
	require.NoError(t, err)
	tbl, err = cl.Table(ctx, "fams")
	require.NoError(t, err)
	_, err = tbl.MutateRow(ctx, r, kvclient.SetCell("h", []byte("c"), []byte("z")))
	require.NoError(t, err)
	require.Equal(t, 1, cells(t, tbl, "h"))
	_, err = cl.ModifyColumnFamilies(ctx, "fams", kvclient.DropFamily("f"), kvclient.DropFamily("h"))
	require.Equal(t, codes.FailedPrecondition, status.Code(errorsCause(err)), "the last family: %v", err)
}

// errorsCause unwraps err to its gRPC status error.
func errorsCause(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}
