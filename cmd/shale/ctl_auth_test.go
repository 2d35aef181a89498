package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// startRealPD runs a one-member PD in this process.
func startRealPD(t *testing.T) string {
	client, peer := proctest.FreeAddr(t), proctest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { //stop:short-lived the PD of this test, joined at cleanup
		done <- placementdriver.Run(ctx, placementdriver.Options{Name: "pd1", DataDir: filepath.Join(t.TempDir(), "pd"), ClientAddr: client, PeerAddr: peer, TickInterval: 20 * time.Millisecond})
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	cl, err := pdclient.New([]string{client}, 0)
	require.NoError(t, err)
	defer cl.Close()
	testutils.SucceedsSoon(t, func() error {
		_, err := cl.ListAuth(context.Background(), &pdpb.ListAuthRequest{})
		return err
	})
	return client
}

func authState(t *testing.T, addr string) *pdpb.AuthState {
	cl, err := pdclient.New([]string{addr}, 0)
	require.NoError(t, err)
	defer cl.Close()
	resp, err := cl.GetAuth(context.Background(), &pdpb.GetAuthRequest{})
	require.NoError(t, err)
	return resp.State
}

func TestCtlUsersAndRoles(t *testing.T) {
	addr := startRealPD(t)
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		prev := ctlStdin
		ctlStdin = strings.NewReader(stdin)
		defer func() { ctlStdin = prev }()
		out, stderr, err := runCtlCmd(t, addr, args...)
		if err != nil {
			return stderr, err
		}
		return out, nil
	}
	out, err := run("s3cret pass\n", "user", "add", "alice", "--password-stdin")
	require.NoError(t, err, out)
	require.Equal(t, "user alice created\n", out)
	_, err = run("", "user", "add", "bob")
	require.NoError(t, err)
	out, err = run("", "user", "add", "alice")
	require.Error(t, err)
	require.Contains(t, err.Error(), "already exists")
	_, err = run("", "user", "passwd", "bob")
	require.ErrorContains(t, err, "no password on standard input")

	_, err = run("", "role", "grant", "analysts", "read", "prefix:app/")
	require.NoError(t, err)
	_, err = run("", "role", "grant", "analysts", "--member", "alice")
	require.NoError(t, err)
	_, err = run("", "role", "grant", "ops", "admin", "cluster")
	require.NoError(t, err)
	_, err = run("", "role", "grant", "ops", "read", "table:nosuch")
	require.ErrorContains(t, err, "does not exist")
	_, err = run("", "role", "grant", "ops", "read", "cluster")
	require.ErrorContains(t, err, "admin")
	_, err = run("", "role", "grant", "ops", "execute", "cluster")
	require.ErrorContains(t, err, "PERMISSION")

	out, err = run("", "role", "show")
	require.NoError(t, err)
	require.Equal(t, []string{
		"ROLE      GRANTS            MEMBERS",
		"analysts  read prefix:app/  alice",
		"ops       admin cluster     -",
	}, lines(out))
	var views []roleView
	ctlJSON(t, addr, &views, "role", "show", "analysts")
	require.Equal(t, []roleView{{Role: "analysts", Grants: []string{"read prefix:app/"}, Members: []string{"alice"}}}, views)

	// The password is stored hashed; passwd replaces it.
	st := authState(t, addr)
	hash := authz.NewPolicy(st).User("alice").PasswordHash
	require.NoError(t, authz.CheckPassword(hash, "s3cret pass"))
	_, err = run("n3w pass\n", "user", "passwd", "alice")
	require.NoError(t, err)
	hash = authz.NewPolicy(authState(t, addr)).User("alice").PasswordHash
	require.NoError(t, authz.CheckPassword(hash, "n3w pass"))

	_, err = run("", "role", "revoke", "analysts", "--member", "alice")
	require.NoError(t, err)
	_, err = run("", "role", "revoke", "analysts", "all", "prefix:app/")
	require.NoError(t, err)
	_, err = run("", "user", "del", "alice")
	require.NoError(t, err)
	ctlJSON(t, addr, &views, "role", "show", "analysts")
	require.Equal(t, []roleView{{Role: "analysts", Grants: []string{}, Members: []string{}}}, views)
	require.Nil(t, authz.NewPolicy(authState(t, addr)).User("alice"))
}
