package stop

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const soon = 10 * time.Second

func stopNow(t *testing.T, s *Stopper) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), soon)
	defer cancel()
	require.NoError(t, s.Stop(ctx))
}

func TestStopWaitsForTasks(t *testing.T) {
	s := New()
	release := make(chan struct{})
	var finished atomic.Bool
	require.NoError(t, s.RunAsyncTask(context.Background(), "worker", func(ctx context.Context) {
		<-ctx.Done() // quiescing cancels the task's context...
		<-release    // ...and Stop still waits for the task to return
		finished.Store(true)
	}))
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var stuck *StuckError
	require.ErrorAs(t, s.Stop(short), &stuck, "Stop returned while the task ran")
	require.False(t, finished.Load())
	select {
	case <-s.IsStopped():
		t.Fatal("IsStopped closed while a task runs")
	default:
	}
	close(release)
	stopNow(t, s)
	require.True(t, finished.Load())
	<-s.IsStopped()
}

func TestRunTaskIsWaitedFor(t *testing.T) {
	s := New()
	entered, release := make(chan struct{}), make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		ran <- s.RunTask(context.Background(), "sync", func(context.Context) {
			close(entered)
			<-release
		})
	}()
	<-entered
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Stop(short)
	var stuck *StuckError
	require.ErrorAs(t, err, &stuck)
	require.Equal(t, []string{"sync"}, stuck.Tasks)
	close(release)
	require.NoError(t, <-ran)
	stopNow(t, s)
}

func TestNoTasksAfterQuiesce(t *testing.T) {
	s := New()
	s.Quiesce()
	<-s.ShouldQuiesce()
	ran := false
	f := func(context.Context) { ran = true }
	ctx := context.Background()
	require.ErrorIs(t, s.RunTask(ctx, "late-sync", f), ErrStopping)
	require.ErrorIs(t, s.RunAsyncTask(ctx, "late-async", f), ErrStopping)
	require.ErrorIs(t, s.Every(ctx, "late-every", time.Millisecond, f), ErrStopping)
	err := s.RunAsyncTask(ctx, "late-async", f)
	require.ErrorContains(t, err, `"late-async"`, "the refusal names the task")
	g := s.NewGroup()
	g.Go(ctx, "late-group", f)
	require.ErrorIs(t, g.Wait(), ErrStopping)
	require.False(t, ran)
	stopNow(t, s)
}

func TestStopTimeoutNamesStuckTasks(t *testing.T) {
	s := New()
	release := make(chan struct{})
	stubborn := func(context.Context) { <-release } // ignores its context
	for _, name := range []string{"pd.heartbeat", "grpc.serve", "grpc.serve"} {
		require.NoError(t, s.RunAsyncTask(context.Background(), name, stubborn))
	}
	require.NoError(t, s.RunAsyncTask(context.Background(), "polite", func(ctx context.Context) { <-ctx.Done() }))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Stop(ctx)
	var stuck *StuckError
	require.ErrorAs(t, err, &stuck)
	require.Equal(t, []string{"grpc.serve (×2)", "pd.heartbeat"}, stuck.Tasks)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "pd.heartbeat")
	close(release)
	stopNow(t, s)
}

func TestTaskContext(t *testing.T) {
	s := New()
	type key struct{}
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	got := make(chan any, 1)
	require.NoError(t, s.RunAsyncTask(parent, "child", func(ctx context.Context) {
		<-ctx.Done() // the caller's cancellation reaches the task too
		got <- ctx.Value(key{})
	}))
	cancelParent()
	require.Equal(t, "v", <-got)
	stopNow(t, s)
}

func TestPanicGoesToOnPanic(t *testing.T) {
	got := make(chan *PanicError, 1)
	s := New(OnPanic(func(p *PanicError) { got <- p }))
	require.NoError(t, s.RunAsyncTask(context.Background(), "doomed", func(context.Context) { panic("boom") }))
	p := <-got
	require.Equal(t, "doomed", p.Task)
	require.Equal(t, "boom", p.Value)
	require.Contains(t, string(p.Stack), "TestPanicGoesToOnPanic", "the stack shows where it panicked")
	require.EqualError(t, p, `stop: task "doomed" panicked: boom`)
	stopNow(t, s) // the panicked task counts as finished
}

