// Package limits holds the size limits that the tablet servers, kvclient,
// the Thrift gateway and the importer must agree on, in one place:
// docs/limits.md explains them. A server may be configured with smaller
// limits (store.Limits), never larger ones, so that every value a server
// accepts can be read back by every client.
package limits

import "google.golang.org/grpc"

const (
	// MaxRowKeyBytes bounds a row key.
	MaxRowKeyBytes = 4 << 10
	// MaxQualifierBytes bounds a column qualifier.
	MaxQualifierBytes = 16 << 10
	// MaxValueBytes bounds one cell's value.
	MaxValueBytes = 8 << 20
	// MaxMutationBytes bounds the mutations of one row in one request.
	MaxMutationBytes = 16 << 20
	// MaxBatchBytes and MaxBatchRows bound one BatchMutate.
	MaxBatchBytes = 32 << 20
	MaxBatchRows  = 10000

	// MaxReadRowBytes bounds the cells one read returns of one row (a Get,
	// or a row of a scan). A row can grow past it through many writes; a
	// read of it fails naming this limit, and reading fewer columns or
	// versions works.
	MaxReadRowBytes = 32 << 20
	// ScanPageBytes bounds one scan page: a server ends a page before the
	// row that would take it past this, unless the page is still empty
	// (every page carries at least one row, so a scan always progresses).
	ScanPageBytes = 4 << 20
	// CellOverheadBytes is what one cell costs in a message beyond its
	// family, qualifier and value (tags, lengths, timestamp): an
	// overestimate, so sizes counted with it are upper bounds.
	CellOverheadBytes = 32
	// MessageOverheadBytes is room for a message's envelope beyond its
	// payload (headers, row keys, field tags).
	MessageOverheadBytes = 1 << 20

	// MaxMessageBytes is the gRPC message limit, both ways, of the tablet
	// servers and their clients: a batch, a row's read or a scan page with
	// its overhead fits.
	MaxMessageBytes = 64 << 20
)

// The message limit must hold the largest request and the largest reply.
const (
	_ uint = MaxMessageBytes - (MaxBatchBytes + MessageOverheadBytes)
	_ uint = MaxMessageBytes - (MaxReadRowBytes + MessageOverheadBytes)
	_ uint = MaxMessageBytes - (ScanPageBytes + MaxReadRowBytes + MessageOverheadBytes)
)

// DialOption sets a gRPC client's message limits, both ways, to
// MaxMessageBytes: gRPC's default receive limit (4 MiB) is below a value
// the servers accept.
func DialOption() grpc.DialOption {
	return grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
}
