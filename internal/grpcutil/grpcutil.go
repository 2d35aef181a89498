package grpcutil

import (
	"context"
	"crypto/x509"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"

	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/internal/security"
)

const (
	// KeepaliveTime is how long a connection may be silent before the
	// client pings it; KeepaliveTimeout is how long the ping may go
	// unanswered before the connection (and the streams on it) fail.
	// Without them a peer that vanished without a RST would block
	// stream.Send forever once HTTP/2 flow control fills up.
	KeepaliveTime    = 30 * time.Second
	KeepaliveTimeout = 10 * time.Second

	// MaxConcurrentStreams bounds the streams (a unary call is one) open
	// at once on one connection; more wait on the client for a free slot
	// (HTTP/2 flow control), they are not refused. A store's peers use two
	// raft streams and a few snapshots; a busy client one per request in
	// flight. 1024, as TiKV's grpc-concurrent-stream default.
	MaxConcurrentStreams = 1024
)

// ServerOptions returns the options every gRPC server is built with:
// mutual TLS from tls (nil: plaintext, for --insecure), bounds on streams
// per connection and on message sizes (the same limit the clients use, so
// nothing one side sends is refused by the other), keepalives both ways,
// and a keepalive policy that accepts the clients' pings (without it,
// gRPC's default policy answers them with GOAWAY "too_many_pings" and the
// connection churns) but closes a client pinging more often than half
// KeepaliveTime.
func ServerOptions(tls *security.Reloader) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             KeepaliveTime / 2,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout}),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(limits.MaxMessageBytes),
		grpc.MaxSendMsgSize(limits.MaxMessageBytes),
	}
	if tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tls.ServerTLS(true, "h2"))))
	}
	return opts
}

// DialOptions returns the options every gRPC client connection is built
// with: TLS with tls's certificate (nil: plaintext), message limits both
// ways, keepalives, and a reconnect backoff that grows to one second
// (gRPC's default grows to two minutes; a store or PD member that comes
// back should be reached again within about a second).
func DialOptions(tls *security.Reloader) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tls != nil {
		creds = &clientCreds{r: tls}
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		limits.DialOption(),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                KeepaliveTime,
			Timeout:             KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: ReconnectBackoff, MinConnectTimeout: time.Second}),
	}
}

// ReconnectBackoff paces reconnection attempts, for a client that sets its
// own connect timeout with grpc.WithConnectParams after DialOptions.
var ReconnectBackoff = backoff.Config{
	BaseDelay:  100 * time.Millisecond,
	Multiplier: 1.6,
	Jitter:     0.2,
	MaxDelay:   time.Second,
}

// PeerCertificate returns the verified certificate of the caller of a
// gRPC handler (ctx is the handler's), or nil on a plaintext connection.
// Its common name is a user's name or a node's (security.IsNodeCert).
func PeerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil
	}
	return security.PeerCertificate(info.State.VerifiedChains)
}

// clientCreds are TLS client credentials that take the Reloader's current
// files on every handshake and verify the server's certificate against
// the host of the address dialed (an IP address too, which SNI omits).
type clientCreds struct {
	r          *security.Reloader
	serverName string // overrides the dialed host when set
}

func (c *clientCreds) tls(authority string) credentials.TransportCredentials {
	name := c.serverName
	if name == "" {
		name = authority
		if h, _, err := net.SplitHostPort(authority); err == nil {
			name = h
		}
	}
	return credentials.NewTLS(c.r.ClientTLS(name))
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.tls(authority).ClientHandshake(ctx, authority, raw)
}

func (c *clientCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c.tls("").ServerHandshake(raw)
}

func (c *clientCreds) Info() credentials.ProtocolInfo { return c.tls(c.serverName).Info() }

func (c *clientCreds) Clone() credentials.TransportCredentials { cp := *c; return &cp }

// OverrideServerName is gRPC's deprecated hook; kept for the interface.
func (c *clientCreds) OverrideServerName(name string) error { c.serverName = name; return nil }
