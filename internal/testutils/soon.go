package testutils

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// DefaultSucceedsSoonDuration bounds SucceedsSoon. It is a bound on a
// condition that is expected to hold within a second or so on an idle
// machine; the slack is for a 2-core machine running the rest of the suite
// beside the test, and it is tripled under -race.
var DefaultSucceedsSoonDuration = func() time.Duration {
	if raceEnabled {
		return 3 * 45 * time.Second
	}
	return 45 * time.Second
}()

// SucceedsSoon calls f until it returns nil, backing off from 1ms to 100ms
// between calls, and fails the test with f's last error after
// DefaultSucceedsSoonDuration. f runs on the test's goroutine, so it may
// call t.Fatal itself for an error no retry can fix.
func SucceedsSoon(t testing.TB, f func() error) {
	t.Helper()
	SucceedsWithin(t, DefaultSucceedsSoonDuration, f)
}

// SucceedsWithin is SucceedsSoon with an explicit bound, for a condition
// whose own timing (a lease, a GC interval) sets how long it may take.
func SucceedsWithin(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	// A wait that takes long says why every 15s, even if the test later
	// dies elsewhere.
	lastLog := time.Now()
	err := Retry(context.Background(), d, func() error {
		err := f()
		if err != nil && time.Since(lastLog) > 15*time.Second {
			t.Logf("still waiting: %v", err)
			lastLog = time.Now()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Retry calls f until it returns nil, d passes or ctx ends, and then
// returns an error carrying f's last error and the number of tries. It is
// SucceedsSoon for code that reports errors rather than failing a test (a
// goroutine, a nemesis step).
func Retry(ctx context.Context, d time.Duration, f func() error) error {
	start := time.Now()
	wait := time.Millisecond
	for tries := 1; ; tries++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Since(start) > d {
			return fmt.Errorf("condition failed to hold within %v (%d tries); last error: %w", time.Since(start).Round(time.Millisecond), tries, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

// Eventually is SucceedsSoon for a condition without an error to report;
// what names it in the failure.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	SucceedsSoon(t, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}
