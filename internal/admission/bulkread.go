package admission

import (
	"context"

	"google.golang.org/grpc/metadata"
)

// BulkReadHeader is the gRPC metadata key with which a client marks a
// Scan as bulk background work (an importer's verification scan): the
// tablet server then paces the scan in the Export class, by the bytes it
// reads, instead of admitting it as a foreground request that would hold
// a CPU slot, and compete with the user's reads, for as long as it
// streams. Any non-empty value. A client that sets it only lowers its own
// priority.
const BulkReadHeader = "shale-bulk-read"

// WithBulkRead returns ctx with the outgoing metadata that marks a Scan
// as a bulk read.
func WithBulkRead(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, BulkReadHeader, "1")
}

// IsBulkRead reports whether an incoming call's metadata marks it as a
// bulk read. Every Scan asks, twice (the interceptor and the store), so
// it looks up the one key rather than copying the metadata.
func IsBulkRead(ctx context.Context) bool {
	for _, v := range metadata.ValueFromIncomingContext(ctx, BulkReadHeader) {
		if v != "" {
			return true
		}
	}
	return false
}
