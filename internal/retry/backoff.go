package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Exponential is the exponential backoff with ±50% jitter: each Wait sleeps
// about twice as long as the one before, up to Max. Not safe for
// concurrent use: one per retry loop.
type Exponential struct {
	b backoff.ExponentialBackOff
}

// NewExponential starts at initial and grows to max.
func NewExponential(initial, max time.Duration) *Exponential {
	return &Exponential{b: backoff.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         max,
	}}
}

// Next returns the next delay and advances the backoff.
func (b *Exponential) Next() time.Duration { return b.b.NextBackOff() }

// Reset makes the next delay the initial one again (after progress).
func (b *Exponential) Reset() { b.b.Reset() }

// Wait sleeps the next delay, at least atLeast (a server's RetryAfter),
// or until ctx ends, returning ctx.Err() then.
func (b *Exponential) Wait(ctx context.Context, atLeast time.Duration) error {
	return Sleep(ctx, max(b.Next(), atLeast))
}

// Sleep waits d or until ctx ends, returning ctx.Err() then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
