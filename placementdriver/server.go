package placementdriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/transport"
)

// Server is one PD member.
type Server struct {
	opts     Options
	log      *slog.Logger
	memberID uint64
	names    map[uint64]string // member ID → name
	store    *store.Store
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
	s := &Server{opts: o, log: o.Logger.With("pd", o.Name), memberID: ids[o.Name], names: map[uint64]string{}, ready: make(chan struct{})}
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ids := memberIDs(o.InitialCluster)
	peers := peerResolver{}
	for name, addr := range o.InitialCluster {
		peers[ids[name]] = addr
	}
	st, err := store.Open(store.Options{
		StoreID:      s.memberID,
		Dir:          filepath.Join(o.DataDir, "meta"),
		Resolver:     peers,
		TickInterval: o.TickInterval,
		GCInterval:   -1,
		Logger:       s.log,
		Registry:     reg,
	})
	if err != nil {
		return fmt.Errorf("pd: open metadata store in %s: %w", o.DataDir, err)
	}
	s.store = st
	defer st.Close()
	defer s.conns.close()
	// Every member bootstraps the same metadata tablet; the call is
	// idempotent and a no-op once the tablet exists.
	desc := &metapb.TabletDescriptor{TabletId: metaTabletID, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for id := uint64(1); id <= uint64(len(ids)); id++ {
		desc.Replicas = append(desc.Replicas, &metapb.Replica{ReplicaId: id, StoreId: id})
	}
	if len(st.Tablets()) == 0 {
		if err := st.BootstrapTablet(desc); err != nil {
			return fmt.Errorf("pd: bootstrap metadata group: %w", err)
		}
	}
	if err := st.PutTableSchema(metaSchema); err != nil {
		return err
	}

	peerSrv := grpc.NewServer(transport.ServerOptions()...)
	st.Transport().Register(peerSrv)
	clientSrv := grpc.NewServer(transport.ServerOptions()...)
	pdpb.RegisterPDServer(clientSrv, &service{s: s})
	errc := make(chan error, 3)
	go func() { errc <- peerSrv.Serve(peerLis) }()
	go func() { errc <- clientSrv.Serve(clientLis) }()
	var httpSrv *http.Server
	if httpLis != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		s.registerHTTP(mux)
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- httpSrv.Serve(httpLis) }()
	}
	st.Start()
	close(s.ready)
	s.log.Info("pd member serving", "member_id", s.memberID, "client", clientLis.Addr().String(), "peer", peerLis.Addr().String())

	leaderDone := make(chan struct{})
	go func() { defer close(leaderDone); s.watchLeadership(ctx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	<-leaderDone
	s.stepDown()
	if httpSrv != nil {
		_ = httpSrv.Close()
	}
	stopGRPC(clientSrv, 2*time.Second)
	// Raft streams between members are long-lived; nothing to drain.
	peerSrv.Stop()
	s.log.Info("pd member stopped")
	if errors.Is(runErr, grpc.ErrServerStopped) || errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

func stopGRPC(srv *grpc.Server, timeout time.Duration) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		srv.Stop()
	}
}

// watchLeadership follows the metadata group's leader: the member whose
// replica leads serves the API; the others redirect.
func (s *Server) watchLeadership(ctx context.Context) {
	t := time.NewTicker(s.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := s.store.TabletStatus(metaTabletID)
		if err != nil {
			continue
		}
		isLeader := st.LeaderReplicaId == s.memberID
		s.mu.Lock()
		s.mu.leaderID = st.LeaderReplicaId
		c := s.mu.cluster
		s.mu.Unlock()
		switch {
		case isLeader && (c == nil || c.term != st.Term):
			s.stepDown()
			lctx, cancel := context.WithCancel(ctx)
			c, err := loadCluster(lctx, s, st.Term)
			if err != nil {
				cancel()
				s.log.Warn("pd leader failed to load metadata", "err", err)
				continue
			}
			s.mu.Lock()
			s.mu.cluster, s.mu.cancel = c, cancel
			s.mu.Unlock()
			c.mu.Lock()
			stores, tablets := len(c.stores), c.view.TabletCount()
			c.mu.Unlock()
			go c.run(lctx)
			s.log.Info("pd leader serving", "term", st.Term, "stores", stores, "tablets", tablets)
		case !isLeader && c != nil:
			s.log.Info("pd leadership lost")
			s.stepDown()
		}
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
	col := keys.ColumnPrefix(metaTableID, []byte(rowClusterID), metaFamily, nil)
	it, err := s.store.DB().NewIter(&pebble.IterOptions{LowerBound: keys.DataKey(col), UpperBound: keys.DataKey(keys.PrefixEnd(col))})
	if err != nil {
		return 0
	}
	defer it.Close()
	if !it.First() {
		return 0
	}
	id, err := decodeU64(it.Value())
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
