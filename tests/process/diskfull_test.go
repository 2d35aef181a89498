package process

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// mountTmpfs mounts a tmpfs of size bytes at dir (the test runs as root:
// docs/reliability.md says so) and unmounts it at cleanup, after the
// processes using it are gone.
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs to mount a small tmpfs (run it as root, or where mount -t tmpfs is allowed): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// addSmallStore starts a tablet server whose data directory is dir, with
// extra flags.
func (c *cluster) addSmallStore(dir string, extra ...string) *storeProc {
	i := len(c.stores)
	s := &storeProc{addr: proctest.FreeAddr(c.t), http: proctest.FreeAddr(c.t), dir: dir}
	c.stores = append(c.stores, s)
	args := append([]string{"tablet", "--data-dir", s.dir, "--addr", s.addr, "--http-addr", s.http,
		"--pd", strings.Join(c.endpoints(), ","), "--insecure"}, extra...)
	s.p = proctest.Start(c.t, fmt.Sprintf("store%d", i), filepath.Join(c.dir, fmt.Sprintf("store%d.log", i)), args...)
	s.p.WaitHealthy(c.t, s.http)
	return s
}

// metric returns the value of an unlabelled metric on a process's
// /metrics page.
func metric(addr, name string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no metric %s", name)
}

func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestDiskFullProcess: one of three tablet servers keeps its data on a
// 320 MiB tmpfs, which fills up. That store refuses writes with DiskFull
// while it still leads; PD moves the leadership to a store with room and
// the cluster keeps taking writes and serving reads; once space is freed,
// the store takes writes again without a restart, and no acknowledged
// write is lost.
func TestDiskFullProcess(t *testing.T) {
	c := newCluster(t, 1)
	for name := range c.pdPeer {
		c.startPD(name)
	}
	small := filepath.Join(c.dir, "small")
	mountTmpfs(t, small, 320<<20)
	// A long heartbeat interval keeps the store leading for a while after
	// it becomes full (PD hears of it at the next heartbeat), so that the
	// test sees its refusal before PD moves the leader.
	full := c.addSmallStore(filepath.Join(small, "store"), "--heartbeat-interval", "3s",
		"--min-free-bytes", fmt.Sprint(24<<20), "--ballast-bytes", fmt.Sprint(8<<20), "--disk-probe-interval", "100ms")
	c.addStore()
	c.addStore()

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	pd := c.pdc()
	var fullID uint64
	testutils.SucceedsWithin(t, 2*time.Minute, func() error {
		resp, err := pd.ListStores(ctx, &pdpb.ListStoresRequest{})
		if err != nil {
			return err
		}
		for _, s := range resp.Stores {
			if s.Store.Address == full.addr {
				fullID = s.Store.StoreId
			}
		}
		if fullID == 0 || len(resp.Stores) < 3 {
			return fmt.Errorf("%d stores registered", len(resp.Stores))
		}
		return nil
	})
	// Pebble preallocates its WAL (about 70 MiB for 64 MiB memtables):
	// the store starts with room, above its threshold.
	testutils.SucceedsWithin(t, time.Minute, func() error {
		if v, err := metric(full.http, "shale_store_disk_full"); err != nil || v != "0" {
			return fmt.Errorf("shale_store_disk_full = %q (%v); %d MiB free", v, err, freeBytes(t, small)>>20)
		}
		return nil
	})
	t.Logf("small store started: %d MiB free", freeBytes(t, small)>>20)
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if _, err := kv.CreateTable(ctx, "t", []kvclient.Family{{Name: "f", MaxVersions: 1}}); err != nil {
		t.Fatal(err)
	}
	tbl, err := kv.Table(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 1024)
	acked := 0
	write := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			wctx, wcancel := context.WithTimeout(ctx, time.Minute)
			_, err := tbl.MutateRow(wctx, []byte(fmt.Sprintf("row%06d", acked)), kvclient.SetCell("f", []byte("q"), value))
			wcancel()
			if err != nil {
				t.Fatalf("write row%06d: %v", acked, err)
			}
			acked++
		}
	}
	write(100)
	row := []byte("row000000")
	// The small store leads the table's tablet, all three replicate it.
	var tabletID uint64
	testutils.SucceedsWithin(t, 2*time.Minute, func() error {
		loc, err := tbl.Locate(ctx, row, true)
		if err != nil {
			return err
		}
		tabletID = loc.TabletID
		if loc.LeaderStoreID != fullID {
			_, err := pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: loc.TabletID, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: fullID}})
			return fmt.Errorf("leader is store %d, moving it to %d (%v)", loc.LeaderStoreID, fullID, err)
		}
		return nil
	})
	cc, err := grpc.NewClient(full.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	direct := kvpb.NewTabletClient(cc)
	mutate := func(r string) error {
		_, err := direct.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tabletID},
			TableId: tbl.Info().ID, RowKey: []byte(r), Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Value: value}}}}})
		return err
	}
	if err := mutate("direct-before"); err != nil {
		t.Fatalf("direct write to the leader on the small store: %v", err)
	}

	// Something else fills the file system, leaving less than
	// --min-free-bytes.
	filler := filepath.Join(small, "filler")
	ff, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, 1<<20)
	filled := 0
	for freeBytes(t, small) > 12<<20 {
		n, err := ff.Write(chunk)
		filled += n
		if err != nil {
			t.Logf("filler: %v", err) // the store may be writing too
			break
		}
	}
	ff.Close()
	t.Logf("filled %d MiB; %d MiB left", filled>>20, freeBytes(t, small)>>20)
	testutils.SucceedsWithin(t, time.Minute, func() error {
		if v, err := metric(full.http, "shale_store_disk_full"); err != nil || v != "1" {
			return fmt.Errorf("shale_store_disk_full = %q (%v)", v, err)
		}
		return nil
	})
	err = mutate("direct-full")
	if _, ok := errs.As[*errorpb.DiskFull](err); !ok {
		t.Fatalf("write to the full store: want DiskFull, got %v", err)
	}
	t.Logf("full store refused: %v", err)
	pdSaysFull := func(want bool) func() error {
		return func() error {
			resp, err := pd.ListStores(ctx, &pdpb.ListStoresRequest{})
			if err != nil {
				return err
			}
			for _, s := range resp.Stores {
				if s.Store.StoreId == fullID && s.Stats.GetDiskFull() != want {
					return fmt.Errorf("PD says store %d disk_full=%v, want %v", fullID, s.Stats.GetDiskFull(), want)
				}
			}
			return nil
		}
	}
	testutils.SucceedsWithin(t, time.Minute, pdSaysFull(true))

	// The cluster keeps serving: PD moves the leadership away, the client
	// backs off and its writes land; reads are served.
	start := time.Now()
	write(50)
	t.Logf("50 writes through the client took %v after the disk filled", time.Since(start).Round(time.Millisecond))
	testutils.SucceedsWithin(t, time.Minute, func() error {
		loc, err := tbl.Locate(ctx, row, true)
		if err != nil {
			return err
		}
		if loc.LeaderStoreID == fullID {
			return fmt.Errorf("the full store %d still leads", fullID)
		}
		return nil
	})
	got, err := tbl.Get(ctx, []byte("row000010"))
	if err != nil || got == nil {
		t.Fatalf("read while a store is full: %v %v", got, err)
	}
	if !full.p.Exited() {
		t.Log("full store still running")
	} else {
		t.Fatal("the store with a full disk exited")
	}

	// Space is freed: the store takes writes again, without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsWithin(t, time.Minute, func() error {
		if v, err := metric(full.http, "shale_store_disk_full"); err != nil || v != "0" {
			return fmt.Errorf("shale_store_disk_full = %q (%v)", v, err)
		}
		return nil
	})
	testutils.SucceedsWithin(t, time.Minute, pdSaysFull(false))
	testutils.SucceedsWithin(t, 2*time.Minute, func() error {
		err := mutate("direct-after")
		if _, ok := errs.As[*errorpb.NotLeader](err); ok {
			_, perr := pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: tabletID, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: fullID}})
			return fmt.Errorf("%v (moving the leader back: %v)", err, perr)
		}
		return err
	})
	write(20)
	// No acknowledged write is lost.
	for i := 0; i < acked; i++ {
		r, err := tbl.Get(ctx, []byte(fmt.Sprintf("row%06d", i)))
		if err != nil || r == nil {
			t.Fatalf("row%06d after the disk-full episode: %v %v", i, r, err)
		}
	}
	for _, r := range []string{"direct-before", "direct-after"} {
		if got, err := tbl.Get(ctx, []byte(r)); err != nil || got == nil {
			t.Fatalf("%s: %v %v", r, got, err)
		}
	}
}
