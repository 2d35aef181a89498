package fuzzutil

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// rawCodec sends and receives messages as the bytes they are: a request is
// a *[]byte, sent undecoded; a reply is read into a *[]byte. It calls
// itself "proto" so the server decodes the bytes with its protobuf codec.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("fuzzutil: raw codec sends *[]byte, not %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("fuzzutil: raw codec receives into *[]byte, not %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// Methods lists the full method names of a service ("/pkg.Svc/Method"):
// unary methods first, then streams, in the order of desc.
func Methods(desc grpc.ServiceDesc) []Method {
	var out []Method
	for _, m := range desc.Methods {
		out = append(out, Method{Name: "/" + desc.ServiceName + "/" + m.MethodName})
	}
	for _, s := range desc.Streams {
		out = append(out, Method{Name: "/" + desc.ServiceName + "/" + s.StreamName, Stream: &grpc.StreamDesc{
			StreamName: s.StreamName, ServerStreams: s.ServerStreams, ClientStreams: s.ClientStreams,
		}})
	}
	return out
}

// Method is one RPC of a service; Stream is nil for a unary one.
type Method struct {
	Name   string
	Stream *grpc.StreamDesc
}

// Call sends msgs to m as raw request messages (a unary method gets the
// first one, or an empty message) and reads replies until the RPC ends.
// It returns the RPC's error, which a server must always give as a gRPC
// status; an error that is not one is returned wrapped in ErrNotStatus.
func Call(ctx context.Context, conn grpc.ClientConnInterface, m Method, msgs [][]byte) error {
	err := call(ctx, conn, m, msgs)
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); !ok {
		return fmt.Errorf("%w: %s: %v", ErrNotStatus, m.Name, err)
	}
	return err
}

// ErrNotStatus marks an RPC error that is not a gRPC status.
var ErrNotStatus = errors.New("fuzzutil: RPC error is not a gRPC status")

func call(ctx context.Context, conn grpc.ClientConnInterface, m Method, msgs [][]byte) error {
	codec := grpc.ForceCodec(rawCodec{})
	if m.Stream == nil {
		in := []byte{}
		if len(msgs) > 0 {
			in = msgs[0]
		}
		var out []byte
		return conn.Invoke(ctx, m.Name, &in, &out, codec)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, m.Stream, m.Name, codec)
	if err != nil {
		return err
	}
	if !m.Stream.ClientStreams && len(msgs) > 1 {
		msgs = msgs[:1]
	}
	for i := range msgs {
		if err := st.SendMsg(&msgs[i]); err != nil {
			break // the server ended the stream; RecvMsg says why
		}
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	for {
		var out []byte
		if err := st.RecvMsg(&out); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// Split cuts fuzz input into messages: each is a 2-byte big-endian length
// and that many bytes (fewer at the end of data). At most max messages.
func Split(data []byte, max int) [][]byte {
	var out [][]byte
	for len(data) > 0 && len(out) < max {
		if len(data) < 2 {
			out = append(out, data)
			break
		}
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// Join is Split's inverse, for seeds.
func Join(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}
