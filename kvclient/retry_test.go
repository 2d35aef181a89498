package kvclient

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
)

// A write whose first attempt reached a store and got no verdict (the
// connection broke) may have been applied. If later attempts find no
// store before the deadline, the caller must hear "result unknown", not
// a plain deadline error it would read as "not written" (found by the
// nemesis suite: docs/reliability.md, finding 2).
func TestGiveUpAfterPossiblyAppliedWriteIsAmbiguous(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")

	ctx, cancel := context.WithCancel(context.Background())
	r := c.newRetrier(nil, true, "mutate row")
	require.NoError(t, r.handle(ctx, loc, 1, status.Error(codes.Unavailable, "connection reset")))
	cancel()
	err := r.handle(ctx, loc, 2, retry.ErrNotSent)
	require.ErrorIs(t, err, ErrAmbiguous)

	// Attempts that all ended with a verdict or never left: not applied.
	ctx, cancel = context.WithCancel(context.Background())
	r = c.newRetrier(nil, true, "mutate row")
	require.NoError(t, r.handle(ctx, loc, 1, errs.NotLeader(7, 0, "")))
	cancel()
	err = r.handle(ctx, loc, 2, retry.ErrNotSent)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrAmbiguous), "got %v", err)

	// Reads are never ambiguous.
	ctx, cancel = context.WithCancel(context.Background())
	r = c.newRetrier(nil, false, "get")
	require.NoError(t, r.handle(ctx, loc, 1, status.Error(codes.Unavailable, "connection reset")))
	cancel()
	require.False(t, errors.Is(r.handle(ctx, loc, 2, retry.ErrNotSent), ErrAmbiguous))
}

// A write that may have applied is not resent once its request ID may
// have been forgotten by the tablets: the caller hears ErrAmbiguous even
// though its deadline is far away.
func TestNoResendAfterResendWindow(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")
	ctx := context.Background()

	r := c.newRetrier(nil, true, "mutate row")
	require.NoError(t, r.handle(ctx, loc, 1, status.Error(codes.Unavailable, "connection reset")), "a fresh write is resent")
	r.started = time.Now().Add(-resendWindow - time.Second)
	err := r.handle(ctx, loc, 2, status.Error(codes.Unknown, "result unknown"))
	require.ErrorIs(t, err, ErrAmbiguous)

	// Attempts refused with a verdict (nothing applied) go on.
	r = c.newRetrier(nil, true, "mutate row")
	r.started = time.Now().Add(-resendWindow - time.Second)
	require.NoError(t, r.handle(ctx, loc, 1, errs.NotLeader(7, 0, "")))
}

// A store that refuses a write for lack of disk space is backed off from
// (at least its retry_after) and retried; refused until the deadline, the
// caller hears ErrDiskFull, not a bare deadline nor "result unknown":
// nothing was applied.
func TestDiskFullBacksOffThenErrDiskFull(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")

	require.Equal(t, retry.Backoff, retry.Classify(errs.DiskFull(1, 10, 50)))
	r := c.newRetrier(nil, true, "mutate row")
	start := time.Now()
	require.NoError(t, r.handle(context.Background(), loc, 1, errs.DiskFull(1, 10, 50)))
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "retry_after_ms is honoured")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.handle(ctx, loc, 1, errs.DiskFull(1, 10, 50))
	require.ErrorIs(t, err, ErrDiskFull)
	require.False(t, errors.Is(err, ErrAmbiguous), "got %v", err)

	// A final (not retried) DiskFull answer maps to the same sentinel.
	require.ErrorIs(t, userError(errs.DiskFull(1, 10, 50), true, "put"), ErrDiskFull)
}

