package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// fakePD is an in-process PD with canned data.
type fakePD struct {
	pdpb.UnimplementedPDServer

	mu      sync.Mutex
	stores  []*pdpb.StoreInfo
	tablets []*pdpb.TabletInfo // sorted by start key
	tables  []*metapb.TableSchema
	config  map[string]string
	ops     []*pdpb.OperatorInfo
	// unimplemented: ListOperators, AddOperator and DrainStore answer
	// Unimplemented, as an older or partial PD server would: ctl must surface it.
	unimplemented bool
	added         []*pdpb.AddOperatorRequest
	drained       []uint64
	scans         int
}

var ctlTestNow = time.UnixMilli(1_700_000_000_000)

func newFakePD() *fakePD {
	desc := func(id uint64, start, end string, stores ...uint64) *metapb.TabletDescriptor {
		d := &metapb.TabletDescriptor{TabletId: id, StartKey: []byte(start), EndKey: []byte(end), Epoch: &metapb.Epoch{Version: id + 1, ConfVersion: 3}}
		for i, s := range stores {
			d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: id*10 + uint64(i), StoreId: s})
		}
		return d
	}
	t2 := desc(2, "b", "c", 1, 2, 3)
	t2.Replicas[2].Role = metapb.ReplicaRole_LEARNER
	return &fakePD{
		stores: []*pdpb.StoreInfo{
			{Store: &metapb.Store{StoreId: 2, Address: "10.0.0.2:20160", Labels: map[string]string{"zone": "b"}}, State: pdpb.StoreState_DOWN, Stats: &pdpb.StoreStats{UsedBytes: 3 << 30, CapacityBytes: 100 << 30, AvailableBytes: 97 << 30}, LastHeartbeatUnixMs: ctlTestNow.Add(-2 * time.Hour).UnixMilli()},
			{Store: &metapb.Store{StoreId: 1, Address: "10.0.0.1:20160", Labels: map[string]string{"zone": "a", "host": "h1"}}, State: pdpb.StoreState_UP, Stats: &pdpb.StoreStats{UsedBytes: 1536, CapacityBytes: 1 << 40, AvailableBytes: 1<<40 - 1536}, LastHeartbeatUnixMs: ctlTestNow.Add(-1500 * time.Millisecond).UnixMilli()},
			{Store: &metapb.Store{StoreId: 3, Address: "10.0.0.3:20160"}, State: pdpb.StoreState_OFFLINE},
		},
		tablets: []*pdpb.TabletInfo{
			{Tablet: desc(1, "", "b", 1, 2, 3), LeaderStoreId: 1, Stats: &pdpb.TabletStats{ApproximateSize: 96 << 20, ApproximateKeys: 1000}},
			{Tablet: t2, LeaderStoreId: 2, Stats: &pdpb.TabletStats{ApproximateSize: 512}},
			{Tablet: desc(3, "c", "d", 1, 2), LeaderStoreId: 1},
			{Tablet: desc(4, "d", "e", 1, 2), LeaderStoreId: 0},
			{Tablet: desc(5, "e", "", 2, 3), LeaderStoreId: 3},
		},
		tables: []*metapb.TableSchema{
			{TableId: 2, Name: "users", Version: 4, Families: []*metapb.FamilySchema{{Name: "p", MaxVersions: 3}, {Name: "t", MaxAgeMs: 3600_000}}, SplitRows: [][]byte{[]byte("m")}},
			{TableId: 1, Name: "kv", Version: 1, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}},
		},
		config: map[string]string{"max-replicas": "3", "split-size": "96MiB", "location-labels": ""},
		ops: []*pdpb.OperatorInfo{
			{TabletId: 7, Kind: "move", Description: "move replica from store 1 to store 4", Step: "add learner on store 4", CreatedUnixMs: ctlTestNow.Add(-3 * time.Second).UnixMilli()},
			{TabletId: 2, Kind: "transfer-leader", Description: "leader from store 2 to store 1", Step: "transfer leader", CreatedUnixMs: ctlTestNow.Add(-90 * time.Second).UnixMilli()},
		},
	}
}

func (f *fakePD) GetMembers(context.Context, *pdpb.GetMembersRequest) (*pdpb.GetMembersResponse, error) {
	m := []*pdpb.Member{
		{Name: "pd2", MemberId: 2, ClientAddr: "10.0.0.2:2379", PeerAddr: "10.0.0.2:2380"},
		{Name: "pd1", MemberId: 1, ClientAddr: "10.0.0.1:2379", PeerAddr: "10.0.0.1:2380"},
	}
	return &pdpb.GetMembersResponse{ClusterId: 42, Members: m, Leader: m[0]}, nil
}

