// Package stop owns the goroutines of a server component, after
// CockroachDB's pkg/util/stop: every long-lived goroutine runs as a named
// task of a Stopper, observes quiescing through its context (or
// ShouldQuiesce), and is waited for by Stop.
//
// A component makes one Stopper and starts its goroutines with
// RunAsyncTask (or Every, for periodic work, or a Group, for workers a
// function fans out and joins). Shutting down is Stop(ctx): it refuses new
// tasks (ErrStopping), closes ShouldQuiesce, cancels every task's context
// and waits for the tasks. If ctx ends first, Stop returns a *StuckError
// naming the tasks still running, so a hung shutdown says what hangs.
//
// A component whose parts must stop in order (a tablet server stops its
// placement-driver loop before it closes its store) uses one Stopper per
// stage and stops them in that order.
//
// A panic in an async task is re-raised as a *PanicError naming the task,
// which crashes the process as any goroutine's panic does; OnPanic
// replaces that (tests, or a server that reports and exits its own way).
//
// Outside this package the named server packages start no goroutine with a
// raw go statement; lint_test.go checks it. A goroutine that is joined at
// once (such as one that waits for a blocking call bounded by a timer) may
// stay, marked by a comment on its line or the line above:
//
//	//stop:short-lived <why it ends promptly>
package stop
