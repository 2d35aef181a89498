package store_test

// Fuzz targets for every decoder of network bytes a tablet server has: each
// Tablet RPC's request (decoding and validation), SST ingest validation,
// and the snapshot stream reader. The bytes go over a real gRPC connection
// to a one-store cluster (internal/fuzzutil), so they meet exactly the code
// a hostile client would reach. A panic fails the target (gRPC does not
// recover handler panics), and so does an error that is not a gRPC status.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/golang/snappy"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/fuzzutil"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// fuzzCallTimeout bounds one fuzzed RPC; a correct server answers a
// malformed request at once, and a well-formed one within a raft round.
const fuzzCallTimeout = 10 * time.Second

// fuzzEnv is a one-store cluster holding tablet 1 over the whole of
// storetest.TestTable, and a raw connection to it.
func fuzzEnv(f *testing.F) (*storetest.Cluster, *grpc.ClientConn) {
	c := storetest.Start(f, 1, nil)
	c.PutSchema(storetest.TestTable)
	start, end := storetest.TableSpan()
	c.Bootstrap(1, start, end, 1)
	conn, err := grpc.NewClient(c.Nodes[1].Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	return c, conn
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkRPCError fails t on an error a server must never give: one that is
// not a gRPC status.
func checkRPCError(t *testing.T, err error) {
	if errors.Is(err, fuzzutil.ErrNotStatus) {
		t.Fatal(err)
	}
}

// FuzzTabletRequests sends arbitrary request messages to every Tablet RPC
// (method picks one; data is cut into stream messages by fuzzutil.Split).
func FuzzTabletRequests(f *testing.F) {
	_, conn := fuzzEnv(f)
	methods := fuzzutil.Methods(kvpb.Tablet_ServiceDesc)
	index := map[string]uint8{}
	for i, m := range methods {
		index[m.Name] = uint8(i)
	}
	hdr := &kvpb.RequestHeader{TabletId: 1, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	tbl := storetest.TestTable.TableId
	set := storetest.SetCell("f", "q", "v")
	seeds := map[string][]proto.Message{
		"Get":               {&kvpb.GetRequest{Header: hdr, TableId: tbl, RowKey: []byte("r")}},
		"Scan":              {&kvpb.ScanRequest{Header: hdr, TableId: tbl, StartRow: []byte("a"), Limit: 5}},
		"MutateRow":         {&kvpb.MutateRowRequest{Header: hdr, TableId: tbl, RowKey: []byte("r"), Mutations: []*kvpb.Mutation{set}}},
		"CheckAndMutateRow": {&kvpb.CheckAndMutateRowRequest{Header: hdr, TableId: tbl, RowKey: []byte("r"), TrueMutations: []*kvpb.Mutation{set}}},
		"ReadModifyWriteRow": {&kvpb.ReadModifyWriteRowRequest{Header: hdr, TableId: tbl, RowKey: []byte("r"),
			Rules: []*kvpb.ReadModifyWriteRule{{Family: "f", Qualifier: []byte("n"), Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: 1}}}}},
		"BatchMutate": {&kvpb.BatchMutateRequest{Header: hdr, TableId: tbl, Entries: []*kvpb.BatchMutateRequest_Entry{
			{RowKey: []byte("a"), Mutations: []*kvpb.Mutation{set}}, {RowKey: []byte("b"), Mutations: []*kvpb.Mutation{set}, Index: 1}}}},
		"PutTableSchema": {&kvpb.PutTableSchemaRequest{Schema: storetest.TestTable}},
		"SplitTablet":    {&kvpb.SplitTabletRequest{Header: hdr, SplitKey: keys.RowKey(tbl, []byte("m")), NewTabletId: 2, NewReplicaIds: []uint64{1}}},
		"TransferLeader": {&kvpb.TransferLeaderRequest{Header: hdr}},
		"ChangeReplicas": {&kvpb.ChangeReplicasRequest{Header: hdr}},
		"MergeTablets":   {&kvpb.MergeTabletsRequest{}},
		"TabletStatus":   {&kvpb.TabletStatusRequest{TabletId: 1}},
		"IngestSST":      {&kvpb.IngestSSTRequest{Header: hdr, TableId: tbl, Checksum: make([]byte, 32), Size: 10}},
		"UploadSST":      {&kvpb.UploadSSTRequest{TabletId: 1, Checksum: make([]byte, 32), Size: 3, Raw: true, Chunk: []byte("abc")}},
		"BootstrapTablet": {&kvpb.BootstrapTabletRequest{Tablet: &metapb.TabletDescriptor{TabletId: 9, StartKey: keys.TablePrefix(99), EndKey: keys.PrefixEnd(keys.TablePrefix(99)),
			Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}, Replicas: []*metapb.Replica{{ReplicaId: 1, StoreId: 1}}}}},
	}
	for _, m := range methods {
		short := m.Name[len("/"+kvpb.Tablet_ServiceDesc.ServiceName+"/"):]
		f.Add(index[m.Name], []byte{})
		for _, msg := range seeds[short] {
			f.Add(index[m.Name], fuzzutil.Join(mustMarshal(f, msg)))
		}
	}
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		m := methods[int(method)%len(methods)]
		ctx, cancel := context.WithTimeout(context.Background(), fuzzCallTimeout)
		defer cancel()
		checkRPCError(t, fuzzutil.Call(ctx, conn, m, fuzzutil.Split(data, 8)))
	})
}

