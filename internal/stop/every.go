package stop

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// EveryOption adjusts Every.
type EveryOption func(*every)

type every struct {
	now      bool
	interval func() time.Duration
}

// Immediately runs fn once at the start instead of after one interval.
func Immediately() EveryOption { return func(e *every) { e.now = true } }

// IntervalFunc re-reads the interval after every run (a setting changed at
// run time); a result <= 0 keeps the previous interval.
func IntervalFunc(f func() time.Duration) EveryOption {
	return func(e *every) { e.interval = f }
}

// Every runs fn every interval as the async task name until ctx ends or
// the Stopper quiesces (see Periodically).
func (s *Stopper) Every(ctx context.Context, name string, interval time.Duration, fn func(context.Context), opts ...EveryOption) error {
	if interval <= 0 {
		return fmt.Errorf("stop: task %q: interval %v is not positive", name, interval)
	}
	return s.RunAsyncTask(ctx, name, func(ctx context.Context) { Periodically(ctx, interval, fn, opts...) })
}

// Periodically runs fn every interval in the caller's goroutine until ctx
// ends; inside a task, for a loop that its starter must also wait for
// (a Group's). Runs do not overlap; a run longer than the interval is
// followed at once by the next, as with a time.Ticker. It panics if
// interval is not positive.
func Periodically(ctx context.Context, interval time.Duration, fn func(context.Context), opts ...EveryOption) {
	var e every
	for _, o := range opts {
		o(&e)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	if e.now {
		fn(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return
		}
		fn(ctx)
		if e.interval != nil {
			if d := e.interval(); d > 0 && d != interval {
				interval = d
				t.Reset(d)
			}
		}
	}
}

// Group is a set of async tasks that the function starting them waits
// for (fan out, join), owned by a Stopper like any other task.
type Group struct {
	s   *Stopper
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

// NewGroup returns an empty Group of s's tasks.
func (s *Stopper) NewGroup() *Group { return &Group{s: s} }

// Go runs f as the async task name. If the Stopper refuses it, f does not
// run and Wait reports the refusal.
func (g *Group) Go(ctx context.Context, name string, f func(context.Context)) {
	g.wg.Add(1)
	err := g.s.RunAsyncTask(ctx, name, func(ctx context.Context) {
		defer g.wg.Done()
		f(ctx)
	})
	if err != nil {
		g.wg.Done()
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.err == nil {
			g.err = err
		}
	}
}

// Wait waits for the Group's tasks. It returns ErrStopping (wrapped) if
// any of them was refused, nil otherwise.
func (g *Group) Wait() error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
