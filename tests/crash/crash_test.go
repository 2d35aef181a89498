package crash

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/stretchr/testify/require"
)

const (
	rowsPerCycle = 200
	writers      = 4
)

func rowKey(i int) string   { return fmt.Sprintf("row-%06d", i) }
func rowValue(i int) string { return fmt.Sprintf("value-%d", i) }

// TestCrashRestart: three `shale tablet` processes take concurrent writes;
// at a random moment all three are killed with SIGKILL at once, then
// restarted on the same directories and ports. Every write acknowledged
// before the kill must read back with its value; writes that returned an
// error may or may not exist; nothing else may exist. Repeated for -cycles
// cycles (env SHALE_CRASH_CYCLES overrides; `make e2e` runs more) with
// cumulative data.
func TestCrashRestart(t *testing.T) {
	t.Parallel() // its own processes, ports and directories; see doc.go
	if testing.Short() {
		t.Skip("-short given: the crash loop needs real processes and about a minute; make test and make e2e run it (without -short)")
	}
	cycles := crashCycles(*cyclesFlag, "SHALE_CRASH_CYCLES")
	t.Logf("%d cycles", cycles)
	rng := testutils.Rand(t, 0)
	testStart := time.Now()

	c := newCluster(t, 3)
	c.startAll()
	cl := c.client()

	acked := map[string]string{}     // row → value, acknowledged
	attempted := map[string]string{} // row → value, every write sent
	for cycle := 0; cycle < cycles; cycle++ {
		cycleStart := time.Now()
		base := cycle * rowsPerCycle
		for i := base; i < base+rowsPerCycle; i++ {
			attempted[rowKey(i)] = rowValue(i)
		}

		// Kill once killAfter writes of this cycle are acknowledged (all
		// of them: rowsPerCycle), plus a little jitter.
		killAfter := rng.IntN(rowsPerCycle + 1)
		jitter := time.Duration(rng.IntN(5000)) * time.Microsecond

		cycleAck, failed := writeUntilKill(t, context.Background(), cycle, writers, base, rowsPerCycle, killAfter, jitter, 30*time.Second,
			cl.Put, c.killAll)

		for k, v := range cycleAck {
			acked[k] = v
		}
		c.startAll()
		restarted := time.Now()

		// Verify: a full scan, plus point reads of a few acknowledged rows.
		seen := map[string]string{}
		require.NoError(t, cl.Scan(context.Background(), func(row, value []byte) error {
			seen[string(row)] = string(value)
			return nil
		}), "cycle %d: scan after restart", cycle)
		for k, v := range acked {
			got, ok := seen[k]
			require.True(t, ok, "cycle %d: acknowledged row %s is missing after kill -9 and restart", cycle, k)
			require.Equal(t, v, got, "cycle %d: acknowledged row %s has the wrong value", cycle, k)
		}
		for k, v := range seen {
			want, ok := attempted[k]
			require.True(t, ok, "cycle %d: row %s=%s was never written", cycle, k, v)
			require.Equal(t, want, v, "cycle %d: row %s has a value never written", cycle, k)
		}
		n := 0
		for k, v := range acked {
			if n++; n > 5 {
				break
			}
			got, found, err := cl.Get(context.Background(), []byte(k))
			require.NoError(t, err)
			require.True(t, found, "cycle %d: get %s", cycle, k)
			require.Equal(t, v, string(got))
		}
		t.Logf("cycle %2d: kill after %3d acks (+%v): acked %3d, failed %d, unacked-but-present %d; total rows %d; cycle %v (restart+verify %v)",
			cycle, killAfter, jitter.Round(time.Microsecond), len(cycleAck), failed,
			len(seen)-len(acked), len(seen), time.Since(cycleStart).Round(time.Millisecond),
			time.Since(restarted).Round(time.Millisecond))
		// Rows that exist but were not acknowledged stay allowed, but from
		// now on they must not disappear either: a read has observed them.
		for k, v := range seen {
			acked[k] = v
		}
	}
	t.Logf("%d cycles, %d rows acknowledged, in %v", cycles, len(acked), time.Since(testStart).Round(time.Millisecond))
}

// TestSigtermExits: SIGTERM makes a `shale tablet` shut down cleanly and
// exit 0 within 10 s, with its peers up and after it served writes; the
// survivors keep serving, and a restart finds the data.
func TestSigtermExits(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.startAll()
	cl := c.client()
	ctx := context.Background()
	for i := range 20 {
		require.NoError(t, cl.Put(ctx, []byte(rowKey(i)), []byte(rowValue(i))))
	}

	code, took := c.stop(1, syscall.SIGTERM, 10*time.Second)
	t.Logf("store 1 exited %d after SIGTERM in %v", code, took)
	require.Equal(t, 0, code)
	require.True(t, c.logContains(1, "tablet server stopped"))

	require.NoError(t, cl.Put(ctx, []byte("after"), []byte("sigterm")))

	for _, id := range []uint64{2, 3} {
		code, took := c.stop(id, syscall.SIGINT, 10*time.Second)
		t.Logf("store %d exited %d after SIGINT in %v", id, code, took)
		require.Equal(t, 0, code)
	}

	c.startAll()
	v, found, err := cl.Get(ctx, []byte("after"))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "sigterm", string(v))
	v, found, err = cl.Get(ctx, []byte(rowKey(7)))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, rowValue(7), string(v))
}
