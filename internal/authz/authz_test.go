package authz

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	_ "github.com/shaledb/shale/proto/transportpb"
)

// registeredMethods walks every gRPC service of every Shale proto file
// linked into the test: "/package.Service/Method".
func registeredMethods() []string {
	var out []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "shale.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				out = append(out, "/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name()))
			}
		}
		return true
	})
	sort.Strings(out)
	return out
}

// generatedMethods reads the method names out of every *_grpc.pb.go under
// proto/, so a service in a package this test does not import is still
// found.
func generatedMethods(t *testing.T) []string {
	files, err := filepath.Glob("../../proto/*/*_grpc.pb.go")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	re := regexp.MustCompile(`_FullMethodName\s*=\s*"([^"]+)"`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range re.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
	}
	sort.Strings(out)
	return out
}

func TestEveryRPCIsClassified(t *testing.T) {
	registered := registeredMethods()
	generated := generatedMethods(t)
	require.Equal(t, generated, registered, "a proto package with services is not linked into this test; import it above")
	for _, m := range registered {
		r, ok := GRPC[m]
		if !ok || r.Class == Unclassified {
			t.Errorf("gRPC method %s has no classification in internal/authz/table.go", m)
			continue
		}
		if r.Class.needsTarget() && r.Targets == nil {
			t.Errorf("gRPC method %s is %s but names no target function", m, r.Class)
		}
	}
	for m := range GRPC {
		if !slices.Contains(registered, m) {
			t.Errorf("table.go classifies %s, which no service has", m)
		}
	}
}

func TestEveryThriftMethodIsClassified(t *testing.T) {
	procs := hbase.NewTHBaseServiceProcessor(nil).ProcessorMap()
	for name, p := range hbase1.NewHbaseProcessor(nil).ProcessorMap() {
		procs[name] = p
	}
	for name := range procs {
		if Thrift[name] == Unclassified {
			t.Errorf("Thrift method %s has no classification in internal/authz/table.go", name)
		}
	}
	for name := range Thrift {
		if _, ok := procs[name]; !ok {
			t.Errorf("table.go classifies Thrift method %s, which the service does not have", name)
		}
	}
}

func TestUnclassifiedIsRefusedToEveryone(t *testing.T) {
	a, _ := newTestAuthorizer(t, nil)
	for _, id := range []Identity{{Node: true}, {User: RootUser}, {User: "alice"}} {
		require.Equal(t, codes.PermissionDenied, status.Code(a.Check(id, Unclassified, nil)), id.String())
		require.Equal(t, codes.PermissionDenied, status.Code(a.CheckThrift(id, "noSuchMethod")), id.String())
		require.Equal(t, codes.PermissionDenied, status.Code(a.CheckSQL(id, "NOSUCH")), id.String())
	}
}

// staticPolicies is a PolicySource of a fixed state.
type staticPolicies struct{ p *Policy }

func (s staticPolicies) Policy() (*Policy, error) { return s.p, nil }

func newTestAuthorizer(t *testing.T, st *pdpb.AuthState) (*Authorizer, *Policy) {
	p := NewPolicy(st)
	a, err := New(Options{Mode: Secure, Policies: staticPolicies{p}, Resolver: testResolver{}})
	require.NoError(t, err)
	return a, p
}

const (
	tableA  = 100
	tableB  = 200
	tabletA = 7 // a tablet of table A
)

type testResolver struct{}

func (testResolver) TableID(name string) (uint64, bool, error) {
	switch name {
	case "a":
		return tableA, true, nil
	case "b":
		return tableB, true, nil
	}
	return 0, false, nil
}

func (testResolver) TabletTables(id uint64) ([]uint64, bool, error) {
	if id == tabletA {
		return []uint64{tableA}, true, nil
	}
	return nil, false, nil
}

func grant(p pdpb.AuthPermission, table uint64) *pdpb.AuthGrant {
	return &pdpb.AuthGrant{Permission: p, On: &pdpb.AuthGrant_TableId{TableId: table}}
}

func prefixGrantOf(p pdpb.AuthPermission, prefix string) *pdpb.AuthGrant {
	return &pdpb.AuthGrant{Permission: p, On: &pdpb.AuthGrant_KeyPrefix{KeyPrefix: []byte(prefix)}}
}

