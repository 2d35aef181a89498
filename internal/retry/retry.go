package retry

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
)

// Action is what a caller does after a failed request.
type Action int

const (
	// Fail: the error is the answer (a bad request, an unknown error); do
	// not retry.
	Fail Action = iota
	// RefreshRoute: the tablet split, merged or moved (EpochMismatch,
	// KeyNotInTablet, TabletNotFound) or the store's address now belongs to
	// another server (Unimplemented). Nothing was applied; refresh the
	// route and send again.
	RefreshRoute
	// RetryElsewhere: this replica does not lead the tablet (NotLeader,
	// which may name the leader), or the request never left the client
	// (ErrNotSent). Nothing was applied; send to another replica.
	RetryElsewhere
	// Backoff: the tablet refused for now (ServerBusy, DiskFull, QuotaExceeded, a
	// TableNotFound from a store that has not heard of a new table yet). Nothing was applied;
	// wait and send again.
	Backoff
	// Ambiguous: the request was sent and no verdict came back (the
	// connection broke, a deadline passed, the server answered "result
	// unknown"). A write may have applied: resend it only when applying it
	// twice is harmless (the same request ID, identical ingested cells);
	// otherwise report the outcome as unknown.
	Ambiguous
)

// NotApplied reports whether the action follows a verdict that nothing
// was applied (RefreshRoute, RetryElsewhere, Backoff): the same request
// may be sent again, even a write without a request ID.
func (a Action) NotApplied() bool {
	return a == RefreshRoute || a == RetryElsewhere || a == Backoff
}

func (a Action) String() string {
	switch a {
	case Fail:
		return "fail"
	case RefreshRoute:
		return "refresh-route"
	case RetryElsewhere:
		return "retry-elsewhere"
	case Backoff:
		return "backoff"
	case Ambiguous:
		return "ambiguous"
	}
	return "unknown-action"
}

// ErrNotSent marks a failure to reach a store before anything was sent
// (no connection, address unknown); wrap it so Classify can tell.
var ErrNotSent = errors.New("store unreachable, request not sent")

// Classify returns the action for err (nil: Fail, there is nothing to
// retry). Typed details decide first, since they are the tablet's verdict;
// the bare gRPC code only says whether the request may have applied.
func Classify(err error) Action {
	if err == nil {
		return Fail
	}
	if errors.Is(err, ErrNotSent) {
		return RetryElsewhere
	}
	switch errs.Detail(err).(type) {
	case *errorpb.NotLeader:
		return RetryElsewhere
	case *errorpb.EpochMismatch, *errorpb.KeyNotInTablet, *errorpb.TabletNotFound:
		return RefreshRoute
	case *errorpb.ServerBusy, *errorpb.TableNotFound, *errorpb.DiskFull, *errorpb.QuotaExceeded:
		return Backoff
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.Unknown, codes.DeadlineExceeded, codes.Canceled:
			return Ambiguous
		case codes.Unimplemented:
			return RefreshRoute
		}
		return Fail
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Ambiguous
	}
	return Fail
}
