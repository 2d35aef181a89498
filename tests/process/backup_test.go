package process

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
)

// startSmallCluster runs a PD and three tablet servers as processes and
// returns a client once the cluster takes writes.
func startSmallCluster(ctx context.Context, t *testing.T) (*cluster, *kvclient.Client) {
	c := newCluster(t, 1)
	for name := range c.pdPeer {
		c.startPD(name)
	}
	for i := 0; i < 3; i++ {
		c.addStore()
	}
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	testutils.SucceedsSoon(t, func() error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return kv.RawPut(wctx, []byte("ready"), []byte("1"))
	})
	return c, kv
}

// dumpTable is every version of every cell of a table, one line each.
func dumpTable(ctx context.Context, t *testing.T, kv *kvclient.Client, name string) []string {
	tbl, err := kv.Table(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sc := tbl.Scan(ctx, kvclient.ScanOptions{Read: []kvclient.ReadOption{kvclient.MaxVersions(math.MaxUint32)}})
	defer sc.Close()
	var out []string
	for sc.Next() {
		r := sc.Row()
		for _, c := range r.Cells {
			out = append(out, fmt.Sprintf("%s %s:%s@%d=%s", r.Key, c.Family, c.Qualifier, c.Timestamp, c.Value))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The real binary: `shale backup` killed with SIGKILL at a random moment
// (seeded) and run again finishes the backup; `backup ls` and `backup
// verify` describe and check it; `shale restore` into a second cluster
// gives the same cells; a damaged file makes verify and restore fail
// naming it.
func TestBackupRestoreCLI(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, kv := startSmallCluster(ctx, t)
	if _, err := kv.CreateTable(ctx, "t", []kvclient.Family{{Name: "f"}}, []byte("r1"), []byte("r2")); err != nil {
		t.Fatal(err)
	}
	tbl, err := kv.Table(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i++ {
		row := fmt.Sprintf("r%d-%03d", i%3, i%200)
		if _, err := tbl.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), []byte(fmt.Sprintf("v%d-%s", i, strings.Repeat("z", rng.IntN(500)))))); err != nil {
			t.Fatal(err)
		}
	}
	want := dumpTable(ctx, t, kv, "t")
	dir := t.TempDir()
	to := "file://" + filepath.Join(dir, "b1")
	pd := strings.Join(src.endpoints(), ",")
	bin := proctest.Binary(t)
	args := []string{"backup", "--pd", pd, "--to", to, "--table", "t", "--file-size", "4096", "--parallel", "1", "--progress", "none"}

	// Killed at a random moment, then run to the end.
	kill := time.Duration(rng.IntN(600)) * time.Millisecond
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(kill) // the kill's moment, chosen by the seed
	_ = cmd.Process.Signal(syscall.SIGKILL)
	if cmd.Wait() == nil {
		// It finished first (a quiet machine backs up this table in
		// ~200 ms): the rerun must refuse to write over it, by name.
		t.Logf("first backup run finished before the kill at %v", kill)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "already holds a finished backup") {
			t.Fatalf("shale %s over a finished backup: %v\n%s", strings.Join(args, " "), err, out)
		}
	} else {
		t.Logf("first backup run killed after %v", kill)
		if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("shale %s: %v\n%s", strings.Join(args, " "), err, out)
		} else if !strings.Contains(string(out), "Full backup") {
			t.Fatalf("no summary in:\n%s", out)
		}
	}
	out, err := exec.CommandContext(ctx, bin, "backup", "ls", "file://"+dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "b1") || !strings.Contains(string(out), "full") {
		t.Fatalf("shale backup ls: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(ctx, bin, "backup", "verify", to).CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("shale backup verify: %v\n%s", err, out)
	}

	dc, kv2 := startSmallCluster(ctx, t)
	dst := strings.Join(dc.endpoints(), ",")
	rargs := []string{"restore", "--pd", dst, "--from", to, "--table", "t", "--work-dir", filepath.Join(dir, "work"), "--progress", "none"}
	if out, err := exec.CommandContext(ctx, bin, rargs...).CombinedOutput(); err != nil {
		t.Fatalf("shale %s: %v\n%s", strings.Join(rargs, " "), err, out)
	}
	got := dumpTable(ctx, t, kv2, "t")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("restored table differs: %d cells, want %d", len(got), len(want))
	}

	// Damage one file.
	var victim string
	_ = filepath.Walk(filepath.Join(dir, "b1", "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && victim == "" {
			victim = p
		}
		return nil
	})
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 1
	if err := os.WriteFile(victim, data, 0o644); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(victim, filepath.Join(dir, "b1")+"/")
	out, err = exec.CommandContext(ctx, bin, "backup", "verify", to).CombinedOutput()
	if err == nil || !strings.Contains(string(out), name) || !strings.Contains(string(out), "corrupt") {
		t.Fatalf("verify of a damaged backup: %v\n%s", err, out)
	}
	rargs = []string{"restore", "--pd", dst, "--from", to, "--table", "t", "--as", "t2", "--work-dir", filepath.Join(dir, "work2"), "--progress", "none"}
	out, err = exec.CommandContext(ctx, bin, rargs...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), name) {
		t.Fatalf("restore of a damaged backup: %v\n%s", err, out)
	}
}
