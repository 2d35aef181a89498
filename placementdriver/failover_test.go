package placementdriver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"

	"github.com/shaledb/shale/proto/pdpb"
)

// Killing the PD leader elects another; clients carry on; no ID and no
// timestamp is handed out twice, and each client sees timestamps strictly
// increase, across two failovers.
func TestFailoverNeverRepeatsIDsOrTimestamps(t *testing.T) {
	pd := startPD(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := pd.client()
	first := pd.leader(ctx, cl)
	// A member may know the leader before it has the cluster ID the new
	// leader creates (0 until then).
	var clusterID uint64
	testutils.Eventually(t, "no cluster id", func() bool {
		members, err := cl.GetMembers(ctx)
		clusterID = members.GetClusterId()
		return err == nil && clusterID != 0
	})

	var (
		mu   sync.Mutex
		ids  = map[uint64]bool{}
		tss  = map[int64]bool{}
		dups []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lastTS int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, err := cl.AllocID(ctx, &pdpb.AllocIDRequest{Count: 3})
				if err == nil {
					mu.Lock()
					for i := uint64(0); i < uint64(a.Count); i++ {
						if ids[a.First+i] {
							dups = append(dups, "id")
						}
						ids[a.First+i] = true
					}
					mu.Unlock()
				}
				ts, err := cl.GetTimestamp(ctx, &pdpb.GetTimestampRequest{Count: 2})
				if err == nil {
					mu.Lock()
					for i := int64(0); i < int64(ts.Count); i++ {
						if tss[ts.First+i] {
							dups = append(dups, "timestamp")
						}
						tss[ts.First+i] = true
					}
					if ts.First <= lastTS {
						dups = append(dups, "timestamp went back")
					}
					lastTS = ts.First + int64(ts.Count) - 1
					mu.Unlock()
				}
			}
		}()
	}
	waitProgress := func(what string) {
		mu.Lock()
		base := len(ids)
		mu.Unlock()
		testutils.SucceedsSoon(t, func() error {
			mu.Lock()
			n := len(ids)
			mu.Unlock()
			if n < base+100 {
				return fmt.Errorf("%s: %d ids, want %d", what, n, base+100)
			}
			return nil
		})
	}
	waitProgress("before failover")
	for round := 0; round < 2; round++ {
		old := pd.leader(ctx, cl)
		start := time.Now()
		stopped := make(chan struct{})
		go func() { pd.stop(old); close(stopped) }()
		var next string
		for next == "" || next == old {
			next = pd.leader(ctx, cl)
		}
		t.Logf("failover %d: %s → %s in %v", round+1, old, next, time.Since(start))
		waitProgress("after failover")
		<-stopped
		pd.start(old, nil)
	}
	close(stop)
	wg.Wait()
	if len(dups) > 0 {
		t.Fatalf("duplicates or regressions: %v", dups)
	}
	m, err := cl.GetMembers(ctx)
	if err != nil || m.ClusterId != clusterID {
		t.Fatalf("cluster id changed across failover: %d → %v (%v)", clusterID, m.GetClusterId(), err)
	}
	t.Logf("first leader %s; %d ids and %d timestamps, all unique", first, len(ids), len(tss))
}
