package node

import (
	"context"
	"log/slog"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// nodeAuthz is the store's authorizer and, in Secure mode, the cache of
// PD's users and grants behind it.
type nodeAuthz struct {
	*authz.Authorizer
	cache *authz.Cache
}

// newNodeAuthz builds the authorizer of o.Authz. Without a PD (a static
// cluster) the auth state is empty: only nodes and root are allowed.
func newNodeAuthz(o Options, pdc *pdclient.Client, s *store.Store, log *slog.Logger) (*nodeAuthz, error) {
	if o.Authz != authz.Secure {
		log.Warn("authorization is off: this tablet server runs insecure (no TLS); anyone who reaches its ports may read and write everything")
		a, err := authz.New(authz.Options{Mode: authz.Insecure})
		return &nodeAuthz{Authorizer: a}, err
	}
	var f authz.Fetcher = authz.FetchFunc(func(context.Context, uint64) (*pdpb.AuthState, error) { return &pdpb.AuthState{}, nil })
	if pdc != nil {
		f = pdc
	}
	cache, err := authz.NewCache(f, authz.CacheOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: cache, Resolver: authz.StoreResolver(s), Logger: log})
	return &nodeAuthz{Authorizer: a, cache: cache}, err
}

// start keeps the cache fresh until stopper stops.
func (n *nodeAuthz) start(ctx context.Context, stopper *stop.Stopper) error {
	if n.cache == nil {
		return nil
	}
	return n.cache.Run(ctx, stopper)
}