// A quota's refusal is waited out by its retry_after (plus at most half of
// it in jitter), however many came before (no exponential growth); a wait
// past the deadline fails at once with ErrQuotaExceeded, or ErrAmbiguous
// for a write an earlier attempt may have applied.
func TestQuotaExceededWaitsRetryAfter(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")
	refused := errs.QuotaExceeded("table", "t", "write-rps", 40*time.Millisecond)

	r := c.newRetrier(nil, true, "mutate row")
	for i := range 8 {
		start := time.Now()
		require.NoError(t, r.handle(context.Background(), loc, 1, refused))
		took := time.Since(start)
		require.GreaterOrEqual(t, took, 40*time.Millisecond, "attempt %d", i)
		require.Less(t, took, 500*time.Millisecond, "attempt %d: no exponential backoff", i)
	}

	long := errs.QuotaExceeded("table", "t", "write-rps", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := r.handle(ctx, loc, 1, long)
	require.ErrorIs(t, err, ErrQuotaExceeded)
	require.Less(t, time.Since(start), time.Second, "no wait for a refusal the deadline cannot cover")
	wait, ok := QuotaRetryAfter(err)
	require.True(t, ok)
	require.Equal(t, 5*time.Second, wait)
	require.ErrorIs(t, userError(refused, false, "get"), ErrQuotaExceeded)

	r = c.newRetrier(nil, true, "mutate row")
	require.NoError(t, r.handle(context.Background(), loc, 1, status.Error(codes.Unavailable, "connection reset")))
	require.ErrorIs(t, r.handle(ctx, loc, 2, long), ErrAmbiguous)
}

// An overloaded store's ServerBusy is backed off from, at least its
// retry-after; a hint longer than the time left ends the operation at
// once with ErrServerBusy (not a bare deadline, not "result unknown"),
// and so does a deadline reached while the store keeps refusing.
func TestServerBusyHonoursRetryAfter(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")

	r := c.newRetrier(nil, true, "mutate row")
	start := time.Now()
	require.NoError(t, r.handle(context.Background(), loc, 1, errs.ServerBusy("overloaded", 60)))
	require.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond, "retry_after_ms is honoured")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	err := r.handle(ctx, loc, 1, errs.ServerBusy("overloaded", 5000))
	require.ErrorIs(t, err, ErrServerBusy)
	require.False(t, errors.Is(err, ErrAmbiguous), "got %v", err)
	require.Less(t, time.Since(start), 500*time.Millisecond, "no sleeping into the deadline")
	require.Equal(t, 5*time.Second, RetryAfter(err))

	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	require.ErrorIs(t, r.handle(done, loc, 1, errs.ServerBusy("overloaded", 10)), ErrServerBusy)

	// A write that may have applied stays ambiguous.
	r = c.newRetrier(nil, true, "mutate row")
	require.NoError(t, r.handle(context.Background(), loc, 1, status.Error(codes.Unavailable, "connection reset")))
	require.ErrorIs(t, r.handle(ctx, loc, 2, errs.ServerBusy("overloaded", 5000)), ErrAmbiguous)
}

// A write whose earlier attempt may have applied ends ErrAmbiguous even
// when the last attempt was refused outright: a resend can be refused
// before its request ID is looked up (its timestamp checked against a new
// leader's clock) although the first attempt applied. The kvnemesis soak
// (seed 10889430638702782879) read such a write back after the client had
// reported it refused.
func TestRefusalAfterPossibleApplyIsAmbiguous(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")
	refused := errs.InvalidArgument("timestamp %d is more than the maximum clock offset ahead", 42)

	r := c.newRetrier(nil, true, "mutate row")
	require.ErrorIs(t, r.handle(context.Background(), loc, 1, refused), ErrInvalidArgument, "a first refusal is final")

	r = c.newRetrier(nil, true, "mutate row")
	require.NoError(t, r.handle(context.Background(), loc, 1, status.Error(codes.Unavailable, "connection reset")))
	err := r.handle(context.Background(), loc, 2, refused)
	require.ErrorIs(t, err, ErrAmbiguous)
	require.ErrorContains(t, err, "maximum clock offset")

	r = c.newRetrier(nil, false, "get")
	require.NoError(t, r.handle(context.Background(), loc, 1, status.Error(codes.Unavailable, "connection reset")))
	require.ErrorIs(t, r.handle(context.Background(), loc, 2, refused), ErrInvalidArgument, "a read is never ambiguous")
}
