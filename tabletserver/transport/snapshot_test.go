package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/transportpb"
)

type kv struct{ k, v []byte }

func emitAll(pairs []kv) func(emit func(k, v []byte) error) error {
	return func(emit func(k, v []byte) error) error {
		for _, p := range pairs {
			if err := emit(p.k, p.v); err != nil {
				return err
			}
		}
		return nil
	}
}

func header(tablet uint64) *transportpb.SnapshotHeader {
	return &transportpb.SnapshotHeader{TabletId: tablet, FromStore: 1, ToStore: 2, RaftMessage: []byte("msgsnap")}
}

func TestSnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(int64(testutils.Seed(t))))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	const numPairs = 100_000
	pairs := make([]kv, numPairs)
	for i := range pairs {
		var v []byte
		switch r := rng.Intn(100); {
		case r < 10: // empty value
		case r < 11 && i%50 == 0: // ~20 values of 1 MiB
			v = randBytes(1 << 20)
		default:
			v = randBytes(rng.Intn(200))
		}
		pairs[i] = kv{k: randBytes(rng.Intn(40)), v: v}
	}

	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{SnapshotBytesPerSec: -1})
	n2 := startNode(t, 2, res, Options{})
	// The handler hands its result over a channel: the gRPC response
	// ordering SendSnapshot relies on is not visible to the race detector.
	type result struct {
		h     *transportpb.SnapshotHeader
		pairs []kv
	}
	results := make(chan result, 1)
	n2.h.setSnapshot(func(_ context.Context, h *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
		var got []kv
		for {
			k, v, err := next()
			if errors.Is(err, io.EOF) {
				results <- result{h, got}
				return nil
			}
			if err != nil {
				return err
			}
			got = append(got, kv{k, v})
		}
	})

	hdr := header(5)
	require.NoError(t, n1.tr.SendSnapshot(context.Background(), 2, hdr, emitAll(pairs)))
	r := <-results // SendSnapshot returned, so the handler has returned
	require.True(t, proto.Equal(hdr, r.h))
	got := r.pairs
	require.Len(t, got, len(pairs))
	for i := range pairs {
		if !bytes.Equal(pairs[i].k, got[i].k) || !bytes.Equal(pairs[i].v, got[i].v) {
			t.Fatalf("pair %d differs: sent key %x (%d-byte value), got key %x (%d-byte value)",
				i, pairs[i].k, len(pairs[i].v), got[i].k, len(got[i].v))
		}
	}
}

func TestSnapshotEmpty(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	n2 := startNode(t, 2, res, Options{})
	firstErr := make(chan error, 1)
	n2.h.setSnapshot(func(_ context.Context, _ *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
		_, _, err := next()
		firstErr <- err
		return nil
	})
	require.NoError(t, n1.tr.SendSnapshot(context.Background(), 2, header(5), emitAll(nil)))
	require.ErrorIs(t, <-firstErr, io.EOF)
}

// encodePairs builds an uncompressed pair run.
func encodePairs(pairs ...kv) []byte {
	var b []byte
	for _, p := range pairs {
		b = binary.AppendUvarint(b, uint64(len(p.k)))
		b = append(b, p.k...)
		b = binary.AppendUvarint(b, uint64(len(p.v)))
		b = append(b, p.v...)
	}
	return b
}

// chunkOf builds a well-formed chunk holding raw.
func chunkOf(raw []byte, final bool) *transportpb.SnapshotChunk {
	return &transportpb.SnapshotChunk{
		Data:   snappy.Encode(nil, raw),
		Crc32C: crc32.Checksum(raw, castagnoli),
		Final:  final,
	}
}

func withHeader(c *transportpb.SnapshotChunk) *transportpb.SnapshotChunk {
	c.Header = header(5)
	return c
}

