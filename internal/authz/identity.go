package authz

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/security"
)

// RootUser is always a cluster admin and cannot be dropped: the identity
// that creates the first users (a client certificate with CN "root", as
// CockroachDB's root).
const RootUser = "root"

// Identity is who is calling: a node (a node certificate) or a user.
type Identity struct {
	User string
	Node bool
}

func (id Identity) String() string {
	if id.Node {
		return "node"
	}
	return fmt.Sprintf("user %q", id.User)
}

// errUnauthenticated is the answer to a caller without a usable identity.
func errUnauthenticated(format string, args ...any) error {
	return status.Errorf(codes.Unauthenticated, "authentication: "+format, args...)
}

// FromTLS is the identity of a TLS peer: its verified certificate's. Only
// verified chains count; a certificate the handshake did not verify (or
// none) is Unauthenticated.
func FromTLS(cs *tls.ConnectionState) (Identity, error) {
	if cs == nil {
		return Identity{}, errUnauthenticated("the connection is not TLS; this server requires a client certificate")
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return Identity{}, errUnauthenticated("no verified client certificate")
	}
	leaf := cs.VerifiedChains[0][0]
	if security.IsNodeCert(leaf) {
		return Identity{Node: true}, nil
	}
	cn := leaf.Subject.CommonName
	if cn == "" || cn == security.NodeCN {
		return Identity{}, errUnauthenticated("client certificate has no usable common name (%q)", cn)
	}
	return Identity{User: cn}, nil
}

// FromGRPC is the identity of a gRPC call's peer.
func FromGRPC(ctx context.Context) (Identity, error) {
	if id, ok := ctx.Value(identityKey{}).(Identity); ok {
		return id, nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return FromTLS(nil)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return FromTLS(nil)
	}
	return FromTLS(&info.State)
}

type identityKey struct{}

// WithIdentity records an identity established otherwise (a password
// login on the Thrift or SQL endpoint) for FromGRPC and IdentityFrom.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity recorded by WithIdentity.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// onBehalfOfKey is the gRPC metadata key naming the user a node-identity
// caller (the Thrift gateway, the SQL endpoint) serves.
const onBehalfOfKey = "shale-on-behalf-of"

// OnBehalfOf marks ctx's outgoing gRPC calls as made for user, so that a
// tablet server charges them to that user's quota (docs/qos.md). Servers
// honour it only from a node certificate: a node is trusted with every
// operation already, and a user's claim is ignored (charged as itself).
func OnBehalfOf(ctx context.Context, user string) context.Context {
	if user == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, onBehalfOfKey, user)
}

// EffectiveUser is the user a call is made for: a user certificate's
// own name, or for a node certificate the user named by OnBehalfOf (""
// when none). Without TLS there is no user.
func EffectiveUser(ctx context.Context) string {
	id, err := FromGRPC(ctx)
	if err != nil {
		return ""
	}
	if !id.Node {
		return id.User
	}
	if v := metadata.ValueFromIncomingContext(ctx, onBehalfOfKey); len(v) == 1 && ValidName("user", v[0]) == nil {
		return v[0]
	}
	return ""
}
