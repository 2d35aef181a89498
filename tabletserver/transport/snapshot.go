package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/proto/transportpb"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SendSnapshot streams a snapshot to toStore and blocks until the receiver's
// HandleSnapshot has returned; its error is returned as a gRPC status error
// (codes.DataLoss and codes.InvalidArgument mean the receiver rejected the
// stream itself). iterate must call emit for every pair, in order, and
// return emit's error if it fails; emit does not retain key or value. An
// error of iterate's own is returned wrapped, after aborting the stream.
// Canceling ctx aborts the stream; after Close it returns ErrClosed. The
// header is sent as given; the caller fills in its store IDs.
func (t *Transport) SendSnapshot(
	ctx context.Context,
	toStore uint64,
	h *transportpb.SnapshotHeader,
	iterate func(emit func(key, value []byte) error) error,
) error {
	if t.closed.Load() {
		return ErrClosed
	}
	if h == nil {
		return errors.New("transport: SendSnapshot needs a header")
	}
	if k := t.opts.Knobs; k != nil && k.SnapshotFilter != nil && k.SnapshotFilter(t.opts.StoreID, toStore) {
		return status.Errorf(codes.Unavailable, "transport: snapshot to store %d dropped by testing filter", toStore)
	}
	cc, err := t.conn(toStore)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.ctx, cancel)()

	stream, err := transportpb.NewRaftTransportClient(cc).Snapshot(ctx)
	if err != nil {
		return err
	}
	w := &chunkWriter{
		t:      t,
		ctx:    ctx,
		stream: stream,
		header: h,
		buf:    make([]byte, 0, t.opts.SnapshotChunkBytes),
	}
	iterErr := iterate(w.add)
	if w.err == nil && iterErr == nil {
		w.finish()
	}
	switch {
	case w.err != nil:
		if !errors.Is(w.err, io.EOF) {
			return w.err
		}
		// The receiver ended the stream early; its status says why (or
		// that the handler accepted the snapshot without reading it all).
		_, err := stream.CloseAndRecv()
		return err
	case iterErr != nil:
		// cancel (deferred) aborts the stream, so the receiver's next
		// returns codes.Canceled.
		return fmt.Errorf("transport: snapshot to store %d: iterate: %w", toStore, iterErr)
	}
	_, err = stream.CloseAndRecv()
	return err
}

// chunkWriter encodes pairs into chunks and sends them.
type chunkWriter struct {
	t      *Transport
	ctx    context.Context
	stream grpc.ClientStreamingClient[transportpb.SnapshotChunk, transportpb.SnapshotResponse]
	// header goes out with the first chunk, then is set to nil.
	header *transportpb.SnapshotHeader
	// buf holds encoded bytes not yet sent; fewer than SnapshotChunkBytes
	// between calls to add.
	buf []byte
	// err is sticky: the first send or rate-limit failure.
	err error
}

func (w *chunkWriter) add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(key)))
	w.buf = append(w.buf, key...)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(value)))
	w.buf = append(w.buf, value...)
	size := w.t.opts.SnapshotChunkBytes
	off := 0
	for len(w.buf)-off >= size && w.err == nil {
		w.send(w.buf[off:off+size], false)
		off += size
	}
	// One copy of the remainder per pair, however large the value.
	if off > 0 {
		w.buf = append(w.buf[:0], w.buf[off:]...)
	}
	return w.err
}

// finish sends the rest of buf (possibly nothing) as the final chunk.
func (w *chunkWriter) finish() {
	w.send(w.buf, true)
	w.buf = w.buf[:0]
}

func (w *chunkWriter) send(data []byte, final bool) {
	chunk := &transportpb.SnapshotChunk{
		Header: w.header,
		Crc32C: crc32.Checksum(data, castagnoli),
		// snappy.Encode copies, so the caller may reuse data.
		Data:  snappy.Encode(nil, data),
		Final: final,
	}
	if err := w.t.waitRate(w.ctx, len(chunk.Data)); err != nil {
		w.err = err
		return
	}
	if err := w.stream.Send(chunk); err != nil {
		w.err = err
		return
	}
	w.header = nil
}

// waitRate blocks until n bytes may be sent under the snapshot rate limit.
func (t *Transport) waitRate(ctx context.Context, n int) error {
	if t.opts.Pace != nil {
		return t.opts.Pace(ctx, n)
	}
	if t.limiter.Limit() == rate.Inf {
		return ctx.Err()
	}
	burst := t.limiter.Burst()
	for n > 0 {
		step := min(n, burst)
		if err := t.limiter.WaitN(ctx, step); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return err
		}
		n -= step
	}
	return nil
}
