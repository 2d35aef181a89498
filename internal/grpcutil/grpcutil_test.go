package grpcutil_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/proto/kvpb"
)

// bigRow answers a Get with one value of TableId MiB (capped at 32) that
// ends with the request's row key length.
type bigRow struct{ kvpb.UnimplementedTabletServer }

func (bigRow) Get(_ context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	v := bytes.Repeat([]byte{'x'}, int(min(req.TableId, 32))<<20)
	v = append(v, []byte(strconv.Itoa(len(req.RowKey)))...)
	return &kvpb.GetResponse{Row: &kvpb.Row{Cells: []*kvpb.Cell{{Value: v}}}}, nil
}

// A server and a client built with these options exchange messages far
// above gRPC's 4 MiB default, both ways; a client without them cannot.
func TestMessageLimitsMatch(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpcutil.ServerOptions(nil)...)
	kvpb.RegisterTabletServer(srv, bigRow{})
	go func() { _ = srv.Serve(lis) }() //stop:short-lived test server, stopped below
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cc, err := grpc.NewClient(lis.Addr().String(), grpcutil.DialOptions(nil)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// A 16 MiB reply to an 8 MiB request.
	resp, err := kvpb.NewTabletClient(cc).Get(ctx, &kvpb.GetRequest{TableId: 16, RowKey: bytes.Repeat([]byte{1}, 8<<20)})
	if err != nil {
		t.Fatalf("16 MiB reply to an 8 MiB request: %v", err)
	}
	if v := resp.Row.Cells[0].Value; len(v) < 16<<20 || string(v[16<<20:]) != strconv.Itoa(8<<20) {
		t.Fatalf("reply of %d bytes does not echo the 8 MiB request", len(v))
	}

	plain, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := kvpb.NewTabletClient(plain).Get(ctx, &kvpb.GetRequest{TableId: 16}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a client with gRPC's defaults got %v, want ResourceExhausted (the test no longer shows the limits matter)", err)
	}
}
