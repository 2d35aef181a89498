package backup_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/backup"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// mutateRandomly writes, overwrites and deletes (cells, columns, rows) in
// table t; it returns nothing: the source table is the model.
func mutateRandomly(t *testing.T, ctx context.Context, tbl *kvclient.Table, rng *rand.Rand, n, rows int) {
	t.Helper()
	for i := 0; i < n; i++ {
		row := []byte(fmt.Sprintf("row%04d", rng.IntN(rows)))
		qual := []byte(fmt.Sprintf("q%d", rng.IntN(3)))
		var m kvclient.Mutation
		switch k := rng.IntN(10); {
		case k < 7:
			m = kvclient.SetCell("f", qual, []byte(fmt.Sprintf("v%d-%s", i, strings.Repeat("y", rng.IntN(100)))))
		case k < 8:
			m = kvclient.DeleteColumn("f", qual)
		case k < 9:
			m = kvclient.DeleteRow()
		default:
			m = kvclient.SetCell("g", qual, []byte(fmt.Sprint(i)))
		}
		_, err := tbl.MutateRow(ctx, row, m)
		require.NoError(t, err)
	}
}

// A full backup and two incrementals (with overwrites and deletes in
// between), restored from the last, equal the source at the last
// timestamp, version for version; restoring the middle one equals the
// source as it was then.
func TestIncrementalChain(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src := startEnv(t, ctx)
	_, err := src.cl.CreateTable(ctx, "chain", []kvclient.Family{{Name: "f"}, {Name: "g", MaxVersions: 2}})
	require.NoError(t, err)
	tbl := src.table("chain")
	var urls []string
	var states [][]cell
	for step := 0; step < 3; step++ {
		mutateRandomly(t, ctx, tbl, rng, 200, 60)
		o := backupOpts(src, fileURL(t, fmt.Sprintf("b%d", step)))
		o.Tables = []string{"chain"}
		if step > 0 {
			o.Since = urls[step-1]
		}
		sum, err := backup.Run(ctx, o)
		require.NoError(t, err)
		t.Logf("backup %d: %+v", step, *sum)
		urls = append(urls, o.To)
		states = append(states, src.dump("chain"))
	}
	// Each incremental continues from its parent's timestamp.
	for i := 1; i < 3; i++ {
		in, err := backup.Describe(ctx, urls[i])
		require.NoError(t, err)
		require.Equal(t, urlsTS(t, ctx, urls[i-1]), in.Manifest.Since)
	}
	for _, i := range []int{2, 1} {
		as := fmt.Sprintf("chain_r%d", i)
		sum, err := backup.Restore(ctx, restoreOpts(t, src, urls[i], "chain", as))
		require.NoError(t, err)
		require.Equal(t, i+1, sum.Chain)
		require.Equal(t, states[i], src.dump(as), "restore of backup %d differs from the source at its timestamp", i)
	}
}

func urlsTS(t *testing.T, ctx context.Context, url string) int64 {
	in, err := backup.Describe(ctx, url)
	require.NoError(t, err)
	return in.Manifest.Timestamp
}

// Backup and restore killed at random points (seeded) and run again give
// exactly the result of an uninterrupted run.
func TestKilledAndResumed(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := startEnv(t, ctx)
	info, err := src.cl.CreateTable(ctx, "killed", []kvclient.Family{{Name: "f"}, {Name: "g"}})
	require.NoError(t, err)
	tbl := src.table("killed")
	mutateRandomly(t, ctx, tbl, rng, 300, 100)
	// Several tablets, so there are several pieces to be killed between.
	for _, r := range []string{"row0025", "row0050", "row0075"} {
		_, err := src.c.PD().SplitTablets(ctx, splitReq(info.ID, r))
		require.NoError(t, err)
	}
	want := src.dump("killed")

	to := fileURL(t, "killed")
	runs := 0
	var sum *backup.Summary
	for {
		runs++
		require.Less(t, runs, 50, "the backup never finished")
		o := backupOpts(src, to)
		o.Tables = []string{"killed"}
		o.Parallel = 1 + rng.IntN(3)
		kill := 1 + rng.IntN(6)
		rctx, stop := context.WithCancel(ctx)
		var n atomic.Int32 // the hook runs on the backup's workers
		o.Hook = func(string) {
			if n.Add(1) == int32(kill) {
				stop()
			}
		}
		sum, err = backup.Run(rctx, o)
		stop()
		if err == nil {
			break
		}
		require.True(t, errors.Is(err, context.Canceled), "run %d: %v", runs, err)
	}
	t.Logf("backup finished after %d runs: %+v", runs, *sum)
	require.Greater(t, runs, 1, "never killed: the test proves nothing")
	_, err = backup.Verify(ctx, to)
	require.NoError(t, err)
	// No file a killed run left behind stays beside the manifest.
	in, err := backup.Describe(ctx, to)
	require.NoError(t, err)
	onDisk := 0
	require.NoError(t, filepath.Walk(strings.TrimPrefix(to, "file://"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".sst") {
			onDisk++
		}
		return err
	}))
	require.Equal(t, in.Files, onDisk)

	ro := restoreOpts(t, src, to, "killed", "killed_r")
	ro.Parallel = 2
	runs = 0
	for {
		runs++
		require.Less(t, runs, 50, "the restore never finished")
		kill := 1 + rng.IntN(3)
		rctx, stop := context.WithCancel(ctx)
		var n atomic.Int32 // the hook runs on the restore's workers
		ro.Hook = func(string) {
			if n.Add(1) == int32(kill) {
				stop()
			}
		}
		_, err = backup.Restore(rctx, ro)
		stop()
		if err == nil {
			break
		}
		require.True(t, errors.Is(err, context.Canceled), "run %d: %v", runs, err)
	}
	t.Logf("restore finished after %d runs", runs)
	require.Equal(t, want, src.dump("killed_r"))
}

