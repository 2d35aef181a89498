package placementdriver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/fuzzutil"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// FuzzPDRequests sends arbitrary request messages, over a real gRPC
// connection, to every RPC of a one-member PD (method picks the RPC): each
// must be refused or served with a gRPC status, never a panic (which gRPC
// does not recover: the target would crash). PD has no stores here, so a
// request that needs one (CREATE TABLE places tablets) fails by its
// deadline, which the target keeps short.
func FuzzPDRequests(f *testing.F) {
	c := startPD(f, 1, nil)
	cl := c.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.leader(ctx, cl)
	conn, err := grpc.NewClient(c.endpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	methods := fuzzutil.Methods(pdpb.PD_ServiceDesc)
	seeds := map[string]proto.Message{
		"RegisterStore":   &pdpb.RegisterStoreRequest{Store: &metapb.Store{Address: "127.0.0.1:1"}},
		"StoreHeartbeat":  &pdpb.StoreHeartbeatRequest{StoreId: 1, Stats: &pdpb.StoreStats{}},
		"TabletHeartbeat": &pdpb.TabletHeartbeatRequest{StoreId: 1, Reports: []*pdpb.TabletReport{{}}},
		"GetTablet":       &pdpb.GetTabletRequest{Key: []byte("k")},
		"GetTabletByID":   &pdpb.GetTabletByIDRequest{TabletId: 1},
		"ScanTablets":     &pdpb.ScanTabletsRequest{StartKey: []byte("a"), Limit: 3},
		"AllocID":         &pdpb.AllocIDRequest{},
		"GetTimestamp":    &pdpb.GetTimestampRequest{},
		"CreateTable":     &pdpb.CreateTableRequest{Name: "t", Families: []*metapb.FamilySchema{{Name: "f"}}, SplitRows: [][]byte{[]byte("m")}},
		"DropTable":       &pdpb.DropTableRequest{Name: "t"},
		"GetTable":        &pdpb.GetTableRequest{Name: "t"},
		"SetSQLSchema":    &pdpb.SetSQLSchemaRequest{Name: "t", SqlSchema: []byte("{}")},
		"GetConfig":       &pdpb.GetConfigRequest{},
		"SetConfig":       &pdpb.SetConfigRequest{Key: "max-replicas", Value: "3"},
		"AddOperator":     &pdpb.AddOperatorRequest{TabletId: 1, Op: &pdpb.AddOperatorRequest_SplitMiddle{SplitMiddle: true}},
		"DrainStore":      &pdpb.DrainStoreRequest{StoreId: 1},
		"ReportSplit":     &pdpb.ReportSplitRequest{StoreId: 1, Reports: []*pdpb.TabletReport{{}}},
		"SplitTablets":    &pdpb.SplitTabletsRequest{SplitKeys: [][]byte{[]byte("k")}},
	}
	for i, m := range methods {
		f.Add(uint8(i), []byte{})
		if s, ok := seeds[m.Name[len("/"+pdpb.PD_ServiceDesc.ServiceName+"/"):]]; ok {
			b, err := proto.Marshal(s)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(i), fuzzutil.Join(b))
		}
	}
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		m := methods[int(method)%len(methods)]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := fuzzutil.Call(ctx, conn, m, fuzzutil.Split(data, 4)); errors.Is(err, fuzzutil.ErrNotStatus) {
			t.Fatal(err)
		}
	})
}
