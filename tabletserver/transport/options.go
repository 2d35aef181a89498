package transport

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/transportpb"
)

// Defaults for zero-valued Options fields.
const (
	// DefaultSnapshotBytesPerSec is the outgoing snapshot rate limit.
	DefaultSnapshotBytesPerSec = 32 << 20
	// DefaultSnapshotChunkBytes is the uncompressed size of a snapshot chunk.
	DefaultSnapshotChunkBytes = 256 << 10
	// MaxSnapshotChunkBytes caps SnapshotChunkBytes so that a compressed
	// chunk stays well below gRPC's default 4 MiB message limit.
	MaxSnapshotChunkBytes = 2 << 20
	// DefaultSendQueueLen is the number of raft messages queued per
	// destination store.
	DefaultSendQueueLen = 10000
	// DefaultDialTimeout bounds connecting and opening a stream.
	DefaultDialTimeout = 3 * time.Second
)

// Options configures a Transport. The zero value of every field means "use
// the default".
type Options struct {
	// StoreID is the local store; it is stamped on every outgoing batch as
	// from_store and passed to the testing filters.
	StoreID uint64
	// Resolver maps a store ID to a dialable "host:port". It is called each
	// time a stream to the store is (re)opened and for each snapshot, so a
	// store that comes back on a new address is picked up after one failure.
	// Required.
	Resolver Resolver
	// SnapshotBytesPerSec limits the outgoing snapshot bandwidth of the whole
	// transport, counted in compressed bytes. 0 means
	// DefaultSnapshotBytesPerSec (32 MiB/s); a negative value disables the
	// limit.
	SnapshotBytesPerSec int64
	// Pace, if set, paces outgoing snapshot bytes instead of the
	// transport's own limiter: the store's admission controller, whose
	// snapshot rate adapts to the foreground (internal/admission).
	Pace func(ctx context.Context, n int) error
	// SnapshotChunkBytes is the number of uncompressed bytes per snapshot
	// chunk (key/value records may span chunks). 0 or negative means
	// DefaultSnapshotChunkBytes (256 KiB); values above MaxSnapshotChunkBytes
	// are clamped to it.
	SnapshotChunkBytes int
	// SendQueueLen is the number of raft messages queued per destination
	// store. When the queue is full, new messages are dropped and the
	// Handler's ReportUnreachable is called. 0 or negative means
	// DefaultSendQueueLen (10000). Memory cost is one pointer per slot plus
	// the queued messages themselves.
	SendQueueLen int
	// DialTimeout bounds how long opening a raft stream may take, including
	// connecting. 0 or negative means DefaultDialTimeout (3s).
	DialTimeout time.Duration
	// RaftBusy, if set, is stamped on every outgoing control-lane batch as
	// raft_busy: it reports whether the local raft loop is stuck in a long
	// iteration.
	// It is called from the send goroutines and must be cheap.
	RaftBusy func() bool
	// TLS, when set, is the store's identity: outgoing streams use mutual
	// TLS with it, and inbound traffic must come from a node certificate
	// that covers the address of the store it claims to be (identity.go).
	// nil: plaintext, every claim believed (--insecure).
	TLS *security.Reloader
	// Logger receives connection state changes. nil means slog.Default().
	Logger *slog.Logger
	// Knobs are test hooks; nil in production.
	Knobs *TestingKnobs
}

// TestingKnobs are hooks for tests. All are optional and may be called
// concurrently from several goroutines.
type TestingKnobs struct {
	// SendFilter is consulted, inside Send, for every outbound message (and,
	// with a nil message, for every liveness ping): it can
	// drop the message silently, or deliver it after delay (via a timer, so
	// delayed messages may overtake or be overtaken by others; raft tolerates
	// it).
	SendFilter func(from, to uint64, m *transportpb.RaftMessage) (drop bool, delay time.Duration)
	// SnapshotFilter returns true to fail an outbound snapshot to `to` before
	// anything is sent (simulates a partition). SendSnapshot then returns a
	// codes.Unavailable status error.
	SnapshotFilter func(from, to uint64) bool
}

// EnsureDefaults returns a copy of o with defaults filled in.
func (o Options) EnsureDefaults() Options {
	if o.SnapshotBytesPerSec == 0 {
		o.SnapshotBytesPerSec = DefaultSnapshotBytesPerSec
	}
	if o.SnapshotChunkBytes <= 0 {
		o.SnapshotChunkBytes = DefaultSnapshotChunkBytes
	}
	if o.SnapshotChunkBytes > MaxSnapshotChunkBytes {
		o.SnapshotChunkBytes = MaxSnapshotChunkBytes
	}
	if o.SendQueueLen <= 0 {
		o.SendQueueLen = DefaultSendQueueLen
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports a missing or contradictory setting.
func (o Options) Validate() error {
	switch {
	case o.StoreID == 0:
		return errors.New("transport: StoreID is required")
	case o.Resolver == nil:
		return errors.New("transport: Resolver is required")
	}
	return nil
}
