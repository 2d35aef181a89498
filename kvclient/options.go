package kvclient

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/security"
)

// Options configure a Client. Zero fields take their defaults.
type Options struct {
	// PD lists the placement driver members' client addresses. Required.
	// Any subset works; the client follows the PD leader.
	PD []string
	// RequestTimeout bounds one operation (all its retries) when the
	// caller's context has no deadline. Default 10s. A scan applies it to
	// each stretch without progress rather than to the whole scan.
	RequestTimeout time.Duration
	// PageRows is the scan page size in rows asked from tablet servers
	// (0: the server's default, 256).
	PageRows int
	// Logger receives debug logs of retries and routing changes. Default:
	// slog.Default().
	Logger *slog.Logger
	// ClientID identifies this client in the RequestID of every write, so
	// that a tablet recognises a resent write and applies it once. Leave it
	// zero: Open then draws a random 128-bit ID. An ID set here is
	// single-use: never give it to two clients, nor to a client opened
	// after another that used it (each client numbers its writes from 1,
	// so within the tablets' retention a second user's writes would be
	// taken for resends of the first's and silently not applied).
	ClientID ClientID
	// TLS, when set, connects to PD and the tablet servers with mutual
	// TLS, presenting its certificate (a client certificate: its common
	// name is the user). nil: plaintext, for clusters run with --insecure.
	TLS *security.Reloader
	// DialOptions are added to every connection to a tablet server (for
	// example an interceptor for tracing, or for fault injection in
	// tests).
	DialOptions []grpc.DialOption
	// Registry, if set, gets the client's metrics (retries by reason,
	// routing cache misses; docs/metrics.md).
	Registry prometheus.Registerer
}

// ClientID is a client's 128-bit identity in request IDs.
type ClientID [16]byte

// IsZero reports whether id is unset.
func (id ClientID) IsZero() bool { return id == ClientID{} }

// EnsureDefaults returns a copy with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate rejects unusable options.
func (o Options) Validate() error {
	if len(o.PD) == 0 {
		return errors.New("kvclient: Options.PD must list at least one placement driver address")
	}
	if o.PageRows < 0 {
		return errors.New("kvclient: Options.PageRows must not be negative")
	}
	return nil
}
