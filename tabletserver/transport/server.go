package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"

	"github.com/golang/snappy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/proto/transportpb"
)

// maxChunkDecodedBytes bounds the uncompressed size the receiver accepts
// for one chunk, so a hostile length prefix cannot make it allocate
// arbitrarily much. It is far above what any sender produces
// (MaxSnapshotChunkBytes).
const maxChunkDecodedBytes = 64 << 20

// server is the gRPC face of a Transport. It is a separate type because
// Transport.Send and RaftTransportServer.Send have different signatures.
type server struct {
	transportpb.UnimplementedRaftTransportServer
	t *Transport
}

var _ transportpb.RaftTransportServer = (*server)(nil)

// Send hands every inbound batch to the Handler until the sender closes the
// stream or the Transport is closed.
func (s *server) Send(stream grpc.ClientStreamingServer[transportpb.RaftMessageBatch, transportpb.SendResponse]) error {
	who, err := s.t.newPeerIdentity(stream.Context())
	if err != nil {
		return err
	}
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&transportpb.SendResponse{})
		}
		if err != nil {
			return err
		}
		if s.t.closed.Load() {
			return status.Error(codes.Unavailable, "transport: receiver closed")
		}
		if err := who.checkBatch(b); err != nil {
			return err
		}
		s.t.handler.HandleRaftBatch(b)
	}
}

// Snapshot verifies the header, then lets the Handler pull pairs through a
// snapReader.
func (s *server) Snapshot(stream grpc.ClientStreamingServer[transportpb.SnapshotChunk, transportpb.SnapshotResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(s.t.ctx, cancel)()
	if s.t.closed.Load() {
		return status.Error(codes.Unavailable, "transport: receiver closed")
	}
	who, err := s.t.newPeerIdentity(ctx)
	if err != nil {
		return err
	}

	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return status.Error(codes.InvalidArgument, "transport: empty snapshot stream")
	}
	if err != nil {
		return err
	}
	if first.Header == nil {
		return status.Error(codes.InvalidArgument, "transport: first snapshot chunk has no header")
	}
	if err := who.checkStore(first.Header.FromStore); err != nil {
		return err
	}
	r := &snapReader{recv: stream.Recv}
	if err := r.load(first); err != nil {
		return err
	}
	herr := s.t.handler.HandleSnapshot(ctx, first.Header, r.next)
	// A transport-level failure is the truth about the stream, whatever
	// the handler made of it.
	if r.err != nil && !errors.Is(r.err, io.EOF) {
		return r.err
	}
	if herr != nil {
		return status.Convert(herr).Err()
	}
	return stream.SendAndClose(&transportpb.SnapshotResponse{})
}

// snapReader decodes the pair stream spread over verified chunks.
type snapReader struct {
	recv func() (*transportpb.SnapshotChunk, error)
	// buf is the unread part of the current chunk. Decoded chunks are never
	// reused, so slices of them can be handed to the Handler.
	buf []byte
	// final is set once the final chunk is loaded.
	final bool
	// chunks counts loaded chunks, for error messages.
	chunks int
	// err is sticky: the first error next returned (io.EOF at the end).
	err error
}

// load verifies and decodes c into buf.
func (r *snapReader) load(c *transportpb.SnapshotChunk) error {
	n := r.chunks
	r.chunks++
	size, err := snappy.DecodedLen(c.Data)
	if err != nil {
		return status.Errorf(codes.DataLoss, "transport: snapshot chunk %d: %v", n, err)
	}
	if size > maxChunkDecodedBytes {
		// No sender produces such a chunk; the length prefix is corrupt.
		return status.Errorf(codes.DataLoss, "transport: snapshot chunk %d: %d bytes uncompressed exceeds limit %d", n, size, maxChunkDecodedBytes)
	}
	data, err := snappy.Decode(nil, c.Data)
	if err != nil {
		return status.Errorf(codes.DataLoss, "transport: snapshot chunk %d: %v", n, err)
	}
	if got := crc32.Checksum(data, castagnoli); got != c.Crc32C {
		return status.Errorf(codes.DataLoss, "transport: snapshot chunk %d: crc32c mismatch: computed %08x, chunk says %08x", n, got, c.Crc32C)
	}
	r.buf, r.final = data, c.Final
	return nil
}

// fill loads chunks until buf is non-empty. It returns io.EOF only after
// the final chunk is used up.
func (r *snapReader) fill() error {
	for len(r.buf) == 0 {
		if r.final {
			return io.EOF
		}
		c, err := r.recv()
		if errors.Is(err, io.EOF) {
			return status.Errorf(codes.InvalidArgument, "transport: snapshot stream ended after %d chunks without a final chunk", r.chunks)
		}
		if err != nil {
			return err
		}
		if c.Header != nil {
			return status.Errorf(codes.InvalidArgument, "transport: snapshot chunk %d repeats the header", r.chunks)
		}
		if err := r.load(c); err != nil {
			return err
		}
	}
	return nil
}

// ReadByte implements io.ByteReader for binary.ReadUvarint.
func (r *snapReader) ReadByte() (byte, error) {
	if err := r.fill(); err != nil {
		return 0, err
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b, nil
}

// readN returns the next n bytes, which may span chunks.
func (r *snapReader) readN(n uint64) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if err := r.fill(); err != nil {
		return nil, err
	}
	if n <= uint64(len(r.buf)) {
		out := r.buf[:n:n]
		r.buf = r.buf[n:]
		return out, nil
	}
	// Grow with the data actually received rather than trusting n.
	out := make([]byte, 0, len(r.buf)*2)
	for uint64(len(out)) < n {
		if err := r.fill(); err != nil {
			return nil, err
		}
		k := min(n-uint64(len(out)), uint64(len(r.buf)))
		out = append(out, r.buf[:k]...)
		r.buf = r.buf[k:]
	}
	return out, nil
}

// next is the Handler's pull function.
func (r *snapReader) next() (key, value []byte, err error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	defer func() {
		if err != nil {
			r.err = err
		}
	}()
	klen, err := binary.ReadUvarint(r)
	if errors.Is(err, io.EOF) {
		return nil, nil, io.EOF
	}
	if err != nil {
		return nil, nil, r.malformed("key length", err)
	}
	if key, err = r.readN(klen); err != nil {
		return nil, nil, r.malformed("key", err)
	}
	vlen, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, nil, r.malformed("value length", err)
	}
	if value, err = r.readN(vlen); err != nil {
		return nil, nil, r.malformed("value", err)
	}
	return key, value, nil
}

// malformed passes status errors (corruption, cancellation) through and
// turns framing errors (truncation, varint overflow) into InvalidArgument.
func (r *snapReader) malformed(what string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return status.Errorf(codes.InvalidArgument, "transport: snapshot chunk %d: bad %s: %v", r.chunks-1, what, err)
}
