package errs

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/metapb"
)

func withDetail(c codes.Code, msg string, detail proto.Message) error {
	st := status.New(c, msg)
	if detail != nil {
		if d, err := st.WithDetails(protoadapt.MessageV1Of(detail)); err == nil {
			st = d
		}
	}
	return st.Err()
}

// NotLeader reports that this replica cannot serve because it is not the
// tablet's leader. leaderStore is 0 when unknown.
func NotLeader(tabletID, leaderStore uint64, leaderAddr string) error {
	msg := fmt.Sprintf("not leader of tablet %d", tabletID)
	if leaderStore != 0 {
		msg += fmt.Sprintf("; leader is store %d", leaderStore)
	} else {
		msg += "; no leader elected yet"
	}
	return withDetail(codes.Unavailable, msg, &errorpb.NotLeader{TabletId: tabletID, LeaderStoreId: leaderStore, LeaderAddr: leaderAddr})
}

// TabletNotFound reports that the store has no replica of the tablet.
func TabletNotFound(tabletID, storeID uint64) error {
	return withDetail(codes.NotFound, fmt.Sprintf("tablet %d not found on store %d", tabletID, storeID),
		&errorpb.TabletNotFound{TabletId: tabletID, StoreId: storeID})
}

// KeyNotInTablet reports a key outside the tablet's range.
func KeyNotInTablet(key []byte, desc *metapb.TabletDescriptor) error {
	return withDetail(codes.FailedPrecondition, fmt.Sprintf("key %q is not in tablet %d [%x, %x)", key, desc.TabletId, desc.StartKey, desc.EndKey),
		&errorpb.KeyNotInTablet{Key: key, Tablet: desc})
}

// EpochMismatch reports a request made against an older tablet epoch.
func EpochMismatch(current ...*metapb.TabletDescriptor) error {
	id := uint64(0)
	if len(current) > 0 {
		id = current[0].TabletId
	}
	return withDetail(codes.FailedPrecondition, fmt.Sprintf("tablet %d epoch changed; refresh routing", id),
		&errorpb.EpochMismatch{Current: current})
}

// ServerBusy asks the client to back off.
func ServerBusy(reason string, retryAfterMs uint64) error {
	return withDetail(codes.ResourceExhausted, "server busy: "+reason, &errorpb.ServerBusy{Reason: reason, RetryAfterMs: retryAfterMs})
}

// DiskFull reports that the store refuses writes because its disk is
// (nearly) full. Nothing was applied; the client backs off.
func DiskFull(storeID, availableBytes, retryAfterMs uint64) error {
	return withDetail(codes.ResourceExhausted,
		fmt.Sprintf("store %d is out of disk space (%d bytes free); writes are refused until space is freed or the tablet moves", storeID, availableBytes),
		&errorpb.DiskFull{StoreId: storeID, AvailableBytes: availableBytes, RetryAfterMs: retryAfterMs})
}

// QuotaExceeded reports a request refused by a quota (scope "table" or
// "user", name the table or user, limit e.g. "write-rps"). Nothing was
// applied; the client waits retryAfter and sends again.
func QuotaExceeded(scope, name, limit string, retryAfter time.Duration) error {
	ms := max(uint64(retryAfter.Milliseconds()), 1)
	return withDetail(codes.ResourceExhausted,
		fmt.Sprintf("quota exceeded: %s %q is over its %s limit; retry after %dms", scope, name, limit, ms),
		&errorpb.QuotaExceeded{Scope: scope, Name: name, Limit: limit, RetryAfterMs: ms})
}

// ChecksumMismatch reports a cell whose CRC-32C does not match its
// content (docs/reliability.md, "End-to-end cell checksums"). For a write,
// nothing of the row was applied.
func ChecksumMismatch(tabletID, storeID uint64, where string) error {
	return withDetail(codes.DataLoss, fmt.Sprintf("tablet %d on store %d: a cell failed its checksum %s; a bit changed on the way; nothing of the row was applied: send it again", tabletID, storeID, where),
		&errorpb.ChecksumMismatch{TabletId: tabletID, StoreId: storeID, Where: where})
}

// TableNotFound reports an unknown table.
func TableNotFound(tableID uint64) error {
	return withDetail(codes.NotFound, fmt.Sprintf("table %d not found", tableID), &errorpb.TableNotFound{TableId: tableID})
}

// ReadTooOld reports a read at readTS below the tablet's history floor:
// versions it would need may be gone. The caller reads at floor or later.
func ReadTooOld(tabletID uint64, readTS, floor int64) error {
	return withDetail(codes.FailedPrecondition, fmt.Sprintf("tablet %d: read at timestamp %d is below the tablet's history floor %d (a delete, ingest or version GC changed older versions); read at %d or later", tabletID, readTS, floor, floor),
		&errorpb.ReadTooOld{TabletId: tabletID, ReadTimestamp: readTS, Floor: floor})
}