// TestPanicCrashesByDefault runs a panicking task in a child process: the
// process must die naming the task, not carry on as if nothing happened.
func TestPanicCrashesByDefault(t *testing.T) {
	if os.Getenv("STOP_PANIC_CHILD") == "1" {
		s := New()
		_ = s.RunAsyncTask(context.Background(), "doomed", func(context.Context) { panic("boom") })
		_ = s.Stop(context.Background()) // returns only if the panic was swallowed
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicCrashesByDefault$", "-test.count=1")
	cmd.Env = append(os.Environ(), "STOP_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child did not crash: %s", out)
	require.Contains(t, string(out), `stop: task "doomed" panicked: boom`)
	require.Contains(t, string(out), "TestPanicCrashesByDefault", "the crash shows where it panicked")
}

func TestConcurrentStop(t *testing.T) {
	s := New()
	for range 10 {
		require.NoError(t, s.RunAsyncTask(context.Background(), "worker", func(ctx context.Context) { <-ctx.Done() }))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), soon)
			defer cancel()
			errs <- s.Stop(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	stopNow(t, s) // and once more after it stopped
}

func TestEvery(t *testing.T) {
	s := New()
	var n atomic.Int64
	require.NoError(t, s.Every(context.Background(), "tick", time.Millisecond, func(context.Context) { n.Add(1) }))
	testutils.Eventually(t, "three runs", func() bool { return n.Load() >= 3 })
	stopNow(t, s)
	after := n.Load()
	require.Never(t, func() bool { return n.Load() != after }, 20*time.Millisecond, time.Millisecond, "ran after Stop returned")

	s2 := New()
	require.ErrorContains(t, s2.Every(context.Background(), "bad", 0, func(context.Context) {}), `"bad": interval 0s is not positive`)
	stopNow(t, s2)
}

func TestEveryFirstRun(t *testing.T) {
	s := New()
	defer stopNow(t, s)
	// An hour-long interval: only Immediately can run fn within the test.
	ran := make(chan struct{}, 1)
	require.NoError(t, s.Every(context.Background(), "now", time.Hour, func(context.Context) {
		select {
		case ran <- struct{}{}:
		default:
		}
	}, Immediately()))
	select {
	case <-ran:
	case <-time.After(soon):
		t.Fatal("Immediately did not run fn at once")
	}
}

func TestEveryIntervalFunc(t *testing.T) {
	s := New()
	defer stopNow(t, s)
	var n atomic.Int64
	var interval atomic.Int64
	interval.Store(int64(time.Millisecond))
	require.NoError(t, s.Every(context.Background(), "configurable", time.Millisecond, func(context.Context) { n.Add(1) },
		IntervalFunc(func() time.Duration { return time.Duration(interval.Load()) })))
	testutils.Eventually(t, "three runs", func() bool { return n.Load() >= 3 })
	// Read after each run: at most the run under way when the setting
	// changes comes before the hour-long wait.
	interval.Store(int64(time.Hour))
	m := n.Load()
	require.Never(t, func() bool { return n.Load() > m+1 }, 50*time.Millisecond, time.Millisecond)
}

func TestGroupWaits(t *testing.T) {
	s := New()
	g := s.NewGroup()
	release := make(chan struct{})
	var n atomic.Int64
	for range 5 {
		g.Go(context.Background(), "worker", func(context.Context) {
			<-release
			n.Add(1)
		})
	}
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()
	require.Never(t, func() bool { return len(waited) > 0 }, 20*time.Millisecond, time.Millisecond, "Wait returned before its tasks")
	close(release)
	require.NoError(t, <-waited)
	require.Equal(t, int64(5), n.Load())
	stopNow(t, s)
}

func TestStopWithoutTasks(t *testing.T) {
	s := New()
	stopNow(t, s)
	<-s.IsStopped()
	require.True(t, errors.Is(s.RunTask(context.Background(), "x", func(context.Context) {}), ErrStopping))
}