func (f *fakePD) ListStores(context.Context, *pdpb.ListStoresRequest) (*pdpb.ListStoresResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &pdpb.ListStoresResponse{Stores: f.stores}, nil
}

func (f *fakePD) ScanTablets(_ context.Context, req *pdpb.ScanTabletsRequest) (*pdpb.ScanTabletsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scans++
	resp := &pdpb.ScanTabletsResponse{}
	for _, t := range f.tablets {
		d := t.Tablet
		if len(d.EndKey) != 0 && bytes.Compare(d.EndKey, req.StartKey) <= 0 {
			continue
		}
		if len(req.EndKey) != 0 && bytes.Compare(d.StartKey, req.EndKey) >= 0 {
			break
		}
		if req.Limit > 0 && len(resp.Tablets) == int(req.Limit) {
			break
		}
		resp.Tablets = append(resp.Tablets, t)
	}
	return resp, nil
}

func (f *fakePD) ListTables(context.Context, *pdpb.ListTablesRequest) (*pdpb.ListTablesResponse, error) {
	return &pdpb.ListTablesResponse{Tables: f.tables}, nil
}

func (f *fakePD) GetConfig(context.Context, *pdpb.GetConfigRequest) (*pdpb.GetConfigResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := map[string]string{}
	for k, v := range f.config {
		cfg[k] = v
	}
	return &pdpb.GetConfigResponse{Config: cfg}, nil
}

func (f *fakePD) SetConfig(_ context.Context, req *pdpb.SetConfigRequest) (*pdpb.SetConfigResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.config[req.Key]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "unknown config key %q", req.Key)
	}
	if req.Key == "split-size" && req.Value == "262144" {
		req.Value = "256KiB" // as PD normalises sizes
	}
	f.config[req.Key] = req.Value
	return &pdpb.SetConfigResponse{}, nil
}

func (f *fakePD) ListOperators(context.Context, *pdpb.ListOperatorsRequest) (*pdpb.ListOperatorsResponse, error) {
	if f.unimplemented {
		return f.UnimplementedPDServer.ListOperators(context.Background(), nil)
	}
	return &pdpb.ListOperatorsResponse{Operators: f.ops}, nil
}

