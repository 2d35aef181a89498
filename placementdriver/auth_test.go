package placementdriver_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/pdpb"
)

func prefixGrant(p pdpb.AuthPermission, prefix string) *pdpb.AuthGrant {
	return &pdpb.AuthGrant{Permission: p, On: &pdpb.AuthGrant_KeyPrefix{KeyPrefix: []byte(prefix)}}
}

// rawRead is the check a store makes for a read of one raw key.
func rawRead(a *authz.Authorizer, user, key string) error {
	return a.Check(authz.Identity{User: user}, authz.DataRead, []authz.Target{{TableID: authz.RawTableID, Spans: []authz.Span{{Start: []byte(key)}}}})
}

// Users, roles and grants live in PD; a store's cache picks them up, and a
// revoke is enforced within authz.RevocationBound; with PD gone, the
// cache refuses users within the same bound.
func TestAuthStateAndRevocationBound(t *testing.T) {
	pd := startPD(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := pd.client()
	pd.leader(ctx, cl)

	_, err := cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: "alice", Password: "s3cret pass"})
	require.NoError(t, err)
	_, err = cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: "alice"})
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	_, err = cl.Grant(ctx, &pdpb.GrantRequest{Role: "readers", Grant: prefixGrant(pdpb.AuthPermission_READ, "app/")})
	require.NoError(t, err)
	_, err = cl.Grant(ctx, &pdpb.GrantRequest{Role: "readers", Member: "alice"})
	require.NoError(t, err)
	_, err = cl.Grant(ctx, &pdpb.GrantRequest{Role: "readers", Grant: &pdpb.AuthGrant{Permission: pdpb.AuthPermission_READ}, Table: "no-such-table"})
	require.Equal(t, codes.NotFound, status.Code(err))

	// ListAuth shows no hash; GetAuth (nodes only) has it, salted argon2id.
	list, err := cl.ListAuth(ctx, &pdpb.ListAuthRequest{})
	require.NoError(t, err)
	require.Equal(t, []string{"alice"}, list.UsersWithPassword)
	for _, u := range list.State.Users {
		require.Empty(t, u.PasswordHash)
	}
	full, err := cl.GetAuth(ctx, &pdpb.GetAuthRequest{})
	require.NoError(t, err)
	require.NoError(t, authz.CheckPassword(full.State.Users[0].PasswordHash, "s3cret pass"))
	unchanged, err := cl.GetAuth(ctx, &pdpb.GetAuthRequest{KnownVersion: full.Version})
	require.NoError(t, err)
	require.Nil(t, unchanged.State, "nothing to send when the version is current")

	// A store's view: a cache polling PD, behind an authorizer.
	cache, err := authz.NewCache(cl, authz.CacheOptions{})
	require.NoError(t, err)
	stopper := stop.New()
	defer func() { stopper.Quiesce(); _ = stopper.Stop(context.Background()) }()
	require.NoError(t, cache.Run(ctx, stopper))
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: cache})
	require.NoError(t, err)
	testutils.SucceedsSoon(t, func() error { return rawRead(a, "alice", "app/1") })
	id, err := a.Authenticate("alice", "s3cret pass")
	require.NoError(t, err)
	require.Equal(t, "alice", id.User)
	require.Equal(t, codes.PermissionDenied, status.Code(rawRead(a, "alice", "other/1")))

	// Revoke: enforced within the bound.
	_, err = cl.Revoke(ctx, &pdpb.RevokeRequest{Role: "readers", Grant: prefixGrant(0, "app/")})
	require.NoError(t, err)
	revoked := time.Now()
	testutils.SucceedsWithin(t, authz.RevocationBound, func() error {
		if err := rawRead(a, "alice", "app/1"); status.Code(err) != codes.PermissionDenied {
			return errorf("alice still reads app/1 %s after the revoke: %v", time.Since(revoked), err)
		}
		return nil
	})
	t.Logf("revoke enforced after %s (bound %s)", time.Since(revoked).Round(time.Millisecond), authz.RevocationBound)

	// PD unreachable: a grant made just before is refused within the bound
	// (the cache cannot know whether it was revoked since).
	_, err = cl.Grant(ctx, &pdpb.GrantRequest{Role: "readers", Grant: prefixGrant(pdpb.AuthPermission_READ, "app/")})
	require.NoError(t, err)
	testutils.SucceedsSoon(t, func() error { return rawRead(a, "alice", "app/1") })
	for name := range pd.cluster {
		pd.stop(name)
	}
	stopped := time.Now()
	testutils.SucceedsWithin(t, authz.RevocationBound, func() error {
		if err := rawRead(a, "alice", "app/1"); status.Code(err) != codes.Unavailable {
			return errorf("alice still reads %s after PD stopped: %v", time.Since(stopped), err)
		}
		return nil
	})
	require.NoError(t, a.Check(authz.Identity{Node: true}, authz.Internal, nil), "nodes do not depend on PD's grants")
}

func errorf(format string, args ...any) error { return status.Errorf(codes.Unknown, format, args...) }

// A member in Secure mode refuses a caller without a certificate on every
// port before doing anything (this one serves no TLS at all), except the
// public health routes.
func TestSecurePDRefusesAnonymousCallers(t *testing.T) {
	httpAddr := freeAddr(t)
	pd := startPD(t, 1, func(o *placementdriver.Options) { o.Authz = authz.Secure; o.HTTPAddr = httpAddr })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := pd.client()
	testutils.SucceedsSoon(t, func() error {
		_, err := cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: "mallory"})
		if status.Code(err) != codes.Unauthenticated {
			return errorf("CreateUser without a certificate: %v", err)
		}
		return nil
	})
	_, err := cl.GetMembers(ctx)
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	// /healthz answers 503 until the member leads (it reports quorum and
	// leadership), so the routes are checked once it does.
	testutils.SucceedsSoon(t, func() error {
		for path, want := range map[string]int{"/healthz": 200, "/pd/api/v1/health": 200, "/pd/api/v1/stores": 401, "/pd/api/v1/config": 401} {
			resp, err := http.Get("http://" + httpAddr + path)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				return errorf("%s without a certificate: status %d, want %d", path, resp.StatusCode, want)
			}
		}
		return nil
	})
}

// Concurrent changes never lose one another (compare-and-swap on one
// row), and the state survives a PD leader change with its version.
func TestAuthStateConcurrentChangesAndFailover(t *testing.T) {
	pd := startPD(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := pd.client()
	pd.leader(ctx, cl)

	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() { //stop:short-lived joined through errs below
			_, err := cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: fmt.Sprintf("user%d", i)})
			errs <- err
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	before, err := cl.GetAuth(ctx, &pdpb.GetAuthRequest{})
	require.NoError(t, err)
	require.Len(t, before.State.Users, n, "every concurrent change is kept")
	require.Equal(t, uint64(n), before.Version)

	old := pd.leader(ctx, cl)
	pd.stop(old)
	testutils.SucceedsSoon(t, func() error {
		if next := pd.leader(ctx, cl); next == old {
			return errorf("leader still %s", old)
		}
		return nil
	})
	_, err = cl.Grant(ctx, &pdpb.GrantRequest{Role: "user0", Grant: prefixGrant(pdpb.AuthPermission_WRITE, "x/")})
	require.NoError(t, err)
	after, err := cl.GetAuth(ctx, &pdpb.GetAuthRequest{})
	require.NoError(t, err)
	require.Len(t, after.State.Users, n)
	require.Equal(t, before.Version+1, after.Version)
}
