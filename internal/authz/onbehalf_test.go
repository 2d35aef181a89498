package authz

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

// The user a call is charged to: a node may name one, a user may not
// name another, and a malformed name counts as none.
func TestEffectiveUser(t *testing.T) {
	claim := func(id *Identity, user string) context.Context {
		out := OnBehalfOf(context.Background(), user)
		md, _ := metadata.FromOutgoingContext(out)
		ctx := metadata.NewIncomingContext(context.Background(), md)
		if id != nil {
			ctx = WithIdentity(ctx, *id)
		}
		return ctx
	}
	node, alice := &Identity{Node: true}, &Identity{User: "alice"}
	require.Equal(t, "bob", EffectiveUser(claim(node, "bob")), "a gateway names the user it serves")
	require.Equal(t, "", EffectiveUser(claim(node, "")), "a node call for nobody has no user")
	require.Equal(t, "alice", EffectiveUser(claim(alice, "bob")), "a user cannot charge another")
	require.Equal(t, "alice", EffectiveUser(claim(alice, "")))
	require.Equal(t, "", EffectiveUser(claim(nil, "bob")), "no TLS: no user")
	require.Equal(t, "", EffectiveUser(claim(node, "Not A Name!")), "a malformed name is ignored")
	require.Equal(t, "", EffectiveUser(claim(node, "node")), "the node name is not a user")
}