// TestSnapshotMalformed writes raw snapshot streams and checks that the
// receiver rejects them with the right code, without panicking, and keeps
// serving.
func TestSnapshotMalformed(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	n2 := startNode(t, 2, res, Options{})

	good := encodePairs(kv{[]byte("a"), []byte("1")}, kv{[]byte("b"), []byte("2")})
	badCRC := chunkOf(good, true)
	badCRC.Crc32C++
	badCRCLater := chunkOf(good, true)
	badCRCLater.Crc32C ^= 0xffff

	tests := []struct {
		name   string
		chunks []*transportpb.SnapshotChunk
		// ignoreErrors makes the handler swallow next's errors and return nil.
		ignoreErrors bool
		code         codes.Code
	}{
		{name: "ok", chunks: []*transportpb.SnapshotChunk{withHeader(chunkOf(good, true))}, code: codes.OK},
		{name: "crc mismatch", chunks: []*transportpb.SnapshotChunk{withHeader(badCRC)}, code: codes.DataLoss},
		{name: "crc mismatch later chunk", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(good, false)), badCRCLater,
		}, code: codes.DataLoss},
		{name: "crc mismatch handler ignores errors", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(good, false)), badCRCLater,
		}, ignoreErrors: true, code: codes.DataLoss},
		{name: "not snappy", chunks: []*transportpb.SnapshotChunk{
			{Header: header(5), Data: []byte{0x05, 0xff, 0xff}, Final: true},
		}, code: codes.DataLoss},
		{name: "snappy length absurd", chunks: []*transportpb.SnapshotChunk{
			{Header: header(5), Data: []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}, Final: true},
		}, code: codes.DataLoss},
		{name: "missing header", chunks: []*transportpb.SnapshotChunk{chunkOf(good, true)}, code: codes.InvalidArgument},
		{name: "empty stream", code: codes.InvalidArgument},
		{name: "repeated header", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(good, false)), withHeader(chunkOf(good, true)),
		}, code: codes.InvalidArgument},
		{name: "bad varint", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(bytes.Repeat([]byte{0xff}, 11), true)),
		}, code: codes.InvalidArgument},
		{name: "truncated key", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(append(binary.AppendUvarint(nil, 10), "abc"...), true)),
		}, code: codes.InvalidArgument},
		{name: "missing value", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(append(binary.AppendUvarint(nil, 3), "abc"...), true)),
		}, code: codes.InvalidArgument},
		{name: "huge length", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(append(binary.AppendUvarint(nil, 1<<62), "x"...), true)),
		}, code: codes.InvalidArgument},
		{name: "no final chunk", chunks: []*transportpb.SnapshotChunk{
			withHeader(chunkOf(good, false)), chunkOf(good, false),
		}, code: codes.InvalidArgument},
	}

	cc, err := grpc.NewClient(n2.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	client := transportpb.NewRaftTransportClient(cc)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n2.h.setSnapshot(func(_ context.Context, _ *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
				err := drain(next)
				if tc.ignoreErrors {
					return nil
				}
				return err
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stream, err := client.Snapshot(ctx)
			require.NoError(t, err)
			for _, c := range tc.chunks {
				if err := stream.Send(c); err != nil {
					require.ErrorIs(t, err, io.EOF) // the server already answered
					break
				}
			}
			_, err = stream.CloseAndRecv()
			require.Equal(t, tc.code, status.Code(err), "err: %v", err)
		})
	}

	// The server still serves snapshots and raft traffic.
	n2.h.setSnapshot(nil)
	require.NoError(t, n1.tr.SendSnapshot(context.Background(), 2, header(5),
		emitAll([]kv{{[]byte("k"), []byte("v")}})))
	n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 0)})
	testutils.SucceedsSoon(t, func() error { return n2.h.expect(1) })
}

func TestSnapshotHandlerError(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{SnapshotBytesPerSec: -1})
	n2 := startNode(t, 2, res, Options{})
	// Enough data that the sender is still sending when the handler
	// returns, so the error also travels the early-close path.
	var pairs []kv
	for i := range 64 {
		pairs = append(pairs, kv{[]byte{byte(i)}, bytes.Repeat([]byte{byte(i)}, 64<<10)})
	}

	t.Run("plain error", func(t *testing.T) {
		n2.h.setSnapshot(func(context.Context, *transportpb.SnapshotHeader, func() ([]byte, []byte, error)) error {
			return errors.New("snapshot rejected: tablet 5 is newer")
		})
		err := n1.tr.SendSnapshot(context.Background(), 2, header(5), emitAll(pairs))
		require.Error(t, err)
		require.Contains(t, status.Convert(err).Message(), "snapshot rejected: tablet 5 is newer")
	})
	t.Run("status code kept", func(t *testing.T) {
		n2.h.setSnapshot(func(_ context.Context, _ *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
			_, _, _ = next()
			return status.Error(codes.FailedPrecondition, "tablet busy")
		})
		err := n1.tr.SendSnapshot(context.Background(), 2, header(5), emitAll(pairs))
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "err: %v", err)
	})
	t.Run("iterate error aborts the stream", func(t *testing.T) {
		handlerErr := make(chan error, 1)
		gotFirst := make(chan struct{})
		n2.h.setSnapshot(func(_ context.Context, _ *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
			_, _, err := next()
			close(gotFirst)
			if err == nil {
				err = drain(next)
			}
			handlerErr <- err
			return err
		})
		boom := errors.New("iterator boom")
		err := n1.tr.SendSnapshot(context.Background(), 2, header(5), func(emit func(k, v []byte) error) error {
			for _, p := range pairs[:8] { // two chunks
				if err := emit(p.k, p.v); err != nil {
					return err
				}
			}
			// Fail only once the receiver is inside the handler, or the
			// stream could die before the handler is called at all.
			<-gotFirst
			return boom
		})
		require.ErrorIs(t, err, boom)
		select {
		case err := <-handlerErr:
			require.Equal(t, codes.Canceled, status.Code(err), "err: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("receiver did not see the abort")
		}
	})
}