func (f *fakePD) AddOperator(_ context.Context, req *pdpb.AddOperatorRequest) (*pdpb.AddOperatorResponse, error) {
	if f.unimplemented {
		return f.UnimplementedPDServer.AddOperator(context.Background(), nil)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.TabletId == 404 {
		return nil, status.Error(codes.NotFound, "tablet 404 not found")
	}
	f.added = append(f.added, proto.Clone(req).(*pdpb.AddOperatorRequest))
	op := &pdpb.OperatorInfo{TabletId: req.TabletId, Step: "step 1", CreatedUnixMs: ctlTestNow.UnixMilli()}
	switch o := req.Op.(type) {
	case *pdpb.AddOperatorRequest_SplitKey:
		op.Kind, op.Description = "split", "split at "+string(o.SplitKey)
	case *pdpb.AddOperatorRequest_SplitMiddle:
		op.Kind, op.Description = "split", "split at the middle"
	case *pdpb.AddOperatorRequest_TransferLeaderTo:
		op.Kind, op.Description = "transfer-leader", "transfer leader"
	case *pdpb.AddOperatorRequest_Move:
		op.Kind, op.Description = "move", "move replica"
	}
	return &pdpb.AddOperatorResponse{Operator: op}, nil
}

func (f *fakePD) DrainStore(_ context.Context, req *pdpb.DrainStoreRequest) (*pdpb.DrainStoreResponse, error) {
	if f.unimplemented {
		return f.UnimplementedPDServer.DrainStore(context.Background(), nil)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained = append(f.drained, req.StoreId)
	return &pdpb.DrainStoreResponse{}, nil
}

// startFakePD serves f on 127.0.0.1 and returns its address.
func startFakePD(t *testing.T, f *fakePD) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	pdpb.RegisterPDServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// runCtlCmd runs `shale ctl --pd addr args...` and returns stdout,
// stderr and the error.
func runCtlCmd(t *testing.T, addr string, args ...string) (string, string, error) {
	t.Helper()
	for _, k := range []string{"SHALE_CONFIG", "SHALE_LOG_LEVEL", "SHALE_CTL_PD", "SHALE_CTL_JSON", "SHALE_CTL_TIMEOUT"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	prevLog, prevNow := slog.Default(), ctlNow
	t.Cleanup(func() { slog.SetDefault(prevLog); ctlNow = prevNow })
	ctlNow = func() time.Time { return ctlTestNow }
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"ctl", "--pd", addr, "--timeout", "5s"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// ctlJSON runs a ctl command with --json and decodes its output.
func ctlJSON(t *testing.T, addr string, out any, args ...string) {
	t.Helper()
	stdout, stderr, err := runCtlCmd(t, addr, append(args, "--json")...)
	require.NoError(t, err, stderr)
	require.NoError(t, json.Unmarshal([]byte(stdout), out), stdout)
}

// fieldsOf returns the sorted keys of a JSON object.
func fieldsOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lines splits output into lines with trailing spaces trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	return out
}

func TestCtlStores(t *testing.T) {
	f := newFakePD()
	addr := startFakePD(t, f)
	prev := ctlPageSize
	ctlPageSize = 2 // count tablets over several ScanTablets pages
	t.Cleanup(func() { ctlPageSize = prev })

	stdout, _, err := runCtlCmd(t, addr, "stores", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[
	  {"id": 1, "address": "10.0.0.1:20160", "state": "Up", "labels": {"host": "h1", "zone": "a"},
	   "tablet_count": 4, "leader_count": 2, "used_bytes": 1536, "capacity_bytes": 1099511627776,
	   "available_bytes": 1099511626240, "last_heartbeat_unix_ms": 1699999998500, "snapshot_limit": 0},
	  {"id": 2, "address": "10.0.0.2:20160", "state": "Down", "labels": {"zone": "b"},
	   "tablet_count": 5, "leader_count": 1, "used_bytes": 3221225472, "capacity_bytes": 107374182400,
	   "available_bytes": 104152956928, "last_heartbeat_unix_ms": 1699992800000, "snapshot_limit": 0},
	  {"id": 3, "address": "10.0.0.3:20160", "state": "Offline", "labels": {},
	   "tablet_count": 3, "leader_count": 1, "used_bytes": 0, "capacity_bytes": 0,
	   "available_bytes": 0, "last_heartbeat_unix_ms": 0, "snapshot_limit": 0}
	]`, stdout)
	require.Equal(t, 3, f.scans, "5 tablets in pages of 2")

	stdout, _, err = runCtlCmd(t, addr, "stores")
	require.NoError(t, err)
	require.Equal(t, []string{
		"ID  ADDRESS         STATE    LABELS          TABLETS  LEADERS  USED    AVAILABLE  CAPACITY  HEARTBEAT",
		"1   10.0.0.1:20160  Up       host=h1,zone=a  4        2        1.5KiB  1TiB       1TiB      1.5s ago",
		"2   10.0.0.2:20160  Down     zone=b          5        1        3GiB    97GiB      100GiB    2h0m0s ago",
		"3   10.0.0.3:20160  Offline  -               3        1        0B      0B         0B        -",
	}, lines(stdout))
}

func TestCtlTablets(t *testing.T) {
	f := newFakePD()
	addr := startFakePD(t, f)

	var all []map[string]any
	ctlJSON(t, addr, &all, "tablets")
	require.Len(t, all, 5)
	for _, tb := range all {
		require.Equal(t, []string{"approximate_keys", "approximate_size", "end_key", "epoch", "id", "leader_store_id", "peers", "read_bytes_per_sec", "read_qps", "start_key", "write_bytes_per_sec", "write_qps"}, fieldsOf(tb))
	}

	stdout, _, err := runCtlCmd(t, addr, "tablets", "--start", "62", "--limit", "1", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[{
	  "id": 2, "start_key": "62", "end_key": "63", "epoch": {"version": 3, "conf_version": 3},
	  "peers": [{"replica_id": 20, "store_id": 1, "role": "voter"},
	            {"replica_id": 21, "store_id": 2, "role": "voter"},
	            {"replica_id": 22, "store_id": 3, "role": "learner"}],
	  "leader_store_id": 2, "approximate_size": 512, "approximate_keys": 0, "read_qps": 0, "write_qps": 0,
	  "read_bytes_per_sec": 0, "write_bytes_per_sec": 0
	}]`, stdout)

	stdout, _, err = runCtlCmd(t, addr, "tablets", "--end", "63")
	require.NoError(t, err)
	require.Equal(t, []string{
		"ID  START_KEY  END_KEY  EPOCH  LEADER  PEERS           SIZE   KEYS",
		"1   (min)      62       2/3    1       1,2,3           96MiB  1000",
		"2   62         63       3/3    2       1,2,3(learner)  512B   0",
	}, lines(stdout))

	stdout, _, err = runCtlCmd(t, addr, "tablets", "--start", "64")
	require.NoError(t, err)
	require.Equal(t, []string{
		"ID  START_KEY  END_KEY  EPOCH  LEADER  PEERS  SIZE  KEYS",
		"4   64         65       5/3    -       1,2    0B    0",
		"5   65         (max)    6/3    3       2,3    0B    0",
	}, lines(stdout))
}

func TestCtlTablesAndConfigAndMembers(t *testing.T) {
	f := newFakePD()
	addr := startFakePD(t, f)

	stdout, _, err := runCtlCmd(t, addr, "tables", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[
	  {"id": 1, "name": "kv", "version": 1, "families": [{"name": "v", "max_versions": 1, "max_age_ms": 0}], "split_rows": []},
	  {"id": 2, "name": "users", "version": 4, "families": [{"name": "p", "max_versions": 3, "max_age_ms": 0}, {"name": "t", "max_versions": 0, "max_age_ms": 3600000}], "split_rows": ["6d"]}
	]`, stdout)
	stdout, _, err = runCtlCmd(t, addr, "tables")
	require.NoError(t, err)
	require.Equal(t, []string{
		"ID  NAME   VERSION  FAMILIES                     SPLIT_ROWS",
		"1   kv     1        v(versions=1)                0",
		"2   users  4        p(versions=3),t(age=1h0m0s)  1",
	}, lines(stdout))

	stdout, _, err = runCtlCmd(t, addr, "config", "show", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `{"max-replicas": "3", "split-size": "96MiB", "location-labels": ""}`, stdout)
	stdout, _, err = runCtlCmd(t, addr, "config", "show")
	require.NoError(t, err)
	require.Equal(t, []string{
		"KEY              VALUE",
		"location-labels  -",
		"max-replicas     3",
		"split-size       96MiB",
	}, lines(stdout))

	stdout, _, err = runCtlCmd(t, addr, "config", "set", "split-size", "262144")
	require.NoError(t, err)
	require.Equal(t, "split-size = 256KiB\n", stdout)
	stdout, _, err = runCtlCmd(t, addr, "config", "set", "max-replicas", "5", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `{"key": "max-replicas", "value": "5"}`, stdout)
	require.Equal(t, "5", f.config["max-replicas"])

	_, stderr, err := runCtlCmd(t, addr, "config", "set", "nope", "1")
	require.Error(t, err)
	require.Contains(t, err.Error(), `config set: unknown config key "nope" (InvalidArgument)`)
	require.Contains(t, stderr, "unknown config key")

	stdout, _, err = runCtlCmd(t, addr, "members", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `{"cluster_id": 42, "leader": "pd2", "members": [
	  {"name": "pd1", "member_id": 1, "client_addr": "10.0.0.1:2379", "peer_addr": "10.0.0.1:2380", "leader": false},
	  {"name": "pd2", "member_id": 2, "client_addr": "10.0.0.2:2379", "peer_addr": "10.0.0.2:2380", "leader": true}
	]}`, stdout)
	stdout, _, err = runCtlCmd(t, addr, "members")
	require.NoError(t, err)
	require.Equal(t, []string{
		"NAME  ID  ROLE      CLIENT_ADDR    PEER_ADDR",
		"pd1   1   follower  10.0.0.1:2379  10.0.0.1:2380",
		"pd2   2   leader    10.0.0.2:2379  10.0.0.2:2380",
	}, lines(stdout))
}

func TestCtlOperators(t *testing.T) {
	f := newFakePD()
	addr := startFakePD(t, f)

	stdout, _, err := runCtlCmd(t, addr, "operators", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `[
	  {"tablet_id": 2, "kind": "transfer-leader", "description": "leader from store 2 to store 1", "step": "transfer leader", "created_unix_ms": 1699999910000},
	  {"tablet_id": 7, "kind": "move", "description": "move replica from store 1 to store 4", "step": "add learner on store 4", "created_unix_ms": 1699999997000}
	]`, stdout)
	stdout, _, err = runCtlCmd(t, addr, "operators")
	require.NoError(t, err)
	require.Equal(t, []string{
		"TABLET  KIND             STEP                    AGE        DESCRIPTION",
		"2       transfer-leader  transfer leader         1m30s ago  leader from store 2 to store 1",
		"7       move             add learner on store 4  3s ago     move replica from store 1 to store 4",
	}, lines(stdout))

	stdout, _, err = runCtlCmd(t, addr, "split", "5", "--key", "6b6579")
	require.NoError(t, err)
	require.Equal(t, "added split operator for tablet 5: split at key\n", stdout)
	stdout, _, err = runCtlCmd(t, addr, "split", "6", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `{"tablet_id": 6, "kind": "split", "description": "split at the middle", "step": "step 1", "created_unix_ms": 1700000000000}`, stdout)
	_, _, err = runCtlCmd(t, addr, "transfer-leader", "7", "3")
	require.NoError(t, err)
	_, _, err = runCtlCmd(t, addr, "move", "8", "1", "4")
	require.NoError(t, err)
	stdout, _, err = runCtlCmd(t, addr, "drain", "2", "--json")
	require.NoError(t, err)
	require.JSONEq(t, `{"store_id": 2, "draining": true}`, stdout)
	stdout, _, err = runCtlCmd(t, addr, "drain", "3")
	require.NoError(t, err)
	require.Contains(t, stdout, "store 3 is draining")

	require.Len(t, f.added, 4)
	require.Equal(t, []byte("key"), f.added[0].GetSplitKey())
	require.True(t, f.added[1].GetSplitMiddle())
	require.Equal(t, uint64(3), f.added[2].GetTransferLeaderTo())
	require.Equal(t, uint64(7), f.added[2].TabletId)
	require.Equal(t, uint64(1), f.added[3].GetMove().GetFromStore())
	require.Equal(t, uint64(4), f.added[3].GetMove().GetToStore())
	require.Equal(t, []uint64{2, 3}, f.drained)

	_, _, err = runCtlCmd(t, addr, "split", "404")
	require.EqualError(t, err, "split: tablet 404 not found (NotFound)")
}

func TestCtlSurfacesUnimplemented(t *testing.T) {
	f := newFakePD()
	f.unimplemented = true
	addr := startFakePD(t, f)
	for _, args := range [][]string{
		{"operators"}, {"split", "1"}, {"transfer-leader", "1", "2"}, {"move", "1", "2", "3"}, {"drain", "1"},
	} {
		stdout, stderr, err := runCtlCmd(t, addr, args...)
		require.Error(t, err, "%v", args)
		require.Empty(t, stdout)
		require.Contains(t, err.Error(), args[0]+": ")
		require.Contains(t, err.Error(), "not implemented (Unimplemented)")
		require.Contains(t, stderr, "not implemented")
	}
}

func TestCtlBadArgs(t *testing.T) {
	addr := startFakePD(t, newFakePD())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"split", "x"}, `split: TABLET_ID: want a positive integer, got "x"`},
		{[]string{"split"}, "split: want 1 argument(s) TABLET_ID, got 0"},
		{[]string{"split", "1", "--key", "zz"}, "split: --key: want a hex-encoded key"},
		{[]string{"split", "1", "--key", ""}, "split: --key: the split key must not be empty"},
		{[]string{"transfer-leader", "1", "0"}, `transfer-leader: STORE_ID: want a positive integer, got "0"`},
		{[]string{"move", "1", "2"}, "move: want 3 argument(s) TABLET_ID FROM_STORE TO_STORE, got 2"},
		{[]string{"move", "1", "2", "2"}, "move: FROM_STORE and TO_STORE are both 2"},
		{[]string{"drain", "abc"}, `drain: STORE_ID: want a positive integer, got "abc"`},
		{[]string{"config", "set", "split-size"}, "config set: want 2 argument(s) KEY VALUE, got 1"},
		{[]string{"tablets", "--start", "xyz"}, "tablets: --start: want a hex-encoded key"},
		{[]string{"tablets", "--limit", "-1"}, "tablets: --limit: want 0 (all) or more, got -1"},
		{[]string{"stores", "extra"}, "stores: want 0 argument(s)"},
	} {
		_, _, err := runCtlCmd(t, addr, tc.args...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

func TestCtlUnreachablePD(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"ctl", "--pd", addr, "--timeout", "300ms", "stores"})
	start := time.Now()
	err = root.Execute()
	require.Error(t, err)
	require.Contains(t, err.Error(), "stores: ")
	require.Less(t, time.Since(start), 5*time.Second)
}