// testState: reader reads A, writer writes A, admin is cluster admin,
// carol reads A through the role "analysts", kvuser writes raw keys
// under "app/".
func testState(t *testing.T) *pdpb.AuthState {
	st, err := Edit(nil, func(st *pdpb.AuthState) error {
		for _, f := range []func() error{
			func() error { return GrantPermission(st, "reader", grant(pdpb.AuthPermission_READ, tableA)) },
			func() error { return GrantPermission(st, "writer", grant(pdpb.AuthPermission_WRITE, tableA)) },
			func() error {
				return GrantPermission(st, "admin", &pdpb.AuthGrant{Permission: pdpb.AuthPermission_ADMIN, On: &pdpb.AuthGrant_Cluster{Cluster: true}})
			},
			func() error { return CreateUser(st, "carol", "") },
			func() error { return GrantPermission(st, "analysts", grant(pdpb.AuthPermission_READ, tableA)) },
			func() error { return AddMember(st, "analysts", "carol") },
			func() error { return GrantPermission(st, "kvuser", prefixGrantOf(pdpb.AuthPermission_WRITE, "app/")) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	return st
}

func TestPolicyTables(t *testing.T) {
	a, _ := newTestAuthorizer(t, testState(t))
	at := func(id uint64) []Target { return []Target{{TableID: id}} }
	cases := []struct {
		user    string
		class   Class
		targets []Target
		ok      bool
	}{
		{"reader", DataRead, at(tableA), true},
		{"reader", DataWrite, at(tableA), false},
		{"reader", DataRead, at(tableB), false},
		{"reader", DataRead, []Target{{TableID: tableA}, {TableID: tableB}}, false},
		{"writer", DataRead, at(tableA), true}, // write implies read
		{"writer", DataWrite, at(tableA), true},
		{"writer", TableAdmin, at(tableA), false},
		{"writer", ClusterAdmin, nil, false},
		{"carol", DataRead, at(tableA), true}, // through the role
		{"carol", DataWrite, at(tableA), false},
		{"admin", DataWrite, at(tableB), true},
		{"admin", ClusterAdmin, nil, true},
		{"admin", Internal, nil, false},
		{RootUser, ClusterAdmin, nil, true},
		{"nobody", Authenticated, nil, true},
		{"nobody", DataRead, at(tableA), false},
		{"reader", DataRead, nil, false}, // names no table
	}
	for _, c := range cases {
		err := a.Check(Identity{User: c.user}, c.class, c.targets)
		if c.ok {
			require.NoError(t, err, "%s %s %v", c.user, c.class, c.targets)
		} else {
			require.Equal(t, codes.PermissionDenied, status.Code(err), "%s %s %v: %v", c.user, c.class, c.targets, err)
		}
	}
}

func TestPolicyKeyPrefixes(t *testing.T) {
	a, _ := newTestAuthorizer(t, testState(t))
	kv := Identity{User: "kvuser"}
	check := func(method string, req any) error {
		r := GRPC[method]
		targets, err := r.Targets(req, testResolver{})
		require.NoError(t, err)
		return a.Check(kv, r.Class, targets)
	}
	raw := uint64(RawTableID)
	require.NoError(t, check(kvpb.Tablet_MutateRow_FullMethodName, &kvpb.MutateRowRequest{TableId: raw, RowKey: []byte("app/x")}))
	require.NoError(t, check(kvpb.Tablet_Get_FullMethodName, &kvpb.GetRequest{TableId: raw, RowKey: []byte("app/x")}))
	require.Error(t, check(kvpb.Tablet_MutateRow_FullMethodName, &kvpb.MutateRowRequest{TableId: raw, RowKey: []byte("apq")}))
	require.Error(t, check(kvpb.Tablet_MutateRow_FullMethodName, &kvpb.MutateRowRequest{TableId: tableA, RowKey: []byte("app/x")}), "prefixes are for the raw table only")
	require.NoError(t, check(kvpb.Tablet_Scan_FullMethodName, &kvpb.ScanRequest{TableId: raw, StartRow: []byte("app/"), EndRow: []byte("app0")}))
	require.NoError(t, check(kvpb.Tablet_Scan_FullMethodName, &kvpb.ScanRequest{TableId: raw, StartRow: []byte("app/a"), EndRow: []byte("app/b")}))
	require.Error(t, check(kvpb.Tablet_Scan_FullMethodName, &kvpb.ScanRequest{TableId: raw, StartRow: []byte("app/"), EndRow: []byte("app1")}), "runs past the prefix")
	require.Error(t, check(kvpb.Tablet_Scan_FullMethodName, &kvpb.ScanRequest{TableId: raw, StartRow: []byte("app/")}), "runs to the end of the table")
	require.Error(t, check(kvpb.Tablet_Scan_FullMethodName, &kvpb.ScanRequest{TableId: raw, StartRow: []byte("ap"), EndRow: []byte("app0")}), "starts before the prefix")
	require.NoError(t, check(kvpb.Tablet_BatchMutate_FullMethodName, &kvpb.BatchMutateRequest{TableId: raw, Entries: []*kvpb.BatchMutateRequest_Entry{{RowKey: []byte("app/1")}, {RowKey: []byte("app/2")}}}))
	require.Error(t, check(kvpb.Tablet_BatchMutate_FullMethodName, &kvpb.BatchMutateRequest{TableId: raw, Entries: []*kvpb.BatchMutateRequest_Entry{{RowKey: []byte("app/1")}, {RowKey: []byte("other")}}}), "one entry outside")
	require.Error(t, check(kvpb.Tablet_IngestSST_FullMethodName, &kvpb.IngestSSTRequest{TableId: raw}), "ingest needs the whole table")
}

func TestGrantRevokeEdits(t *testing.T) {
	st := testState(t)
	v := st.Version
	st2, err := Edit(st, func(s *pdpb.AuthState) error { return RevokePermission(s, "reader", grant(0, tableA)) })
	require.NoError(t, err)
	require.Equal(t, v+1, st2.Version)
	a, _ := newTestAuthorizer(t, st2)
	require.Error(t, a.Check(Identity{User: "reader"}, DataRead, []Target{{TableID: tableA}}))
	a, _ = newTestAuthorizer(t, st)
	require.NoError(t, a.Check(Identity{User: "reader"}, DataRead, []Target{{TableID: tableA}}), "Edit must not change its input")

	_, err = Edit(st, func(s *pdpb.AuthState) error {
		return RevokePermission(s, "reader", grant(pdpb.AuthPermission_WRITE, tableA))
	})
	require.Equal(t, codes.NotFound, status.Code(err), "revoking a permission the role does not have")
	_, err = Edit(st, func(s *pdpb.AuthState) error { return CreateUser(s, "carol", "") })
	require.Equal(t, codes.AlreadyExists, status.Code(err))
	_, err = Edit(st, func(s *pdpb.AuthState) error { return CreateUser(s, "node", "") })
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = Edit(st, func(s *pdpb.AuthState) error { return DropUser(s, RootUser) })
	require.Equal(t, codes.FailedPrecondition, status.Code(err))
	_, err = Edit(st, func(s *pdpb.AuthState) error {
		return GrantPermission(s, "x", &pdpb.AuthGrant{Permission: pdpb.AuthPermission_READ, On: &pdpb.AuthGrant_Cluster{Cluster: true}})
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "the cluster takes admin only")

	// Removing carol from the role takes her grant away.
	st3, err := Edit(st, func(s *pdpb.AuthState) error { return RemoveMember(s, "analysts", "carol") })
	require.NoError(t, err)
	a, _ = newTestAuthorizer(t, st3)
	require.Error(t, a.Check(Identity{User: "carol"}, DataRead, []Target{{TableID: tableA}}))
	// Re-granting a table replaces the permission (here: downgrades).
	st4, err := Edit(st, func(s *pdpb.AuthState) error {
		return GrantPermission(s, "writer", grant(pdpb.AuthPermission_READ, tableA))
	})
	require.NoError(t, err)
	a, _ = newTestAuthorizer(t, st4)
	require.Error(t, a.Check(Identity{User: "writer"}, DataWrite, []Target{{TableID: tableA}}))
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$"), h)
	require.NotContains(t, h, "correct horse")
	h2, err := HashPassword("correct horse")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted")
	require.NoError(t, CheckPassword(h, "correct horse"))
	require.ErrorIs(t, CheckPassword(h, "wrong"), ErrBadPassword)
	require.ErrorIs(t, CheckPassword("", "x"), ErrBadPassword)
	for _, bad := range []string{"plain", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "$argon2i$v=19$m=1,t=1,p=1$x$y"} {
		require.Error(t, CheckPassword(bad, "x"), bad)
	}

	st, err := Edit(nil, func(s *pdpb.AuthState) error { return CreateUser(s, "alice", h) })
	require.NoError(t, err)
	a, _ := newTestAuthorizer(t, st)
	id, err := a.Authenticate("alice", "correct horse")
	require.NoError(t, err)
	require.Equal(t, Identity{User: "alice"}, id)
	_, err = a.Authenticate("alice", "nope")
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	_, err = a.Authenticate("bob", "correct horse")
	require.Equal(t, codes.Unauthenticated, status.Code(err))
}

func TestModeMustBeChosen(t *testing.T) {
	_, err := New(Options{})
	require.ErrorContains(t, err, "explicitly")
	_, err = New(Options{Mode: Secure})
	require.Error(t, err)
	a, err := New(Options{Mode: Insecure})
	require.NoError(t, err)
	require.NoError(t, a.Check(Identity{}, ClusterAdmin, nil), "insecure mode allows everything")
}

// fakeClock is the cache's clock; advancing it models time passing.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestCacheRefusesWhenStale(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	state := testState(t)
	var fail bool
	fetches := 0
	f := FetchFunc(func(_ context.Context, known uint64) (*pdpb.AuthState, error) {
		fetches++
		if fail {
			return nil, status.Error(codes.Unavailable, "pd down")
		}
		if known == state.Version {
			return nil, nil
		}
		return state, nil
	})
	c, err := NewCache(f, CacheOptions{Now: clock.now})
	require.NoError(t, err)
	_, err = c.Policy()
	require.Equal(t, codes.Unavailable, status.Code(err), "nothing loaded yet")
	require.NoError(t, c.Refresh(context.Background()))
	p, err := c.Policy()
	require.NoError(t, err)
	require.Equal(t, state.Version, p.Version())

	// An unchanged answer keeps the policy fresh.
	clock.t = clock.t.Add(DefaultStaleAfter)
	require.NoError(t, c.Refresh(context.Background()))
	clock.t = clock.t.Add(DefaultStaleAfter)
	_, err = c.Policy()
	require.NoError(t, err)

	// PD unreachable: refused once older than the bound.
	fail = true
	require.Error(t, c.Refresh(context.Background()))
	clock.t = clock.t.Add(time.Millisecond)
	_, err = c.Policy()
	require.Equal(t, codes.Unavailable, status.Code(err))

	// An older version never replaces a newer one.
	fail = false
	require.NoError(t, c.Refresh(context.Background()))
	c.Set(&pdpb.AuthState{Version: state.Version - 1})
	p, err = c.Policy()
	require.NoError(t, err)
	require.Equal(t, state.Version, p.Version())
}

// TestSensitiveClassifications pins the classes whose loosening would be
// a hole, independently of the matrix (which follows the table).
func TestSensitiveClassifications(t *testing.T) {
	want := map[string]Class{
		"/shale.transport.RaftTransport/Send":     Internal,
		"/shale.transport.RaftTransport/Snapshot": Internal,
		pdpb.PD_GetAuth_FullMethodName:            Internal,
		pdpb.PD_StoreHeartbeat_FullMethodName:     Internal,
		pdpb.PD_CreateUser_FullMethodName:         ClusterAdmin,
		pdpb.PD_Grant_FullMethodName:              ClusterAdmin,
		pdpb.PD_Revoke_FullMethodName:             ClusterAdmin,
		pdpb.PD_DropTable_FullMethodName:          ClusterAdmin,
		pdpb.PD_SetConfig_FullMethodName:          ClusterAdmin,
		kvpb.Tablet_ChangeReplicas_FullMethodName: ClusterAdmin,
		kvpb.Tablet_Get_FullMethodName:            DataRead,
		kvpb.Tablet_Scan_FullMethodName:           DataRead,
		kvpb.Tablet_MutateRow_FullMethodName:      DataWrite,
		kvpb.Tablet_IngestSST_FullMethodName:      DataWrite,
		kvpb.Tablet_UploadSST_FullMethodName:      DataWrite,
	}
	for m, c := range want {
		require.Equal(t, c, GRPC[m].Class, m)
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/profile", "POST /pd/api/v1/config"} {
		require.Equal(t, ClusterAdmin, HTTP[p], p)
	}
}

func TestTablesInRange(t *testing.T) {
	k := func(id uint64, row string) []byte {
		if row == "" {
			return keys.TablePrefix(id)
		}
		return keys.RowKey(id, []byte(row))
	}
	cases := []struct {
		start, end []byte
		want       []uint64
		ok         bool
	}{
		{k(5, ""), k(6, ""), []uint64{5}, true},
		{k(5, "m"), k(5, "z"), []uint64{5}, true},
		{k(5, "m"), k(7, "a"), []uint64{5, 6, 7}, true},
		{k(5, ""), nil, nil, false},           // to the end of the key space
		{nil, k(1000, ""), nil, false},        // too many tables
		{k(5, ""), k(5, ""), nil, false},      // empty
		{k(5, "a"), []byte{1, 2}, nil, false}, // corrupt
	}
	for _, c := range cases {
		got, ok := TablesInRange(c.start, c.end)
		require.Equal(t, c.ok, ok, "%x %x", c.start, c.end)
		require.Equal(t, c.want, got, "%x %x", c.start, c.end)
	}
}

type fakeStore map[uint64]*metapb.TabletDescriptor

func (f fakeStore) TabletStatus(id uint64) (*kvpb.TabletStatusResponse, error) {
	d, ok := f[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "tablet %d not found", id)
	}
	return &kvpb.TabletStatusResponse{Tablet: d}, nil
}

// UploadSST names a tablet: the store maps it to its table; a tablet the
// store does not have gets the store's own NotFound (so the importer
// refreshes its route), and the handler never runs either way.
func TestStoreResolverForUploads(t *testing.T) {
	store := fakeStore{
		tabletA: {TabletId: tabletA, StartKey: keys.TablePrefix(tableA), EndKey: keys.TablePrefix(tableA + 1)},
		9:       {TabletId: 9, StartKey: keys.TablePrefix(tableA), EndKey: nil},
	}
	p := NewPolicy(testState(t))
	a, err := New(Options{Mode: Secure, Policies: staticPolicies{p}, Resolver: StoreResolver(store)})
	require.NoError(t, err)
	upload := func(user string, tablet uint64) error {
		ctx := WithIdentity(context.Background(), Identity{User: user})
		return a.authorize(ctx, kvpb.Tablet_UploadSST_FullMethodName, GRPC[kvpb.Tablet_UploadSST_FullMethodName], &kvpb.UploadSSTRequest{TabletId: tablet})
	}
	require.NoError(t, upload("writer", tabletA))
	require.Equal(t, codes.PermissionDenied, status.Code(upload("reader", tabletA)))
	require.Equal(t, codes.NotFound, status.Code(upload("writer", 42)))
	require.Equal(t, codes.PermissionDenied, status.Code(upload("writer", 9)), "a tablet running to the end of the key space needs cluster admin")
	require.NoError(t, upload("admin", 9))
}

func TestStateSizeIsBounded(t *testing.T) {
	st := &pdpb.AuthState{}
	big := strings.Repeat("k", MaxKeyPrefixBytes-8)
	for i := range 5 * MaxGrantsPerRole { // 5 MiB of prefixes
		require.NoError(t, GrantPermission(st, fmt.Sprintf("role%d", i/MaxGrantsPerRole), prefixGrantOf(pdpb.AuthPermission_READ, fmt.Sprintf("%s%08d", big, i))))
	}
	require.Greater(t, proto.Size(st), MaxStateBytes)
	_, err := Edit(st, func(*pdpb.AuthState) error { return nil })
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
}