// FuzzIngestSST stages arbitrary bytes as an SST (named by their SHA-256,
// as an importer would) and asks for them to be ingested: the store's SST
// validation must refuse every file that breaks the ingest rules with a
// typed error, and never panic reading one.
func FuzzIngestSST(f *testing.F) {
	c, _ := fuzzEnv(f)
	cl := c.Nodes[1].Client
	for i, n := range []int{1, 3, 40} {
		sst, _ := buildSST(f, fmt.Sprintf("s%d", i), n, "f")
		f.Add(sst.Data, sst.Smallest, sst.Largest, sst.KeyCount, sst.MaxTimestamp)
	}
	other, _ := buildSST(f, "x", 2, "nofamily")
	f.Add(other.Data, other.Smallest, other.Largest, other.KeyCount, other.MaxTimestamp)
	f.Add([]byte("not an sst"), []byte{}, []byte{}, uint64(0), int64(0))
	f.Fuzz(func(t *testing.T, data, smallest, largest []byte, keyCount uint64, maxTS int64) {
		if len(data) == 0 {
			return // UploadSST refuses an empty file before it looks at it
		}
		sum := sha256.Sum256(data)
		sst := &importer.SST{Data: data, Checksum: sum[:], CRC32C: crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)),
			Smallest: smallest, Largest: largest, KeyCount: keyCount, MaxTimestamp: maxTS}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzCallTimeout)
		defer cancel()
		if _, err := importer.UploadSST(ctx, cl, 1, sst); err != nil {
			t.Fatalf("upload of %d bytes: %v", len(data), err)
		}
		_, err := cl.IngestSST(ctx, importer.IngestRequest(1, nil, storetest.TestTable.TableId, sst))
		checkRPCError(t, err)
	})
}

// FuzzSnapshotStream sends arbitrary snapshot streams to the raft
// transport: header is a SnapshotHeader message; pairs is cut into chunks
// of (uvarint len, key, uvarint len, value) runs, which the target
// compresses and checksums as a sender would (so the fuzzer gets past the
// checksums) unless badCRC is set.
func FuzzSnapshotStream(f *testing.F) {
	_, conn := fuzzEnv(f)
	client := transportpb.NewRaftTransportClient(conn)
	span := keys.TablePrefix(42)
	desc := &metapb.TabletDescriptor{TabletId: 5, StartKey: span, EndKey: keys.PrefixEnd(span),
		Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}, Replicas: []*metapb.Replica{{ReplicaId: 1, StoreId: 1}, {ReplicaId: 2, StoreId: 2}}}
	sd := mustMarshal(f, &raftcmdpb.SnapshotData{SnapshotId: 1, Applied: &raftcmdpb.AppliedState{Index: 10, Term: 5}, Tablet: desc})
	msg := raftpb.Message{Type: raftpb.MsgSnap, To: 1, From: 2, Term: 5, Snapshot: &raftpb.Snapshot{
		Data: sd, Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 5, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}}}}
	rm, err := msg.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	header := mustMarshal(f, &transportpb.SnapshotHeader{TabletId: 5, FromStore: 2, ToStore: 1, RaftMessage: rm, Tablet: desc})
	var pairs []byte
	for i := 0; i < 3; i++ {
		k := keys.DataKey(keys.CellKey(42, []byte(fmt.Sprintf("r%d", i)), "f", []byte("q"), 7))
		pairs = binary.AppendUvarint(pairs, uint64(len(k)))
		pairs = append(pairs, k...)
		pairs = binary.AppendUvarint(pairs, 1)
		pairs = append(pairs, 'v')
	}
	f.Add(header, fuzzutil.Join(pairs), false)
	f.Add(header, fuzzutil.Join(pairs[:10], pairs[10:]), false)
	f.Add(header, fuzzutil.Join(pairs), true)
	f.Add([]byte{}, []byte{}, false)
	crc := crc32.MakeTable(crc32.Castagnoli)
	f.Fuzz(func(t *testing.T, header, pairs []byte, badCRC bool) {
		var h transportpb.SnapshotHeader
		if err := proto.Unmarshal(header, &h); err != nil {
			return // the transport would refuse the whole message
		}
		runs := fuzzutil.Split(pairs, 16)
		if len(runs) == 0 {
			runs = [][]byte{nil}
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzCallTimeout)
		defer cancel()
		st, err := client.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, run := range runs {
			ch := &transportpb.SnapshotChunk{Data: snappy.Encode(nil, run), Crc32C: crc32.Checksum(run, crc), Final: i == len(runs)-1}
			if i == 0 {
				ch.Header = &h
			}
			if badCRC {
				ch.Crc32C++
			}
			if st.Send(ch) != nil {
				break
			}
		}
		_, err = st.CloseAndRecv()
		checkRPCError(t, err)
	})
}