func TestSnapshotRateLimit(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{SnapshotBytesPerSec: 8 << 20})
	startNode(t, 2, res, Options{})
	rng := rand.New(rand.NewSource(1))
	var pairs []kv
	for i := range 64 { // 4 MiB of incompressible values
		v := make([]byte, 64<<10)
		rng.Read(v)
		pairs = append(pairs, kv{[]byte{byte(i)}, v})
	}
	start := time.Now()
	require.NoError(t, n1.tr.SendSnapshot(context.Background(), 2, header(5), emitAll(pairs)))
	elapsed := time.Since(start)
	t.Logf("4 MiB at 8 MiB/s took %s", elapsed)
	// (4 MiB - one chunk of burst) / 8 MiB/s ≈ 0.46s.
	require.GreaterOrEqual(t, elapsed, 400*time.Millisecond)
}

func TestSnapshotFilter(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{Knobs: &TestingKnobs{
		SnapshotFilter: func(from, to uint64) bool { return to == 2 },
	}})
	n2 := startNode(t, 2, res, Options{})
	var calls atomic.Int32
	n2.h.setSnapshot(func(context.Context, *transportpb.SnapshotHeader, func() ([]byte, []byte, error)) error {
		calls.Add(1)
		return nil
	})
	err := n1.tr.SendSnapshot(context.Background(), 2, header(5), emitAll([]kv{{[]byte("k"), nil}}))
	require.Equal(t, codes.Unavailable, status.Code(err), "err: %v", err)
	require.Zero(t, calls.Load())
}

// TestCloseAbortsSnapshot: Close unblocks a snapshot stuck behind the rate
// limiter, and the receiver sees the stream canceled.
func TestCloseAbortsSnapshot(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{SnapshotBytesPerSec: 256 << 10})
	n2 := startNode(t, 2, res, Options{})
	started := make(chan struct{})
	n2.h.setSnapshot(func(_ context.Context, _ *transportpb.SnapshotHeader, next func() ([]byte, []byte, error)) error {
		close(started)
		return drain(next)
	})
	done := make(chan error, 1)
	go func() {
		done <- n1.tr.SendSnapshot(context.Background(), 2, header(5), func(emit func(k, v []byte) error) error {
			v := make([]byte, 64<<10)
			for i := 0; ; i++ {
				if err := emit([]byte{byte(i)}, v); err != nil {
					return err
				}
			}
		})
	}()
	<-started
	n1.tr.Close()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("SendSnapshot did not return after Close")
	}
	require.ErrorIs(t, n1.tr.SendSnapshot(context.Background(), 2, header(5), emitAll(nil)), ErrClosed)
}

// TestCloseStopsGoroutines runs full send/snapshot cycles and checks that
// the goroutine count settles back after Close.
func TestCloseStopsGoroutines(t *testing.T) {
	cycle := func() {
		res := newTestResolver()
		n1 := startNode(t, 1, res, Options{})
		n2 := startNode(t, 2, res, Options{})
		n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 0)})
		n1.tr.Send(3, []*transportpb.RaftMessage{msg(1, 1, 3, 0)}) // unresolvable
		n2.tr.Send(1, nil)
		testutils.SucceedsSoon(t, func() error {
			if got := len(n1.h.batchList()); got != 1 {
				return fmt.Errorf("store 1 got %d batches, want 1", got)
			}
			return n2.h.expect(1)
		})
		require.NoError(t, n1.tr.SendSnapshot(context.Background(), 2, header(5),
			emitAll([]kv{{[]byte("k"), []byte("v")}})))
		n1.stop()
		n2.stop()
		n1.tr.Close() // idempotent
		n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 1)})
		n1.tr.Send(2, nil)
	}
	settle := func() int {
		// Let goroutines of earlier tests and connections wind down: the
		// count holds still between two looks.
		prev := -1
		testutils.SucceedsSoon(t, func() error {
			n := runtime.NumGoroutine()
			if n != prev {
				prev = n
				return fmt.Errorf("%d goroutines, still changing", n)
			}
			return nil
		})
		return prev
	}
	cycle() // warm up lazily started package-level goroutines
	base := settle()
	for range 2 {
		cycle()
	}
	testutils.SucceedsSoon(t, func() error {
		if n := runtime.NumGoroutine(); n > base+2 {
			return fmt.Errorf("goroutines: base %d, now %d", base, n)
		}
		return nil
	})
}
