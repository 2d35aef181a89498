package kvclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
)

// Errors a caller can test for with errors.Is. Every error the client
// returns for one of these reasons wraps the sentinel and, where there is
// one, the server's gRPC status (reachable with errors.As / status.FromError).
var (
	// ErrTableNotFound is returned when the named table does not exist (or
	// was dropped while the operation ran).
	ErrTableNotFound = errors.New("kvclient: table not found")
	// ErrTableExists is returned by CreateTable when the name is taken.
	ErrTableExists = errors.New("kvclient: table already exists")
	// ErrAmbiguous is returned by a write whose outcome is unknown: the
	// request may have been applied or not (the connection broke after it
	// was sent, the deadline expired while it was in flight, or the server
	// lost track of the proposal). Read the row to find out. The client
	// never retries such a write on its own.
	ErrAmbiguous = errors.New("kvclient: result unknown; the write may or may not have been applied")
	// ErrInvalidArgument is returned for requests the server (or the client)
	// rejects as malformed: unknown column family, empty row key, oversized
	// value, bad table name. The message carries the server's reason.
	ErrInvalidArgument = errors.New("kvclient: invalid argument")
	// ErrReadTooOld is returned by a read at a timestamp (AsOf) below a
	// tablet's history floor: a delete, an ingest or version GC changed
	// versions at or before it. ReadTooOldFloor gives the earliest
	// timestamp that tablet serves.
	ErrReadTooOld = errors.New("kvclient: read timestamp is below a tablet's history floor")
	// ErrDiskFull is returned by a write that a tablet's leader kept
	// refusing because its store's disk is (nearly) full, until the
	// caller's deadline. Nothing was applied. The client backs off and
	// retries on its own while the deadline allows (PD moves the leader to
	// a store with room); reads are not affected.
	ErrDiskFull = errors.New("kvclient: disk full; the write was not applied")
	// ErrQuotaExceeded is returned by a request that a quota (`shale ctl
	// quota`) kept refusing until the caller's deadline, or whose wait
	// would have passed it. Nothing was applied. QuotaRetryAfter gives the
	// wait the server asked for.
	ErrQuotaExceeded = errors.New("kvclient: quota exceeded; the request was not applied")
	// ErrServerBusy is returned by an operation that a store kept
	// refusing as overloaded (admission control's ServerBusy,
	// docs/qos.md) until the caller's deadline, or whose retry-after hint
	// would outlast the deadline. Nothing was applied. The client backs off
	// at least the hint on its own while the deadline allows; RetryAfter
	// gives the last hint.
	ErrServerBusy = errors.New("kvclient: server busy; the request was not applied")
	// ErrChecksumMismatch is returned by a write a tablet server refused
	// because a cell failed its CRC-32C (a bit changed between this
	// client and the replicas): nothing of the row was applied; send it
	// again. A read returns it only when every replica's answer failed
	// (each bad answer is read again elsewhere first).
	ErrChecksumMismatch = errors.New("kvclient: a cell failed its checksum")
	// ErrClosed is returned by operations on a closed Client.
	ErrClosed = errors.New("kvclient: client is closed")
)

// Error is the error type behind the sentinels above: Kind is the sentinel
// (matched by errors.Is), Cause the underlying error (usually a gRPC status).
type Error struct {
	Kind  error
	Msg   string
	Cause error
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Msg
}

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

func newError(kind error, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

func ambiguous(cause error, what string) error {
	msg := what
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &Error{Kind: ErrAmbiguous, Msg: msg, Cause: cause}
}

func invalidArgf(format string, args ...any) error {
	return newError(ErrInvalidArgument, nil, format, args...)
}

// QuotaRetryAfter returns how long the server asked to wait before
// sending a request refused by a quota again (ok: err is such a refusal).
func QuotaRetryAfter(err error) (time.Duration, bool) {
	q, ok := errs.As[*errorpb.QuotaExceeded](err)
	if !ok {
		return 0, false
	}
	return time.Duration(q.RetryAfterMs) * time.Millisecond, true
}

// userError converts a final (not retried) server error into the error the
// caller sees.
func userError(err error, write bool, what string) error {
	if err == nil {
		return nil
	}
	var ke *Error
	if errors.As(err, &ke) {
		return err
	}
	if _, ok := errs.As[*errorpb.TableNotFound](err); ok {
		return newError(ErrTableNotFound, err, "%s: %s", what, status.Convert(err).Message())
	}
	if _, ok := errs.As[*errorpb.ReadTooOld](err); ok {
		return newError(ErrReadTooOld, err, "%s: %s", what, status.Convert(err).Message())
	}
	if _, ok := errs.As[*errorpb.DiskFull](err); ok {
		return newError(ErrDiskFull, err, "%s: %s", what, status.Convert(err).Message())
	}
	if _, ok := errs.As[*errorpb.QuotaExceeded](err); ok {
		return newError(ErrQuotaExceeded, err, "%s: %s", what, status.Convert(err).Message())
	}
	if _, ok := errs.As[*errorpb.ChecksumMismatch](err); ok {
		return newError(ErrChecksumMismatch, err, "%s: %s", what, status.Convert(err).Message())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if write {
			return ambiguous(err, what)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return newError(ErrInvalidArgument, err, "%s: %s", what, st.Message())
	case codes.Unknown:
		if write {
			return ambiguous(err, what)
		}
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		if write && errs.Detail(err) == nil {
			return ambiguous(err, what)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// RetryAfter returns the back-off a store asked for in the error err
// carries (ServerBusy or DiskFull), or 0.
func RetryAfter(err error) time.Duration {
	if sb, ok := errs.As[*errorpb.ServerBusy](err); ok {
		return time.Duration(sb.RetryAfterMs) * time.Millisecond
	}
	if df, ok := errs.As[*errorpb.DiskFull](err); ok {
		return time.Duration(df.RetryAfterMs) * time.Millisecond
	}
	return 0
}

// pdError converts an error from a placement driver call.
func pdError(err error, what string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.NotFound:
		return newError(ErrTableNotFound, err, "%s: %s", what, st.Message())
	case codes.AlreadyExists:
		return newError(ErrTableExists, err, "%s: %s", what, st.Message())
	case codes.InvalidArgument, codes.FailedPrecondition:
		return newError(ErrInvalidArgument, err, "%s: %s", what, st.Message())
	}
	return fmt.Errorf("%s: %w", what, err)
}
