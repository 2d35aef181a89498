package placementdriver

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/proto/pdpb"
)

// Users, roles and grants: one versioned AuthState in one metadata row,
// changed by compare-and-swap (so concurrent changes on a leader, or
// across a leader change, never lose one another) and served to stores
// and gateways by GetAuth (internal/authz.Cache polls it).

// rowAuth holds the marshalled pdpb.AuthState.
const rowAuth = "auth"

// maxAuthEditAttempts bounds the compare-and-swap retries of one change.
const maxAuthEditAttempts = 10

// readAuth reads the auth state from this member's replica of the
// metadata (as far as it applied): cheap, no raft round trip. On the
// leader it includes every change the leader made.
func (s *Server) readAuth(ctx context.Context) (*pdpb.AuthState, error) {
	v, ok, err := s.meta.localRow(ctx, rowAuth)
	if err != nil || !ok {
		return &pdpb.AuthState{}, err
	}
	return decodeAuth(v)
}

func decodeAuth(v []byte) (*pdpb.AuthState, error) {
	st := &pdpb.AuthState{}
	if err := proto.Unmarshal(v, st); err != nil {
		return nil, fmt.Errorf("pd: corrupt auth state in metadata: %w", err)
	}
	return st, nil
}

// AuthFetcher reads this member's replica of the auth state, for the
// authz.Cache behind PD's own interceptors.
func (s *Server) AuthFetcher() authz.Fetcher {
	return authz.FetchFunc(func(ctx context.Context, known uint64) (*pdpb.AuthState, error) {
		st, err := s.readAuth(ctx)
		if err != nil || st.Version == known && known != 0 {
			return nil, err
		}
		return st, nil
	})
}

// editAuth applies f to the current auth state and writes the result if
// nobody changed the state meanwhile (else it retries on the new state).
func (c *cluster) editAuth(ctx context.Context, f func(*pdpb.AuthState) error) error {
	for range maxAuthEditAttempts {
		old, ok, err := c.meta.get(ctx, rowAuth)
		if err != nil {
			return err
		}
		cur := &pdpb.AuthState{}
		if ok {
			if cur, err = decodeAuth(old); err != nil {
				return err
			}
		} else {
			old = nil
		}
		next, err := authz.Edit(cur, f)
		if err != nil {
			return err
		}
		v, err := proto.Marshal(next)
		if err != nil {
			return err
		}
		won, err := c.meta.cas(ctx, rowAuth, old, v)
		if err != nil {
			return err
		}
		if won {
			c.s.log.Info("auth state changed", "version", next.Version)
			return nil
		}
	}
	return status.Error(codes.Aborted, "the users and grants changed concurrently too often; retry")
}

func (v *service) GetAuth(ctx context.Context, req *pdpb.GetAuthRequest) (*pdpb.GetAuthResponse, error) {
	if _, err := v.leader(req.Header); err != nil {
		return nil, err
	}
	st, err := v.s.readAuth(ctx)
	if err != nil {
		return nil, err
	}
	if st.Version <= req.KnownVersion && req.KnownVersion != 0 {
		return &pdpb.GetAuthResponse{Version: st.Version}, nil
	}
	return &pdpb.GetAuthResponse{State: st, Version: st.Version}, nil
}

