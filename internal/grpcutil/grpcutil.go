package grpcutil

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/shaledb/shale/internal/limits"
)

const (
	// KeepaliveTime is how long a connection may be silent before the
	// client pings it; KeepaliveTimeout is how long the ping may go
	// unanswered before the connection (and the streams on it) fail.
	// Without them a peer that vanished without a RST would block
	// stream.Send forever once HTTP/2 flow control fills up.
	KeepaliveTime    = 30 * time.Second
	KeepaliveTimeout = 10 * time.Second
)

// ServerOptions returns the options every gRPC server is built with: a
// keepalive policy that accepts the clients' pings (without it, gRPC's
// default policy answers them with GOAWAY "too_many_pings" and the
// connection churns) and the receive limit the clients send up to.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             KeepaliveTime / 2,
			PermitWithoutStream: true,
		}),
		grpc.MaxRecvMsgSize(limits.MaxMessageBytes),
	}
}

// DialOptions returns the options every gRPC client connection is built
// with: message limits both ways, keepalives, and a reconnect backoff that
// grows to one second (gRPC's default grows to two minutes; a store or PD
// member that comes back should be reached again within about a second).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
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
