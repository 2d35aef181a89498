package crash

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
)

var pdCyclesFlag = flag.Int("pd-cycles", 4, "kill/restart cycles of the PD-mode crash test (env SHALE_CRASH_PD_CYCLES overrides)")

// pdCluster is one `shale pd` and three `shale tablet --pd` processes on
// loopback, keeping their directories and ports across restarts.
type pdCluster struct {
	t                 *testing.T
	dir               string
	pdClient, pdHTTP  string
	pdPeer            string
	storeAddr, stHTTP []string
	procs             []*proctest.Proc
}

func newPDCluster(t *testing.T) *pdCluster {
	c := &pdCluster{t: t, dir: t.TempDir(), pdClient: proctest.FreeAddr(t), pdHTTP: proctest.FreeAddr(t), pdPeer: proctest.FreeAddr(t)}
	for range 3 {
		c.storeAddr = append(c.storeAddr, proctest.FreeAddr(t))
		c.stHTTP = append(c.stHTTP, proctest.FreeAddr(t))
	}
	return c
}

// startAll starts PD, then the stores, and waits for every /healthz.
func (c *pdCluster) startAll() {
	c.t.Helper()
	pd := proctest.Start(c.t, "pd", filepath.Join(c.dir, "pd.log"), "pd",
		"--name", "pd1", "--data-dir", filepath.Join(c.dir, "pd"),
		"--client-addr", c.pdClient, "--peer-addr", c.pdPeer, "--http-addr", c.pdHTTP, "--insecure")
	c.procs = append(c.procs, pd)
	for i := range c.storeAddr {
		c.procs = append(c.procs, proctest.Start(c.t, fmt.Sprintf("store %d", i+1), filepath.Join(c.dir, fmt.Sprintf("store%d.log", i+1)), "tablet",
			"--data-dir", filepath.Join(c.dir, fmt.Sprintf("store%d", i+1)),
			"--addr", c.storeAddr[i], "--http-addr", c.stHTTP[i],
			"--pd", c.pdClient, "--heartbeat-interval", "1s",
			"--labels", fmt.Sprintf("host=h%d", i+1), "--insecure"))
	}
	pd.WaitHealthy(c.t, c.pdHTTP)
	for i, p := range c.procs[1:] {
		p.WaitHealthy(c.t, c.stHTTP[i])
	}
}

// killAll sends SIGKILL to PD and every store at once.
func (c *pdCluster) killAll() {
	proctest.KillAll(c.procs...)
	c.procs = nil
}

func crashCycles(flagValue int, env string) int {
	if n := envInt(env); n > 0 {
		return n
	}
	return flagValue
}

// TestCrashRestartPD is TestCrashRestart with the placement driver: one
// `shale pd` and three `shale tablet --pd` processes take writes through
// kvclient; at a random moment all four are killed with SIGKILL at once,
// then restarted on the same directories and ports (PD first). Every write
// acknowledged before the kill must read back; a write that failed or was
// ambiguous may be present only with the value it wrote.
func TestCrashRestartPD(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short given: the crash loop needs real processes and about a minute; make test and make e2e run it (without -short)")
	}
	cycles := crashCycles(*pdCyclesFlag, "SHALE_CRASH_PD_CYCLES")
	t.Logf("%d cycles", cycles)
	rng := testutils.Rand(t, 1)
	testStart := time.Now()

	c := newPDCluster(t)
	c.startAll()
	ctx := context.Background()
	open := func() *kvclient.Client {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cl, err := kvclient.Open(octx, kvclient.Options{PD: []string{c.pdClient}, RequestTimeout: 5 * time.Second, Logger: quiet()})
		require.NoError(t, err)
		return cl
	}
	cl := open()
	defer func() { cl.Close() }()
	// The first tablet exists once PD has seen 3 stores.
	require.NoError(t, testutils.Retry(ctx, 60*time.Second, func() error { return cl.RawPut(ctx, []byte("ready"), []byte("1")) }), "first write")

	acked := map[string]string{"ready": "1"}
	attempted := map[string]string{"ready": "1"}
	for cycle := 0; cycle < cycles; cycle++ {
		cycleStart := time.Now()
		base := cycle * rowsPerCycle
		for i := base; i < base+rowsPerCycle; i++ {
			attempted[rowKey(i)] = rowValue(i)
		}
		killAfter := rng.IntN(rowsPerCycle + 1)
		jitter := time.Duration(rng.IntN(5000)) * time.Microsecond

		cycleAck, failed := writeUntilKill(t, ctx, cycle, writers, base, rowsPerCycle, killAfter, jitter, 60*time.Second,
			cl.RawPut, c.killAll)
		for k, v := range cycleAck {
			acked[k] = v
		}

		c.startAll()
		restarted := time.Now()
		var seen map[string]string
		require.NoError(t, testutils.Retry(ctx, 60*time.Second, func() error {
			kvs, err := cl.RawScan(ctx, nil, nil, 0)
			if err != nil {
				return err
			}
			seen = map[string]string{}
			for _, kv := range kvs {
				if _, dup := seen[string(kv.Key)]; dup {
					return fmt.Errorf("scan returned %s twice", kv.Key)
				}
				seen[string(kv.Key)] = string(kv.Value)
			}
			return nil
		}), "cycle %d: scan after restart", cycle)
		for k, v := range acked {
			got, ok := seen[k]
			require.True(t, ok, "cycle %d: acknowledged key %s is missing after kill -9 of PD and every store", cycle, k)
			require.Equal(t, v, got, "cycle %d: acknowledged key %s has the wrong value", cycle, k)
		}
		for k, v := range seen {
			want, ok := attempted[k]
			require.True(t, ok, "cycle %d: key %s=%s was never written", cycle, k, v)
			require.Equal(t, want, v, "cycle %d: key %s has a value never written", cycle, k)
		}
		t.Logf("cycle %2d: kill after %3d acks (+%v): acked %3d, failed %d, unacked-but-present %d; total %d; cycle %v (restart+verify %v)",
			cycle, killAfter, jitter.Round(time.Microsecond), len(cycleAck), failed, len(seen)-len(acked), len(seen),
			time.Since(cycleStart).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
		for k, v := range seen {
			acked[k] = v
		}
	}
	t.Logf("%d cycles, %d keys acknowledged, in %v", cycles, len(acked), time.Since(testStart).Round(time.Millisecond))
}

// envInt reads a positive integer setting from the environment (0 when
// unset).
func envInt(name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		panic(fmt.Sprintf("%s=%q: want a positive integer", name, v))
	}
	return n
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
