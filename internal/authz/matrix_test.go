package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/proto/transportpb"
)

// The authorization matrix: for every classified gRPC method, HTTP route,
// Thrift method and SQL statement kind, every kind of caller gets exactly
// the answer the classification table implies, and a refused call never
// reaches its handler. The servers are real gRPC and HTTP servers over
// real TLS with certificates from internal/security; their handlers are
// generated from the service descriptors and record that they ran (after
// decoding the first request message, as every real handler does first).

type callerKind int

const (
	noCert callerKind = iota
	otherCA
	noGrant
	reader
	writer
	admin
	node
)

var callerNames = []string{"no certificate", "certificate from another CA", "user with no grant", "reader", "writer", "admin", "node"}

type outcome int

const (
	allowed outcome = iota
	unauthenticated
	permissionDenied
	refusedAtHandshake
)

var outcomeNames = []string{"allowed", "Unauthenticated", "PermissionDenied", "refused at the TLS handshake"}

func (o outcome) String() string { return outcomeNames[o] }

// expect is the answer the table implies. requireCert: the port demands a
// client certificate in the handshake (every gRPC port), else a missing
// one is the interceptor's to refuse.
func expect(k callerKind, c Class, requireCert bool) outcome {
	switch {
	case k == otherCA:
		return refusedAtHandshake // a certificate given is always verified
	case k == noCert && requireCert:
		return refusedAtHandshake
	case c == Public:
		return allowed
	case k == noCert:
		return unauthenticated
	case c == Unclassified:
		return permissionDenied
	case k == node:
		return allowed
	case c == Internal:
		return permissionDenied
	case k == admin, c == Authenticated:
		return allowed
	case c == DataRead && (k == reader || k == writer), c == DataWrite && k == writer:
		return allowed
	}
	return permissionDenied
}

// matrixState grants the users of the matrix: reader reads table A,
// writer writes it, admin administers the cluster.
func matrixState(t *testing.T) *pdpb.AuthState {
	st, err := Edit(nil, func(st *pdpb.AuthState) error {
		if err := GrantPermission(st, "reader", grant(pdpb.AuthPermission_READ, tableA)); err != nil {
			return err
		}
		if err := GrantPermission(st, "writer", grant(pdpb.AuthPermission_WRITE, tableA)); err != nil {
			return err
		}
		return GrantPermission(st, "admin", &pdpb.AuthGrant{Permission: pdpb.AuthPermission_ADMIN, On: &pdpb.AuthGrant_Cluster{Cluster: true}})
	})
	require.NoError(t, err)
	return st
}

// pki is a CA with a node certificate and the users' certificates, and a
// second CA that also signed an "admin" certificate.
type pki struct {
	dir, otherDir string
}

func newPKI(t *testing.T) pki {
	p := pki{dir: t.TempDir(), otherDir: t.TempDir()}
	for _, d := range []string{p.dir, p.otherDir} {
		require.NoError(t, security.CreateCA(security.CertOptions{Dir: d}))
	}
	require.NoError(t, security.CreateNode(security.CertOptions{Dir: p.dir}, "127.0.0.1", "localhost"))
	for _, u := range []string{"nogrant", "reader", "writer", "admin"} {
		require.NoError(t, security.CreateClient(security.CertOptions{Dir: p.dir}, u))
	}
	require.NoError(t, security.CreateClient(security.CertOptions{Dir: p.otherDir}, "admin"))
	return p
}

func (p pki) reloader(t *testing.T, caDir, certDir, cert, key string) *security.Reloader {
	r, err := security.NewReloader(security.Config{
		CAFile:   filepath.Join(caDir, security.CAFile),
		CertFile: filepath.Join(certDir, cert), KeyFile: filepath.Join(certDir, key),
	})
	require.NoError(t, err)
	return r
}

// clientTLS is the TLS configuration of a caller of kind k.
func (p pki) clientTLS(t *testing.T, k callerKind) *tls.Config {
	const host = "127.0.0.1"
	user := map[callerKind]string{noGrant: "nogrant", reader: "reader", writer: "writer", admin: "admin"}[k]
	switch k {
	case noCert:
		pem, err := os.ReadFile(filepath.Join(p.dir, security.CAFile))
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem))
		return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	case otherCA:
		// Trusts the server, but presents a certificate of another CA.
		return p.reloader(t, p.dir, p.otherDir, security.ClientCertFile("admin"), security.ClientKeyFile("admin")).ClientTLS(host)
	case node:
		return p.reloader(t, p.dir, p.dir, security.NodeCert, security.NodeKey).ClientTLS(host)
	default:
		return p.reloader(t, p.dir, p.dir, security.ClientCertFile(user), security.ClientKeyFile(user)).ClientTLS(host)
	}
}

func (p pki) serverTLS(t *testing.T, requireCert bool) *tls.Config {
	return p.reloader(t, p.dir, p.dir, security.NodeCert, security.NodeKey).ServerTLS(requireCert)
}