// hashOrEmpty hashes a new password ("" stays "": no password login).
func hashOrEmpty(password string) (string, error) {
	if password == "" {
		return "", nil
	}
	h, err := authz.HashPassword(password)
	if err != nil {
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	return h, nil
}

func (v *service) CreateUser(ctx context.Context, req *pdpb.CreateUserRequest) (*pdpb.CreateUserResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	h, err := hashOrEmpty(req.Password)
	if err != nil {
		return nil, err
	}
	return &pdpb.CreateUserResponse{}, c.editAuth(ctx, func(st *pdpb.AuthState) error {
		if err := authz.CreateUser(st, req.Name, h); err != nil {
			return err
		}
		return authz.SetMySQLNative(st, req.Name, authz.MySQLNativeHash(req.Password))
	})
}

func (v *service) DropUser(ctx context.Context, req *pdpb.DropUserRequest) (*pdpb.DropUserResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.DropUserResponse{}, c.editAuth(ctx, func(st *pdpb.AuthState) error { return authz.DropUser(st, req.Name) })
}

func (v *service) SetPassword(ctx context.Context, req *pdpb.SetPasswordRequest) (*pdpb.SetPasswordResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	h, err := hashOrEmpty(req.Password)
	if err != nil {
		return nil, err
	}
	return &pdpb.SetPasswordResponse{}, c.editAuth(ctx, func(st *pdpb.AuthState) error {
		if err := authz.SetPassword(st, req.Name, h); err != nil {
			return err
		}
		return authz.SetMySQLNative(st, req.Name, authz.MySQLNativeHash(req.Password))
	})
}

// resolveGrant fills a grant's table ID from the table's name.
func (c *cluster) resolveGrant(g *pdpb.AuthGrant, table string) (*pdpb.AuthGrant, error) {
	if g == nil {
		return nil, nil
	}
	g = proto.Clone(g).(*pdpb.AuthGrant)
	if table != "" {
		t, err := c.table(table)
		if err != nil {
			return nil, err
		}
		g.On = &pdpb.AuthGrant_TableId{TableId: t.TableId}
		g.TableName = t.Name
	}
	return g, nil
}

// grantOrMember checks that exactly one of grant and member is given.
func grantOrMember(g *pdpb.AuthGrant, member string) error {
	if (g == nil) == (member == "") {
		return status.Error(codes.InvalidArgument, "give either a permission or a member user, not both or neither")
	}
	return nil
}

func (v *service) Grant(ctx context.Context, req *pdpb.GrantRequest) (*pdpb.GrantResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if err := grantOrMember(req.Grant, req.Member); err != nil {
		return nil, err
	}
	g, err := c.resolveGrant(req.Grant, req.Table)
	if err != nil {
		return nil, err
	}
	return &pdpb.GrantResponse{}, c.editAuth(ctx, func(st *pdpb.AuthState) error {
		if g == nil {
			return authz.AddMember(st, req.Role, req.Member)
		}
		return authz.GrantPermission(st, req.Role, g)
	})
}

func (v *service) Revoke(ctx context.Context, req *pdpb.RevokeRequest) (*pdpb.RevokeResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if err := grantOrMember(req.Grant, req.Member); err != nil {
		return nil, err
	}
	g, err := c.resolveGrant(req.Grant, req.Table)
	if err != nil {
		return nil, err
	}
	return &pdpb.RevokeResponse{}, c.editAuth(ctx, func(st *pdpb.AuthState) error {
		if g == nil {
			return authz.RemoveMember(st, req.Role, req.Member)
		}
		return authz.RevokePermission(st, req.Role, g)
	})
}

func (v *service) ListAuth(ctx context.Context, req *pdpb.ListAuthRequest) (*pdpb.ListAuthResponse, error) {
	if _, err := v.leader(req.Header); err != nil {
		return nil, err
	}
	st, err := v.s.readAuth(ctx)
	if err != nil {
		return nil, err
	}
	red, withPassword := authz.Redacted(st)
	return &pdpb.ListAuthResponse{State: red, UsersWithPassword: withPassword}, nil
}

// Resolver maps table names (from the leader's catalog) for PD's
// authorizer; on a follower it answers "not the leader", which sends the
// client to the leader as the handler would.
func (s *Server) Resolver() authz.Resolver { return pdResolver{s} }

type pdResolver struct{ s *Server }

func (r pdResolver) TableID(name string) (uint64, bool, error) {
	c, err := r.s.leader()
	if err != nil {
		return 0, false, err
	}
	t, err := c.table(name)
	if err != nil {
		return 0, false, nil
	}
	return t.TableId, true, nil
}

func (r pdResolver) TabletTables(uint64) ([]uint64, bool, error) { return nil, false, nil }

// newAuthorizer returns the authorizer of this member's servers and, in
// Secure mode, the cache behind it (refreshed from this member's replica
// by startAuthz).
func (s *Server) newAuthorizer() (*authz.Authorizer, *authz.Cache, error) {
	if s.opts.Authz != authz.Secure {
		s.log.Warn("authorization is off: this PD runs insecure (no TLS); anyone who reaches its ports may do anything")
		a, err := authz.New(authz.Options{Mode: authz.Insecure})
		return a, nil, err
	}
	cache, err := authz.NewCache(s.AuthFetcher(), authz.CacheOptions{Logger: s.log})
	if err != nil {
		return nil, nil, err
	}
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: cache, Resolver: s.Resolver(), Logger: s.log})
	return a, cache, err
}

// startAuthz keeps the cache fresh until the member stops.
func (s *Server) startAuthz(ctx context.Context, cache *authz.Cache) error {
	if cache == nil {
		return nil
	}
	return cache.Run(ctx, s.stopper)
}
