package testutils

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRetryWaitsForTheCondition(t *testing.T) {
	n := 0
	err := Retry(context.Background(), 10*time.Second, func() error {
		if n++; n < 5 {
			return fmt.Errorf("try %d", n)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("Retry = %v after %d tries, want nil after 5", err, n)
	}
}

func TestRetryReportsTheLastError(t *testing.T) {
	sentinel := errors.New("still 3 replicas behind")
	err := Retry(context.Background(), 20*time.Millisecond, func() error { return sentinel })
	if !errors.Is(err, sentinel) || !strings.Contains(err.Error(), "still 3 replicas behind") {
		t.Fatalf("Retry = %v, want it to wrap the last error", err)
	}
}

func TestRetryStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Retry(ctx, time.Hour, func() error {
		if n++; n == 3 {
			cancel()
		}
		return fmt.Errorf("try %d", n)
	})
	if err == nil || n != 3 || !strings.Contains(err.Error(), "try 3") {
		t.Fatalf("Retry = %v after %d tries, want the third try's error", err, n)
	}
}

// recorder is a testing.TB that records Fatalf and Logf instead of
// failing the enclosing test.
type recorder struct {
	testing.TB
	logs, fatal []string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Name() string                 { return "TestX" }
func (r *recorder) Logf(f string, args ...any)   { r.logs = append(r.logs, fmt.Sprintf(f, args...)) }
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = append(r.fatal, fmt.Sprintf(f, args...)) }

func TestSeedFromTheEnvironmentIsLogged(t *testing.T) {
	t.Setenv(SeedEnv, "12345")
	r := &recorder{TB: t}
	if got := Seed(r); got != 12345 {
		t.Fatalf("Seed = %d, want 12345", got)
	}
	if got := SeedOr(r, 42); got != 12345 {
		t.Fatalf("SeedOr = %d, want the environment's 12345", got)
	}
	if len(r.logs) != 2 || !strings.Contains(r.logs[0], "SHALE_TEST_SEED=12345") {
		t.Fatalf("logs %q: want the replay command", r.logs)
	}
}

func TestSeedDefaults(t *testing.T) {
	t.Setenv(SeedEnv, "")
	r := &recorder{TB: t}
	if got := SeedOr(r, 42); got != 42 {
		t.Fatalf("SeedOr = %d, want 42", got)
	}
	a, b := Seed(r), Seed(r)
	if a == b {
		t.Fatalf("two unset seeds are both %d, want random ones", a)
	}
	if !strings.Contains(r.logs[1], fmt.Sprintf("SHALE_TEST_SEED=%d", a)) {
		t.Fatalf("log %q does not carry seed %d", r.logs[1], a)
	}
}

func TestSeedRejectsGarbage(t *testing.T) {
	t.Setenv(SeedEnv, "soon")
	r := &recorder{TB: t}
	Seed(r)
	if len(r.fatal) != 1 || !strings.Contains(r.fatal[0], `SHALE_TEST_SEED="soon"`) {
		t.Fatalf("fatal %q: want a typed complaint about the variable", r.fatal)
	}
}
