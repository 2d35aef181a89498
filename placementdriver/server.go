package placementdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/proto/pdpb"
)

// Server is one PD member.
type Server struct {
	opts     Options
	log      *slog.Logger
	memberID uint64
	names    map[uint64]string // member ID → name
	meta     metaStore
	// stopper owns the member's goroutines: servers, the leadership
	// watch and, while leading, the scheduling loop.
	stopper *stop.Stopper
	// conns reaches tablet servers (table creation splits and installs
	// schemas directly).
	conns storeConns

	mu struct {
		sync.Mutex
		leaderID uint64   // member ID of the metadata group's leader
		cluster  *cluster // non-nil while this member leads and has loaded
		cancel   context.CancelFunc
	}
	// ready is closed once the server serves its API.
	ready chan struct{}
	// cons keeps the web console's history (console.go).
	cons consoleState
	// metrics is set by run before anything serves.
	metrics *pdMetrics
}

type peerResolver map[uint64]string

func (r peerResolver) Resolve(id uint64) (string, error) {
	a, ok := r[id]
	if !ok {
		return "", fmt.Errorf("pd: unknown member %d", id)
	}
	return a, nil
}

// Run runs one PD member until ctx is done.
func Run(ctx context.Context, o Options) error {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	s, err := newServer(o)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

func newServer(o Options) (*Server, error) {
	ids := memberIDs(o.InitialCluster)
	s := &Server{opts: o, log: o.Logger.With("pd", o.Name), memberID: ids[o.Name], names: map[uint64]string{}, ready: make(chan struct{}), stopper: stop.New()}
	s.conns.tls = o.TLS
	for n, id := range ids {
		s.names[id] = n
	}
	return s, nil
}

func (s *Server) run(ctx context.Context) error {
	o := s.opts
	peerLis, err := net.Listen("tcp", o.PeerAddr)
	if err != nil {
		return fmt.Errorf("pd: --peer-addr %s: %w", o.PeerAddr, err)
	}
	defer peerLis.Close()
	clientLis, err := net.Listen("tcp", o.ClientAddr)
	if err != nil {
		return fmt.Errorf("pd: --client-addr %s: %w", o.ClientAddr, err)
	}
	defer clientLis.Close()
	var httpLis net.Listener
	if o.HTTPAddr != "" {
		if httpLis, err = net.Listen("tcp", o.HTTPAddr); err != nil {
			return fmt.Errorf("pd: --http-addr %s: %w", o.HTTPAddr, err)
		}
		defer httpLis.Close()
	}

	reg := metrics.NewRegistry()
	s.metrics = newPDMetrics(reg, s)
	ids := memberIDs(o.InitialCluster)
	peers := peerResolver{}
	for name, addr := range o.InitialCluster {
		peers[ids[name]] = addr
	}
	meta, err := openMetaStore(o, s.memberID, len(ids), peers, s.log, reg)
	if err != nil {
		return err
	}
	s.meta = meta
	defer meta.close()
	defer s.conns.close()

	az, authCache, err := s.newAuthorizer()
	if err != nil {
		return err
	}
	peerSrv := grpc.NewServer(append(grpcutil.ServerOptions(o.TLS), az.ServerOptions()...)...)
	meta.registerPeers(peerSrv)
	clientSrv := grpc.NewServer(append(append(grpcutil.ServerOptions(o.TLS), az.ServerOptions()...), metrics.NewGRPCServer(reg, &pdpb.PD_ServiceDesc).ServerOptions()...)...)
	pdpb.RegisterPDServer(clientSrv, &service{s: s})
	// errc takes the first error of a server or of starting a task (the
	// Stopper refuses none before shutdown, but a refusal must not hang).
	errc := make(chan error, 5)
	serve := func(name string, f func() error) {
		if err := s.stopper.RunAsyncTask(ctx, name, func(context.Context) { errc <- f() }); err != nil {
			errc <- err
		}
	}
	serve("pd.peer-grpc", func() error { return peerSrv.Serve(peerLis) })
	serve("pd.client-grpc", func() error { return clientSrv.Serve(clientLis) })
	var httpSrv *http.Server
	if httpLis != nil {
		mux := http.NewServeMux()
		s.httpRoutes(mux, reg)
		httpSrv = &http.Server{Handler: security.RequireClientCert(az.HTTP(mux), "/healthz"), ReadHeaderTimeout: 5 * time.Second}
		serve("pd.http", func() error { return httpSrv.Serve(o.TLS.HTTPListener(httpLis)) })
	}
	meta.start()
	if err := s.startAuthz(ctx, authCache); err != nil {
		errc <- err
	}
	close(s.ready)
	s.log.Info("pd member serving", "member_id", s.memberID, "client", clientLis.Addr().String(), "peer", peerLis.Addr().String())

	if err := s.stopper.Every(ctx, "pd.watch-leadership", o.TickInterval, s.watchLeadership); err != nil {
		errc <- err
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	// Ends the leadership watch and the scheduling loop; the servers end
	// as they are stopped below.
	s.stopper.Quiesce()
	s.stepDown()
	if httpSrv != nil {
		_ = httpSrv.Close()
	}
	stopGRPC(clientSrv, 2*time.Second)
	// Raft streams between members are long-lived; nothing to drain.
	peerSrv.Stop()
	// Every task must be done before the deferred meta.close: the
	// scheduling loop writes through the store.
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := s.stopper.Stop(sctx); err != nil {
		s.log.Error("pd member did not stop in time", "err", err)
		return fmt.Errorf("pd: %w", err)
	}
	s.log.Info("pd member stopped")
	if errors.Is(runErr, grpc.ErrServerStopped) || errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// stopTimeout bounds the wait for the member's goroutines once its servers
// are stopped (they then end at once).
const stopTimeout = 10 * time.Second

func stopGRPC(srv *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }() //stop:short-lived joined below; Stop ends GracefulStop after the timeout
	select {
	case <-done:
	case <-time.After(timeout):
		srv.Stop()
	}
}

// watchLeadership follows the metadata group's leader (every tick): the
// member whose replica leads serves the API; the others redirect.
func (s *Server) watchLeadership(ctx context.Context) {
	leaderID, term, err := s.meta.leader()
	if err != nil {
		return
	}
	isLeader := leaderID == s.memberID
	s.mu.Lock()
	s.mu.leaderID = leaderID
	c := s.mu.cluster
	s.mu.Unlock()
	switch {
	case isLeader && (c == nil || c.term != term):
		s.stepDown()
		lctx, cancel := context.WithCancel(ctx)
		c, err := loadCluster(lctx, s, term)
		if err != nil {
			cancel()
			s.log.Warn("pd leader failed to load metadata", "err", err)
			return
		}
		s.mu.Lock()
		s.mu.cluster, s.mu.cancel = c, cancel
		s.mu.Unlock()
		c.mu.Lock()
		stores, tablets := len(c.stores), c.view.TabletCount()
		c.mu.Unlock()
		if err := c.startScheduling(lctx); err != nil {
			s.stepDown() // shutting down
			return
		}
		if err := c.startSafePoints(lctx); err != nil {
			s.stepDown() // shutting down
			return
		}
		s.log.Info("pd leader serving", "term", term, "stores", stores, "tablets", tablets)
	case !isLeader && c != nil:
		s.log.Info("pd leadership lost")
		s.stepDown()
	}
}

func (s *Server) stepDown() {
	s.mu.Lock()
	cancel := s.mu.cancel
	s.mu.cluster, s.mu.cancel = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// leader returns the leader's loaded state, or a NotPDLeader error.
func (s *Server) leader() (*cluster, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.cluster != nil {
		return s.mu.cluster, nil
	}
	return nil, s.notLeaderLocked()
}

// localClusterID reads the cluster ID from this member's own replica of
// the metadata (it never changes once created), so followers can report it.
func (s *Server) localClusterID() uint64 {
	v, ok, err := s.meta.localRow(context.Background(), rowClusterID)
	if err != nil || !ok {
		return 0
	}
	id, err := decodeU64(v)
	if err != nil {
		return 0
	}
	return id
}

func (s *Server) members() []*pdpb.Member {
	var out []*pdpb.Member
	for id := uint64(1); id <= uint64(len(s.names)); id++ {
		name := s.names[id]
		out = append(out, &pdpb.Member{Name: name, MemberId: id, PeerAddr: s.opts.InitialCluster[name], ClientAddr: s.clientAddr(name)})
	}
	return out
}

func (s *Server) clientAddr(name string) string {
	if name == s.opts.Name {
		return s.opts.ClientAddr
	}
	return s.opts.ClientAddrs[name]
}

// health is the answer of /healthz.
type health struct {
	Member string `json:"member"`
	// Leader names the metadata group's leader, "" when there is none.
	Leader   string `json:"leader"`
	IsLeader bool   `json:"is_leader"`
	// Quorum: the metadata group has a leader. Its leader steps down
	// (check-quorum) once it cannot hear from a majority, and a member
	// cut off from the leader forgets it within an election timeout, so
	// a known leader means a quorum answered recently.
	Quorum bool `json:"quorum"`
	// Serving: this member leads and has loaded the cluster (it answers
	// the API), or another member does.
	Serving bool   `json:"serving"`
	Reason  string `json:"reason,omitempty"`
}

// serveHealth answers /healthz: 200 when the metadata group has a leader
// (a quorum) and that leader serves the API, 503 otherwise, with the
// details as JSON.
func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := health{Member: s.opts.Name}
	leaderID, _, err := s.meta.leader()
	switch {
	case err != nil:
		h.Reason = "metadata group not loaded: " + err.Error()
	case leaderID == 0:
		h.Reason = "no leader: the metadata group has no quorum"
	default:
		h.Leader, h.Quorum = s.names[leaderID], true
		h.IsLeader = leaderID == s.memberID
		_, lerr := s.leader()
		h.Serving = !h.IsLeader || lerr == nil
		if !h.Serving {
			h.Reason = "leading the metadata group but the cluster is not loaded yet"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !h.Quorum || !h.Serving {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h)
}