// reachedSet records the handlers that ran.
type reachedSet struct{ m sync.Map }

func (r *reachedSet) mark(name string)     { r.m.Store(name, true) }
func (r *reachedSet) reset(name string)    { r.m.Delete(name) }
func (r *reachedSet) has(name string) bool { _, ok := r.m.Load(name); return ok }
func messageType(name protoreflect.FullName) protoreflect.MessageType {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		panic(err) // a linked service names a message not linked: a broken build, not an input
	}
	return mt
}

func methodTypes(service, method string) (in, out protoreflect.MessageType) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		panic(err) // the classification table names a service not linked: a broken build
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	return messageType(md.Input().FullName()), messageType(md.Output().FullName())
}

// recordingService is sd with generated handlers that decode the request,
// record that they ran and answer an empty response.
func recordingService(sd *grpc.ServiceDesc, reached *reachedSet) *grpc.ServiceDesc {
	out := &grpc.ServiceDesc{ServiceName: sd.ServiceName, HandlerType: (*any)(nil), Metadata: sd.Metadata}
	for _, m := range sd.Methods {
		full := "/" + sd.ServiceName + "/" + m.MethodName
		in, resp := methodTypes(sd.ServiceName, m.MethodName)
		out.Methods = append(out.Methods, grpc.MethodDesc{MethodName: m.MethodName,
			Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				req := in.New().Interface()
				if err := dec(req); err != nil {
					return nil, err
				}
				h := func(context.Context, any) (any, error) { reached.mark(full); return resp.New().Interface(), nil }
				if icpt == nil {
					return h(ctx, req)
				}
				return icpt(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
			}})
	}
	for _, s := range sd.Streams {
		full := "/" + sd.ServiceName + "/" + s.StreamName
		in, resp := methodTypes(sd.ServiceName, s.StreamName)
		s2 := s
		s2.Handler = func(_ any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(in.New().Interface()); err != nil {
				return err
			}
			reached.mark(full)
			for s.ClientStreams {
				if err := stream.RecvMsg(in.New().Interface()); err == io.EOF {
					break
				} else if err != nil {
					return err
				}
			}
			return stream.SendMsg(resp.New().Interface())
		}
		out.Streams = append(out.Streams, s2)
	}
	return out
}

var matrixServices = []*grpc.ServiceDesc{&kvpb.Tablet_ServiceDesc, &pdpb.PD_ServiceDesc, &transportpb.RaftTransport_ServiceDesc}

// request is a request of type mt naming table A (by ID, name, tablet or
// key) wherever the message has such a field.
func request(mt protoreflect.MessageType) proto.Message {
	m := mt.New()
	fields := m.Descriptor().Fields()
	set := func(name string, v protoreflect.Value) {
		if f := fields.ByName(protoreflect.Name(name)); f != nil {
			m.Set(f, v)
		}
	}
	set("table_id", protoreflect.ValueOfUint64(tableA))
	set("tablet_id", protoreflect.ValueOfUint64(tabletA))
	set("name", protoreflect.ValueOfString("a"))
	set("row_key", protoreflect.ValueOfBytes([]byte("r")))
	if f := fields.ByName("split_keys"); f != nil {
		l := m.Mutable(f).List()
		l.Append(protoreflect.ValueOfBytes(keys.TablePrefix(tableA)))
	}
	return m.Interface()
}

// call makes one call of method (unary or stream) and returns its error.
func call(ctx context.Context, conn *grpc.ClientConn, sd *grpc.ServiceDesc, name string) error {
	full := "/" + sd.ServiceName + "/" + name
	in, out := methodTypes(sd.ServiceName, name)
	req, resp := request(in), out.New().Interface()
	for _, s := range sd.Streams {
		if s.StreamName != name {
			continue
		}
		cs, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: name, ServerStreams: s.ServerStreams, ClientStreams: s.ClientStreams}, full)
		if err != nil {
			return err
		}
		_ = cs.SendMsg(req) // a refused stream reports why on RecvMsg
		_ = cs.CloseSend()
		return cs.RecvMsg(resp)
	}
	return conn.Invoke(ctx, full, req, resp)
}

func outcomeOf(err error) outcome {
	switch status.Code(err) {
	case codes.OK:
		return allowed
	case codes.Unauthenticated:
		return unauthenticated
	case codes.PermissionDenied:
		return permissionDenied
	case codes.Unavailable:
		return refusedAtHandshake
	}
	return outcome(-1)
}

