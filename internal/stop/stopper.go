package stop

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
)

// ErrStopping is returned (wrapped, naming the task) when a task is started
// on a Stopper that is quiescing.
var ErrStopping = errors.New("stop: shutting down, no new tasks accepted")

// StuckError is Stop's answer when its context ends before every task
// finished.
type StuckError struct {
	// Tasks names the tasks still running, sorted; a name started more
	// than once appears as "name (×N)".
	Tasks []string
	// Cause is why Stop gave up waiting (its context's cause).
	Cause error
}

func (e *StuckError) Error() string {
	return fmt.Sprintf("stop: %d task(s) still running after shutdown began (%v): %s",
		len(e.Tasks), e.Cause, strings.Join(e.Tasks, ", "))
}

func (e *StuckError) Unwrap() error { return e.Cause }

// PanicError is what an async task panicked with.
type PanicError struct {
	Task  string
	Value any
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("stop: task %q panicked: %v", e.Task, e.Value)
}

// Option configures a Stopper.
type Option func(*Stopper)

// OnPanic makes f receive the panics of async tasks instead of the
// default, which re-panics (crashing the process with the task's name).
// The task counts as finished once f returns.
func OnPanic(f func(*PanicError)) Option {
	return func(s *Stopper) { s.onPanic = f }
}

// Stopper owns a set of tasks; see the package doc.
type Stopper struct {
	onPanic func(*PanicError)
	// quiesceCtx is cancelled when quiescing starts; every task's
	// context is cancelled with it.
	quiesceCtx context.Context
	quiesce    context.CancelFunc

	mu        sync.Mutex
	quiescing bool
	running   map[string]int // task name → how many run
	n         int            // tasks running
	stopped   chan struct{}  // closed once quiescing with no task left
}

// New returns a Stopper that accepts tasks.
func New(opts ...Option) *Stopper {
	s := &Stopper{running: map[string]int{}, stopped: make(chan struct{})}
	s.quiesceCtx, s.quiesce = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	return s
}

// RunAsyncTask runs f in a new goroutine as the task name. f's context is
// ctx, also cancelled when the Stopper quiesces. It returns ErrStopping
// (wrapped) without running f once the Stopper quiesces.
func (s *Stopper) RunAsyncTask(ctx context.Context, name string, f func(context.Context)) error {
	if err := s.begin(name); err != nil {
		return err
	}
	go s.run(ctx, name, f, true)
	return nil
}

// RunTask runs f in the caller's goroutine as the task name, so that Stop
// waits for it; for short work that must not start once shutdown began.
// It returns ErrStopping (wrapped) without running f once the Stopper
// quiesces. A panic in f propagates to the caller.
func (s *Stopper) RunTask(ctx context.Context, name string, f func(context.Context)) error {
	if err := s.begin(name); err != nil {
		return err
	}
	s.run(ctx, name, f, false)
	return nil
}

// ShouldQuiesce is closed when shutdown begins, for code outside a task.
func (s *Stopper) ShouldQuiesce() <-chan struct{} { return s.quiesceCtx.Done() }

// IsStopped is closed once shutdown began and every task has finished.
func (s *Stopper) IsStopped() <-chan struct{} { return s.stopped }

// Quiesce begins shutdown without waiting: new tasks are refused,
// ShouldQuiesce closes and task contexts are cancelled. Repeated calls
// are no-ops.
func (s *Stopper) Quiesce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quiescing {
		return
	}
	s.quiescing = true
	s.quiesce()
	if s.n == 0 {
		close(s.stopped)
	}
}

// Stop quiesces and waits for every task. If ctx ends first it returns a
// *StuckError naming the tasks still running (they keep running). Stop may
// be called concurrently and repeatedly; each call waits.
func (s *Stopper) Stop(ctx context.Context) error {
	s.Quiesce()
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-s.stopped: // finished while ctx ended: not stuck
		return nil
	default:
	}
	return &StuckError{Tasks: s.runningTasks(), Cause: context.Cause(ctx)}
}

func (s *Stopper) begin(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quiescing {
		return fmt.Errorf("%w (task %q)", ErrStopping, name)
	}
	s.running[name]++
	s.n++
	return nil
}

func (s *Stopper) end(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[name]--; s.running[name] == 0 {
		delete(s.running, name)
	}
	s.n--
	if s.n == 0 && s.quiescing {
		close(s.stopped)
	}
}

func (s *Stopper) run(ctx context.Context, name string, f func(context.Context), async bool) {
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.quiesceCtx, cancel)
	defer func() {
		unhook()
		cancel()
		s.end(name)
	}()
	if async {
		defer s.recoverPanic(name)
	}
	f(ctx)
}

// recoverPanic hands a task's panic to OnPanic, or re-panics with the
// task's name (the printed stack still shows where it panicked).
func (s *Stopper) recoverPanic(name string) {
	v := recover()
	if v == nil {
		return
	}
	pe := &PanicError{Task: name, Value: v, Stack: debug.Stack()}
	if s.onPanic == nil {
		// A task's panic is already a broken invariant (I/O errors and
		// bad input are typed errors); the stopper only names the task,
		// it does not turn a crash into silent progress.
		panic(pe)
	}
	s.onPanic(pe)
}

func (s *Stopper) runningTasks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, n := range s.running {
		if n > 1 {
			name = fmt.Sprintf("%s (×%d)", name, n)
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