// A damaged file is reported by verify and by restore, by name.
func TestCorruptFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := startEnv(t, ctx)
	_, err := src.cl.CreateTable(ctx, "corrupt", []kvclient.Family{{Name: "f"}, {Name: "g"}})
	require.NoError(t, err)
	mutateRandomly(t, ctx, src.table("corrupt"), rand.New(rand.NewPCG(3, 3)), 200, 50)
	to := fileURL(t, "b")
	o := backupOpts(src, to)
	o.Tables = []string{"corrupt"}
	_, err = backup.Run(ctx, o)
	require.NoError(t, err)
	_, err = backup.Verify(ctx, to)
	require.NoError(t, err)
	in, err := backup.Describe(ctx, to)
	require.NoError(t, err)
	victim := in.Manifest.Tables[0].Pieces[0].Files[0].Name
	path := filepath.Join(strings.TrimPrefix(to, "file://"), victim)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x40
	require.NoError(t, os.WriteFile(path, data, 0o644))

	res, err := backup.Verify(ctx, to)
	var ce *backup.CorruptFileError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, victim, ce.File)
	require.Len(t, res.Errors, 1)
	require.Contains(t, err.Error(), victim)

	_, err = backup.Restore(ctx, restoreOpts(t, src, to, "corrupt", "corrupt_r"))
	require.ErrorAs(t, err, &ce)
	require.Equal(t, victim, ce.File)

	require.NoError(t, os.Remove(path))
	_, err = backup.Verify(ctx, to)
	var me *backup.MissingFileError
	require.ErrorAs(t, err, &me)
	require.Equal(t, victim, me.File)
}

// Backups at timestamps that deletes have since passed: a full backup at
// t0 and an incremental at t1, both taken after later deletes and puts
// (which made them fail with ReadTooOld when deletes were physical),
// restored, equal the source as it was at t1 (and the full one at t0).
func TestChainAcrossLaterDeletes(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src := startEnv(t, ctx)
	_, err := src.cl.CreateTable(ctx, "later", []kvclient.Family{{Name: "f"}, {Name: "g", MaxVersions: 2}})
	require.NoError(t, err)
	tbl := src.table("later")
	// Hold the GC safe point (it trails the clock closely in tests) so
	// that backups at past timestamps are allowed, as an operator would
	// with a longer GC life time.
	testutils.SucceedsSoon(t, func() error {
		sp, err := src.c.PD().GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		if err != nil {
			return err
		}
		_, err = src.c.PD().UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: "test", SafePoint: sp.GcSafePoint, TtlSeconds: 240})
		return err
	})
	// mark writes a cell and returns its commit timestamp: no write of
	// this test lies between it and the dump that follows.
	mark := func(i int) int64 {
		ts, err := tbl.MutateRow(ctx, []byte("mark"), kvclient.SetCell("f", []byte("m"), []byte(fmt.Sprint(i))))
		require.NoError(t, err)
		return ts
	}
	var stamps []int64
	var states [][]cell
	for step := 0; step < 2; step++ {
		mutateRandomly(t, ctx, tbl, rng, 150, 30)
		stamps = append(stamps, mark(step))
		states = append(states, src.dump("later"))
	}
	mutateRandomly(t, ctx, tbl, rng, 150, 30) // deletes after both timestamps
	full := backupOpts(src, fileURL(t, "full"))
	full.Tables, full.At = []string{"later"}, stamps[0]
	_, err = backup.Run(ctx, full)
	require.NoError(t, err)
	incr := backupOpts(src, fileURL(t, "incr"))
	incr.Tables, incr.At, incr.Since = []string{"later"}, stamps[1], full.To
	_, err = backup.Run(ctx, incr)
	require.NoError(t, err)
	for i, url := range []string{full.To, incr.To} {
		as := fmt.Sprintf("later_r%d", i)
		_, err := backup.Restore(ctx, restoreOpts(t, src, url, "later", as))
		require.NoError(t, err)
		require.Equal(t, states[i], src.dump(as), "restore of backup %d differs from the source at its timestamp", i)
	}
}