func startGRPC(t *testing.T, p pki, requireCert bool, a *Authorizer, reached *reachedSet) string {
	srv := grpc.NewServer(append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(p.serverTLS(t, requireCert)))}, a.ServerOptions()...)...)
	for _, sd := range matrixServices {
		srv.RegisterService(recordingService(sd, reached), struct{}{})
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }() //stop:short-lived test server, stopped at cleanup
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestAuthorizationMatrixGRPC(t *testing.T) {
	p := newPKI(t)
	a, _ := newTestAuthorizer(t, matrixState(t))
	for _, requireCert := range []bool{true, false} {
		t.Run(fmt.Sprintf("requireClientCert=%v", requireCert), func(t *testing.T) {
			reached := &reachedSet{}
			addr := startGRPC(t, p, requireCert, a, reached)
			checked := 0
			for k := noCert; k <= node; k++ {
				conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(p.clientTLS(t, k))))
				require.NoError(t, err)
				for _, sd := range matrixServices {
					for _, name := range methodNames(sd) {
						full := "/" + sd.ServiceName + "/" + name
						want := expect(k, GRPC[full].Class, requireCert)
						reached.reset(full)
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						err := call(ctx, conn, sd, name)
						cancel()
						if got := outcomeOf(err); got != want {
							t.Errorf("%s calling %s (%s): got %v (%v), want %v", callerNames[k], full, GRPC[full].Class, got, err, want)
						}
						if want != allowed && reached.has(full) {
							t.Errorf("%s calling %s: refused, but the handler ran", callerNames[k], full)
						}
						if want == allowed && !reached.has(full) {
							t.Errorf("%s calling %s: allowed, but the handler did not run", callerNames[k], full)
						}
						checked++
					}
				}
				conn.Close()
			}
			t.Logf("%d calls checked", checked)
		})
	}
}

func methodNames(sd *grpc.ServiceDesc) []string {
	var out []string
	for _, m := range sd.Methods {
		out = append(out, m.MethodName)
	}
	for _, s := range sd.Streams {
		out = append(out, s.StreamName)
	}
	sort.Strings(out)
	return out
}

// TestAuthorizationMatrixHTTP serves every classified route behind the
// middleware on a port that accepts certificate-less clients (as the
// status ports do, for health checks).
func TestAuthorizationMatrixHTTP(t *testing.T) {
	p := newPKI(t)
	a, _ := newTestAuthorizer(t, matrixState(t))
	reached := &reachedSet{}
	mux := http.NewServeMux()
	var patterns []string
	for pattern := range HTTP {
		patterns = append(patterns, pattern)
		mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) { reached.mark(pattern) })
	}
	mux.HandleFunc("/unclassified", func(w http.ResponseWriter, _ *http.Request) { reached.mark("/unclassified") })
	patterns = append(patterns, "/unclassified")
	sort.Strings(patterns)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", p.serverTLS(t, false))
	require.NoError(t, err)
	srv := &http.Server{Handler: a.HTTP(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() { _ = srv.Serve(lis) }() //stop:short-lived test server, closed at cleanup
	t.Cleanup(func() { srv.Close() })

	for k := noCert; k <= node; k++ {
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.clientTLS(t, k)}}
		for _, pattern := range patterns {
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				method, path = "GET", pattern
			}
			want := expect(k, HTTP[pattern], false)
			reached.reset(pattern)
			req, err := http.NewRequest(method, "https://"+lis.Addr().String()+path, nil)
			require.NoError(t, err)
			got := outcome(-1)
			resp, err := cl.Do(req)
			if err != nil {
				got = refusedAtHandshake
			} else {
				resp.Body.Close()
				got = map[int]outcome{200: allowed, 401: unauthenticated, 403: permissionDenied}[resp.StatusCode]
			}
			if got != want {
				t.Errorf("%s on %s (%s): got %v (%v), want %v", callerNames[k], pattern, HTTP[pattern], got, err, want)
			}
			if (want == allowed) != reached.has(pattern) {
				t.Errorf("%s on %s: want %v, handler ran: %v", callerNames[k], pattern, want, reached.has(pattern))
			}
		}
		cl.CloseIdleConnections()
	}
}

// TestAuthorizationMatrixGateways checks the Thrift and SQL hooks with
// the identities their endpoints establish (a certificate or a password;
// a connection with neither never gets this far).
func TestAuthorizationMatrixGateways(t *testing.T) {
	a, _ := newTestAuthorizer(t, matrixState(t))
	ids := map[callerKind]Identity{noGrant: {User: "nogrant"}, reader: {User: "reader"}, writer: {User: "writer"}, admin: {User: "admin"}, node: {Node: true}}
	for k := noGrant; k <= node; k++ {
		for method, c := range Thrift {
			if got, want := outcomeOf(a.CheckThrift(ids[k], method, tableA)), expect(k, c, false); got != want {
				t.Errorf("%s calling Thrift %s (%s): got %v, want %v", callerNames[k], method, c, got, want)
			}
		}
		for kind, c := range SQL {
			if got, want := outcomeOf(a.CheckSQL(ids[k], kind, tableA)), expect(k, c, false); got != want {
				t.Errorf("%s running SQL %s (%s): got %v, want %v", callerNames[k], kind, c, got, want)
			}
		}
	}
}
