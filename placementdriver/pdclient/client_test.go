package pdclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// slowPD answers CreateTable only after the caller gave up.
type slowPD struct {
	pdpb.UnimplementedPDServer
}

func (slowPD) CreateTable(ctx context.Context, _ *pdpb.CreateTableRequest) (*pdpb.CreateTableResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A deadline that passes while a reachable member works on the request
// is reported as such (DeadlineError), not as "no leader reachable".
func TestDeadlineWhileMemberWorksIsNamed(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pdpb.RegisterPDServer(srv, slowPD{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	cl, err := pdclient.New([]string{lis.Addr().String()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = cl.CreateTable(ctx, &pdpb.CreateTableRequest{Name: "t"})
	var de *pdclient.DeadlineError
	if !errors.As(err, &de) || de.Addr != lis.Addr().String() {
		t.Fatalf("got %v, want a DeadlineError naming %s", err, lis.Addr())
	}
	if strings.Contains(err.Error(), "no placement driver leader reachable") {
		t.Fatalf("error misstates the cause: %v", err)
	}
	t.Log(err)
}
