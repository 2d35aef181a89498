package authz

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/proto/pdpb"
)

// Defaults of the auth cache. A change made in PD is enforced by every
// cache within RefreshInterval plus one PD round trip; a cache that has
// not refreshed for StaleAfter refuses user requests. Together:
// RevocationBound.
const (
	DefaultRefreshInterval = time.Second
	DefaultStaleAfter      = 5 * time.Second
	// RevocationBound is the documented bound (docs/security.md) on how
	// long a revoked grant may still be honoured anywhere, with the
	// default intervals. While PD answers, a revoke is seen within one
	// refresh interval plus a round trip; when it does not, the cache
	// stops honouring any grant StaleAfter after its last refresh.
	RevocationBound = DefaultStaleAfter
)

// Fetcher reads the auth state from PD: nil (and no error) when
// knownVersion is current.
type Fetcher interface {
	FetchAuth(ctx context.Context, knownVersion uint64) (*pdpb.AuthState, error)
}

// FetchFunc adapts a function to Fetcher.
type FetchFunc func(ctx context.Context, knownVersion uint64) (*pdpb.AuthState, error)

// FetchAuth calls f.
func (f FetchFunc) FetchAuth(ctx context.Context, v uint64) (*pdpb.AuthState, error) {
	return f(ctx, v)
}

// CacheOptions configure a Cache.
type CacheOptions struct {
	RefreshInterval time.Duration // 0: DefaultRefreshInterval
	StaleAfter      time.Duration // 0: DefaultStaleAfter
	Logger          *slog.Logger
	Now             func() time.Time // tests
}

// EnsureDefaults fills zero fields.
func (o CacheOptions) EnsureDefaults() CacheOptions {
	if o.RefreshInterval == 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate checks the options.
func (o CacheOptions) Validate() error {
	if o.RefreshInterval < 0 || o.StaleAfter < o.RefreshInterval {
		return errors.New("authz: the stale bound must be at least the refresh interval")
	}
	return nil
}

// Cache holds the newest auth state a process has and keeps it fresh.
type Cache struct {
	o   CacheOptions
	f   Fetcher
	cur atomic.Pointer[cached]
}

type cached struct {
	p       *Policy
	fetched time.Time // last successful fetch (or Set)
}

// NewCache returns a cache that has no state yet (Policy fails until the
// first Refresh).
func NewCache(f Fetcher, o CacheOptions) (*Cache, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Cache{o: o, f: f}, nil
}

// Refresh fetches the state if PD has a newer one.
func (c *Cache) Refresh(ctx context.Context) error {
	var known uint64
	cur := c.cur.Load()
	if cur != nil {
		known = cur.p.Version()
	}
	st, err := c.f.FetchAuth(ctx, known)
	if err != nil {
		return err
	}
	now := c.o.Now()
	if st == nil && cur != nil {
		c.cur.Store(&cached{p: cur.p, fetched: now})
		return nil
	}
	c.Set(st)
	return nil
}

// Set installs st unless the cache already has a newer version (PD
// installs what it just wrote, without waiting for the next refresh).
func (c *Cache) Set(st *pdpb.AuthState) {
	next := &cached{p: NewPolicy(st), fetched: c.o.Now()}
	for {
		cur := c.cur.Load()
		if cur != nil && cur.p.Version() > next.p.Version() {
			return
		}
		if c.cur.CompareAndSwap(cur, next) {
			return
		}
	}
}

// Run refreshes every RefreshInterval until ctx or the stopper ends.
func (c *Cache) Run(ctx context.Context, s *stop.Stopper) error {
	return s.Every(ctx, "authz.refresh", c.o.RefreshInterval, func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, c.o.RefreshInterval)
		defer cancel()
		if err := c.Refresh(rctx); err != nil && ctx.Err() == nil {
			c.o.Logger.Warn("authz: cannot refresh users and grants from PD", "err", err)
		}
	}, stop.Immediately())
}

// Policy is the current policy, or Unavailable when there is none yet or
// it is older than StaleAfter (a revoke might have been missed).
func (c *Cache) Policy() (*Policy, error) {
	cur := c.cur.Load()
	if cur == nil {
		return nil, status.Error(codes.Unavailable, "authorization: users and grants not loaded from PD yet")
	}
	if age := c.o.Now().Sub(cur.fetched); age > c.o.StaleAfter {
		return nil, status.Errorf(codes.Unavailable, "authorization: users and grants last refreshed from PD %s ago (more than %s); refusing until PD is reachable", age.Round(time.Millisecond), c.o.StaleAfter)
	}
	return cur.p, nil
}
