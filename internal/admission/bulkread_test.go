package admission

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
)

// The mark travels from a client's outgoing metadata to the server's
// incoming metadata; an empty value or another key is not a mark.
func TestIsBulkRead(t *testing.T) {
	ctx := context.Background()
	incoming := func(out context.Context) context.Context {
		md, _ := metadata.FromOutgoingContext(out)
		return metadata.NewIncomingContext(ctx, md)
	}
	require.True(t, IsBulkRead(incoming(WithBulkRead(ctx))))
	require.False(t, IsBulkRead(ctx), "no metadata")
	require.False(t, IsBulkRead(metadata.NewIncomingContext(ctx, metadata.Pairs(BulkReadHeader, ""))))
	require.False(t, IsBulkRead(metadata.NewIncomingContext(ctx, metadata.Pairs("shale-on-behalf-of", "alice"))))
}

// BenchmarkIsBulkRead is the cost every foreground Scan pays (twice) to
// learn it is not a bulk read, with the metadata a gRPC call carries.
func BenchmarkIsBulkRead(b *testing.B) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		":authority", "127.0.0.1:20160", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0", "grpc-accept-encoding", "gzip"))
	b.ReportAllocs()
	for b.Loop() {
		if IsBulkRead(ctx) {
			b.Fatal("marked")
		}
	}
}
