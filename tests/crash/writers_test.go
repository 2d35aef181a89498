package crash

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeUntilKill is one crash cycle's write phase, shared by the static and
// the PD-mode loops: writers goroutines put rows [base, base+n) with put;
// once killAfter puts are acknowledged (or every row was tried) and jitter
// has passed, kill runs while writes are still in flight. It returns the
// rows whose put was acknowledged and the number of puts that failed.
func writeUntilKill(t *testing.T, ctx context.Context, cycle, writers, base, n, killAfter int, jitter, stall time.Duration,
	put func(ctx context.Context, key, value []byte) error, kill func()) (map[string]string, int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu        sync.Mutex
		acked     = map[string]string{}
		failed    atomic.Int64
		next      atomic.Int64
		nAcked    atomic.Int64
		wg        sync.WaitGroup
		ackSignal = make(chan struct{}, 1)
	)
	next.Store(int64(base))
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= base+n || ctx.Err() != nil {
					return
				}
				if err := put(ctx, []byte(rowKey(i)), []byte(rowValue(i))); err != nil {
					failed.Add(1)
					continue
				}
				mu.Lock()
				acked[rowKey(i)] = rowValue(i)
				mu.Unlock()
				nAcked.Add(1)
				select {
				case ackSignal <- struct{}{}:
				default:
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Wait for the kill moment; give up if the writers stall.
	timer := time.NewTimer(stall)
	defer timer.Stop()
wait:
	for nAcked.Load() < int64(killAfter) {
		select {
		case <-ackSignal:
		case <-done:
			break wait
		case <-timer.C:
			cancel()
			<-done
			t.Fatalf("cycle %d: only %d of %d writes acknowledged after %v", cycle, nAcked.Load(), killAfter, stall)
		}
	}
	// Models time passing: the kill lands a random moment after the
	// killAfter-th acknowledgement, amid the writes still in flight.
	time.Sleep(jitter)
	kill()
	cancel()
	<-done
	return acked, failed.Load()
}
