package store_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIdleTabletsCostLittle hosts 1,000 three-replica tablets on three
// stores (so each store holds 1,000 replicas), waits until they are idle,
// and measures the CPU the process uses. Idle groups must quiesce: no ticks,
// no heartbeats. Production timings (100ms ticks) are used.
func TestIdleTabletsCostLittle(t *testing.T) {
	const tablets = 1000
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.TickInterval = 100 * time.Millisecond
		o.ElectionTicks = 10
		o.HeartbeatTicks = 2
	})
	c.PutSchema(storetest.TestTable)
	start := time.Now()
	// Bootstrapping is one synced write per replica (3,000 of them), so
	// several tablets are bootstrapped at once: their syncs share the WAL's
	// group commits. Each tablet is still bootstrapped on every store in
	// turn, as before.
	const bootstrappers = 8
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		errMu    sync.Mutex
		firstErr error
	)
	for range bootstrappers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= tablets {
					return
				}
				lo := keys.RowKey(storetest.TestTable.TableId, []byte(fmt.Sprintf("%06d", i)))
				hi := keys.RowKey(storetest.TestTable.TableId, []byte(fmt.Sprintf("%06d", i+1)))
				desc := bootstrapDesc(uint64(100+i), lo, hi)
				for _, n := range c.Nodes {
					if err := n.Store.BootstrapTablet(desc); err != nil {
						errMu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("tablet %d on store %d: %w", 100+i, n.Store.StoreID(), err)
						}
						errMu.Unlock()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("bootstrapped %d tablets in %v", tablets, time.Since(start))
	// Wait until every replica on every store is quiesced.
	testutils.SucceedsWithin(t, 2*testutils.DefaultSucceedsSoonDuration, func() error {
		for sid, n := range c.Nodes {
			awake := 0
			for i := 0; i < tablets; i++ {
				st, err := n.Store.TabletStatus(uint64(100 + i))
				if err != nil {
					return err
				}
				if !st.Quiesced {
					awake++
				}
			}
			if awake > 0 {
				return fmt.Errorf("store %d: %d of %d replicas still awake", sid, awake, tablets)
			}
		}
		return nil
	})
	t.Logf("all replicas quiesced %v after start", time.Since(start))

	const window = 5 * time.Second
	before := cpuTime()
	// Models time passing: idle CPU is measured over a fixed window.
	time.Sleep(window)
	used := cpuTime() - before
	perStore := float64(used) / float64(window) / 3 * 100
	t.Logf("idle CPU: %.2f%% of one core per store (%v over %v for 3 stores × %d replicas; race=%v)", perStore, used, window, tablets, raceEnabled)
	limit := 5.0
	if raceEnabled {
		limit = 25.0 // the race detector multiplies CPU cost
	}
	if perStore > limit {
		t.Fatalf("1,000 idle tablets cost %.2f%% of a core per store; limit %.0f%%", perStore, limit)
	}
	// Still serving: a write to a quiesced tablet wakes it.
	if err := c.Put(ctxT(t, 10*time.Second), 100+tablets/2, fmt.Sprintf("%06d", tablets/2), "woke"); err != nil {
		t.Fatal(err)
	}
}