// InvalidArgument reports a malformed or oversized request.
func InvalidArgument(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// Ambiguous reports a write whose outcome is unknown: it may or may not have
// been applied. Retrying a non-idempotent write after it is only safe with
// a request ID.
func Ambiguous(format string, args ...any) error {
	return status.Errorf(codes.Unknown, "result unknown: "+format, args...)
}

// Detail returns the routable error carried by err, or nil.
func Detail(err error) proto.Message {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if m, ok := d.(proto.Message); ok {
			return m
		}
	}
	return nil
}

// As reports whether err carries a detail of T's type and returns it.
func As[T proto.Message](err error) (T, bool) {
	var zero T
	if err == nil {
		return zero, false
	}
	d := Detail(err)
	if t, ok := d.(T); ok {
		return t, true
	}
	return zero, false
}

// Code returns a stable code string for err, for logs and metrics.
func Code(err error) string {
	switch Detail(err).(type) {
	case *errorpb.NotLeader:
		return "KV:tablet:NotLeader"
	case *errorpb.TabletNotFound:
		return "KV:tablet:TabletNotFound"
	case *errorpb.KeyNotInTablet:
		return "KV:tablet:KeyNotInTablet"
	case *errorpb.EpochMismatch:
		return "KV:tablet:EpochMismatch"
	case *errorpb.ServerBusy:
		return "KV:tablet:ServerBusy"
	case *errorpb.TableNotFound:
		return "KV:tablet:TableNotFound"
	case *errorpb.ReadTooOld:
		return "KV:tablet:ReadTooOld"
	case *errorpb.DiskFull:
		return "KV:store:DiskFull"
	case *errorpb.QuotaExceeded:
		return "KV:quota:QuotaExceeded"
	case *errorpb.ChecksumMismatch:
		return "KV:tablet:ChecksumMismatch"
	}
	if st, ok := status.FromError(err); ok {
		return "KV:" + st.Code().String()
	}
	return "KV:Internal"
}

// ToProto converts err into an errorpb.Error for per-row results.
func ToProto(err error) *errorpb.Error {
	if err == nil {
		return nil
	}
	st := status.Convert(err)
	e := &errorpb.Error{Code: uint32(st.Code()), Message: st.Message()}
	switch d := Detail(err).(type) {
	case *errorpb.NotLeader:
		e.Detail = &errorpb.Error_NotLeader{NotLeader: d}
	case *errorpb.TabletNotFound:
		e.Detail = &errorpb.Error_TabletNotFound{TabletNotFound: d}
	case *errorpb.KeyNotInTablet:
		e.Detail = &errorpb.Error_KeyNotInTablet{KeyNotInTablet: d}
	case *errorpb.EpochMismatch:
		e.Detail = &errorpb.Error_EpochMismatch{EpochMismatch: d}
	case *errorpb.ServerBusy:
		e.Detail = &errorpb.Error_ServerBusy{ServerBusy: d}
	case *errorpb.TableNotFound:
		e.Detail = &errorpb.Error_TableNotFound{TableNotFound: d}
	case *errorpb.ReadTooOld:
		e.Detail = &errorpb.Error_ReadTooOld{ReadTooOld: d}
	case *errorpb.DiskFull:
		e.Detail = &errorpb.Error_DiskFull{DiskFull: d}
	case *errorpb.QuotaExceeded:
		e.Detail = &errorpb.Error_QuotaExceeded{QuotaExceeded: d}
	case *errorpb.ChecksumMismatch:
		e.Detail = &errorpb.Error_ChecksumMismatch{ChecksumMismatch: d}
	}
	return e
}

// FromProto converts a per-row errorpb.Error back into a status error.
func FromProto(e *errorpb.Error) error {
	if e == nil {
		return nil
	}
	var d proto.Message
	switch x := e.Detail.(type) {
	case *errorpb.Error_NotLeader:
		d = x.NotLeader
	case *errorpb.Error_TabletNotFound:
		d = x.TabletNotFound
	case *errorpb.Error_KeyNotInTablet:
		d = x.KeyNotInTablet
	case *errorpb.Error_EpochMismatch:
		d = x.EpochMismatch
	case *errorpb.Error_ServerBusy:
		d = x.ServerBusy
	case *errorpb.Error_TableNotFound:
		d = x.TableNotFound
	case *errorpb.Error_ReadTooOld:
		d = x.ReadTooOld
	case *errorpb.Error_DiskFull:
		d = x.DiskFull
	case *errorpb.Error_QuotaExceeded:
		d = x.QuotaExceeded
	case *errorpb.Error_ChecksumMismatch:
		d = x.ChecksumMismatch
	}
	return withDetail(codes.Code(e.Code), e.Message, d)
}
