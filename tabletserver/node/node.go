package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/quota"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/transport"
)

// The bootstrap tablet and the default raw-KV table.
const (
	// BootstrapTabletID is the tablet that initially covers the whole key
	// space.
	BootstrapTabletID = 1
	// KVTableID, KVTableName and KVFamily name the default raw-KV table:
	// a row key maps to the cell (KVFamily, empty qualifier).
	KVTableID   = 1
	KVTableName = "kv"
	KVFamily    = "v"
)

// BootstrapDescriptor returns the descriptor of the first tablet for a
// cluster of the given stores: the whole key space, one voter per store
// with replica id == store id (in store-id order), epoch {1,1}.
func BootstrapDescriptor(stores []uint64) *metapb.TabletDescriptor {
	d := &metapb.TabletDescriptor{
		TabletId: BootstrapTabletID,
		Epoch:    &metapb.Epoch{Version: 1, ConfVersion: 1},
	}
	for _, id := range slices.Sorted(slices.Values(stores)) {
		d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: id, StoreId: id, Role: metapb.ReplicaRole_VOTER})
	}
	return d
}

// KVTableSchema is the schema of the default raw-KV table.
func KVTableSchema() *metapb.TableSchema {
	return &metapb.TableSchema{
		TableId:  KVTableID,
		Name:     KVTableName,
		Families: []*metapb.FamilySchema{{Name: KVFamily, MaxVersions: 1}},
		Version:  1,
	}
}

// Run runs a tablet server until ctx is done, then shuts it down and
// returns nil. It returns an error if the node cannot start or a server
// fails while running. See the package doc for the sequence. A store
// whose data is corrupt at open is retired and the node rejoins as a new
// store (retire.go).
//
// A store whose disk failed is reopened in process once the disk works
// again (recover.go).
func Run(ctx context.Context, o Options) error {
	o.reopenWait = reopenFirstWait
	if p := o.Store.DiskProbeInterval; p > 0 {
		o.reopenWait = min(10*p, reopenFirstWait)
	}
	for {
		err := run(ctx, o)
		switch {
		case errors.Is(err, errRetired):
			o.StoreID = 0 // join as a new store
		case errors.Is(err, errReopenStore):
			o.reopenWait = min(2*o.reopenWait, reopenMaxWait)
		default:
			return err
		}
	}
}

func run(ctx context.Context, o Options) error {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	if err := ensureDir(o.DataDir); err != nil {
		return err
	}
	var resolver transport.Resolver = staticResolver(maps.Clone(o.Peers))
	var pdc *pdclient.Client
	if len(o.PD) > 0 {
		cl, id, err := joinCluster(ctx, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while joining: a clean stop, like any other
			}
			return err
		}
		defer cl.Close()
		pdc, o.StoreID = cl, id.StoreID
		resolver = newPDResolver(cl)
	}
	log := o.Logger.With("store", o.StoreID)
	grpcLis, err := listen("--addr", o.Addr)
	if err != nil {
		return err
	}
	defer grpcLis.Close()
	var httpLis net.Listener
	if o.HTTPAddr != "" {
		if httpLis, err = listen("--http-addr", o.HTTPAddr); err != nil {
			return err
		}
		defer httpLis.Close()
	}

	reg := metrics.NewRegistry()
	sopts := o.Store
	sopts.StoreID = o.StoreID
	sopts.Dir = o.DataDir
	sopts.Resolver = resolver
	sopts.TLS = o.TLS
	sopts.Logger = o.Logger
	sopts.Registry = reg
	var splits *splitReporter
	var gcSafePoint atomic.Int64 // from PD's heartbeat answers (pd.go)
	if pdc != nil {
		splits = newSplitReporter(pdc, o.StoreID, log)
		sopts.OnSplit = splits.onSplit
		sopts.GCSafePoint = gcSafePoint.Load
	}
	s, err := store.Open(sopts)
	if err != nil {
		if pdc != nil && store.IsCorruption(err) {
			if rerr := retire(o, identity{ClusterID: pdc.ClusterID(), StoreID: o.StoreID}, err, log); rerr != nil {
				return fmt.Errorf("node: retiring corrupt store %d: %v (it failed to open: %w)", o.StoreID, rerr, err)
			}
			return errRetired
		}
		return fmt.Errorf("node: opening store %d in data directory %s: %w", o.StoreID, o.DataDir, err)
	}
	storeClosed := false
	defer func() {
		if !storeClosed {
			_ = s.Close()
		}
	}()

	if o.Bootstrap {
		if err := bootstrap(s, o, log); err != nil {
			return err
		}
	}

	az, err := newNodeAuthz(o, pdc, s, log)
	if err != nil {
		return err
	}
	var gate requestGate
	quotas := quotaGate{quota.NewLimiter(reg)}
	adm := admitter{c: s.Admission()}
	rpcMetrics := metrics.NewGRPCServer(reg, &kvpb.Tablet_ServiceDesc)
	srv := grpc.NewServer(append(append(grpcutil.ServerOptions(o.TLS),
		grpc.ChainUnaryInterceptor(az.UnaryInterceptor(), gate.unary, quotas.unary, adm.unary),
		grpc.ChainStreamInterceptor(az.StreamInterceptor(), gate.stream, quotas.stream, adm.stream),
	), rpcMetrics.ServerOptions()...)...)
	s.Transport().Register(srv)
	kvpb.RegisterTabletServer(srv, store.NewService(s))

	var healthy atomic.Bool
	// Two stages of goroutines, stopped in this order: the placement
	// driver loop (it drives the store), then the servers.
	pdTasks, servers := stop.New(), stop.New()
	// errc takes the first error of a server or of starting a task (the
	// Stopper refuses none before shutdown, but a refusal must not hang).
	errc := make(chan error, 8)
	serve := func(name string, f func() error) {
		if err := servers.RunAsyncTask(ctx, name, func(context.Context) {
			if err := f(); err != nil {
				errc <- err
			}
		}); err != nil {
			errc <- err
		}
	}
	serve("node.grpc", func() error {
		if err := srv.Serve(grpcLis); err != nil {
			return fmt.Errorf("node: gRPC server on %s: %w", o.Addr, err)
		}
		return nil
	})
	var httpSrv *http.Server
	if httpLis != nil {
		mux := http.NewServeMux()
		// Ready (both paths): registered with PD (joinCluster returned
		// before any listener opened) or static, serving, and not
		// shutting down.
		httpRoutes(mux, reg, s.Admission(), func(w http.ResponseWriter, _ *http.Request) {
			if !healthy.Load() {
				http.Error(w, "not serving", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		httpSrv = &http.Server{Handler: security.RequireClientCert(az.HTTP(mux), "/healthz", "/readyz"), ReadHeaderTimeout: 10 * time.Second}
		serve("node.http", func() error {
			if err := httpSrv.Serve(o.TLS.HTTPListener(httpLis)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("node: HTTP server on %s: %w", o.HTTPAddr, err)
			}
			return nil
		})
	}

	s.Start()
	if err := az.start(ctx, servers); err != nil {
		errc <- err
	}
	if pdc != nil {
		loop := &pdLoop{s: s, cl: pdc, log: log, interval: o.HeartbeatInterval, storeID: o.StoreID, running: map[uint64]bool{}, stopper: pdTasks, gcSafePoint: &gcSafePoint, quotas: quotas.l}
		if err := loop.start(ctx); err != nil {
			errc <- err
		}
		if err := pdTasks.RunAsyncTask(ctx, "node.split-reports", splits.run); err != nil {
			errc <- err
		}
	}
	probeFS, probeEvery := cmp.Or[vfs.FS](sopts.FS, vfs.Default), cmp.Or(sopts.DiskProbeInterval, time.Second)
	retireStore := func() error {
		if pdc == nil {
			return fmt.Errorf("node: store %d lost acknowledged raft entries; with no placement driver it cannot be rebuilt: wipe it and rejoin", o.StoreID)
		}
		return retire(o, identity{ClusterID: pdc.ClusterID(), StoreID: o.StoreID}, errors.New("the WAL lost acknowledged raft entries"), log)
	}
	if err := servers.RunAsyncTask(ctx, "node.store-watch", func(ctx context.Context) {
		watchStore(ctx, s, probeFS, o.DataDir, o.reopenWait, probeEvery, errc, retireStore, log)
	}); err != nil {
		errc <- err
	}
	healthy.Store(true)
	httpAddr := ""
	if httpLis != nil {
		httpAddr = httpLis.Addr().String()
	}
	log.Info("tablet server serving",
		"addr", grpcLis.Addr().String(), "http_addr", httpAddr, "data_dir", o.DataDir,
		"peers", FormatPeers(o.Peers), "labels", o.Labels, "pd", strings.Join(o.PD, ","))
	if o.onServing != nil {
		o.onServing(grpcLis.Addr().String(), httpAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("tablet server shutting down", "cause", context.Cause(ctx))
	case runErr = <-errc:
		log.Error("tablet server failed; shutting down", "err", runErr)
	}
	healthy.Store(false)
	if err := stopStage(pdTasks, o.ShutdownTimeout); err != nil {
		log.Error("placement driver loop did not stop in time", "err", err)
		runErr = cmp.Or(runErr, err)
	}

	// Refuse new Tablet requests and let in-flight ones finish, while the
	// store (and its raft traffic) still runs so that they can commit.
	if !gate.drain(o.ShutdownTimeout) {
		log.Warn("in-flight requests did not finish in time", "timeout", o.ShutdownTimeout)
	}
	// Closing the store also closes the transport, which ends the inbound
	// raft streams of peers, so the gRPC server can drain.
	storeClosed = true
	if err := s.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("node: closing store: %w", err)
	}
	stopped := make(chan struct{})
	go func() { //stop:short-lived joined below; Stop ends GracefulStop after the timeout
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(o.ShutdownTimeout):
		log.Warn("gRPC server did not drain in time; stopping it", "timeout", o.ShutdownTimeout)
		srv.Stop()
		<-stopped
	}
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
		if err := httpSrv.Shutdown(sctx); err != nil {
			_ = httpSrv.Close()
		}
		cancel()
	}
	if err := stopStage(servers, o.ShutdownTimeout); err != nil {
		log.Error("servers did not stop in time", "err", err)
		runErr = cmp.Or(runErr, err)
	}
	log.Info("tablet server stopped")
	return runErr
}

// stopStage stops one stage's tasks, waiting up to timeout.
func stopStage(s *stop.Stopper, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

// bootstrap creates the first tablet and the raw-KV table schema unless the
// store already holds a tablet.
func bootstrap(s *store.Store, o Options, log *slog.Logger) error {
	if ts := s.Tablets(); len(ts) > 0 {
		log.Info("store already holds tablets; not bootstrapping again", "tablets", len(ts))
	} else {
		desc := BootstrapDescriptor(slices.Collect(maps.Keys(o.Peers)))
		if err := s.BootstrapTablet(desc); err != nil {
			return fmt.Errorf("node: bootstrapping tablet %d on store %d: %w", desc.TabletId, o.StoreID, err)
		}
		log.Info("bootstrapped the first tablet", "tablet", desc.TabletId, "stores", FormatPeers(o.Peers))
	}
	// Version 1: a newer schema already on the store wins.
	if err := s.PutTableSchema(KVTableSchema()); err != nil {
		return fmt.Errorf("node: putting the default table schema on store %d: %w", o.StoreID, err)
	}
	return nil
}

// ensureDir creates dir if needed and checks that it is a writable
// directory, so that a bad --data-dir gets a clear message rather than an
// engine error.
func ensureDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("node: data directory %s exists and is not a directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("node: cannot create data directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("node: data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

// listen opens a TCP listener, explaining the common failures.
func listen(flag, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return lis, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("node: %s %s: address already in use (is another process listening on it?)", flag, addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("node: %s %s: address not available on this host", flag, addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("node: %s %s: permission denied (ports below 1024 need privileges)", flag, addr)
	}
	return nil, fmt.Errorf("node: %s %s: %w", flag, addr, err)
}

// requestGate counts in-flight client (non-raft-transport) RPCs and refuses
// new ones once draining starts, so shutdown can let accepted requests
// finish while the store still replicates.
type requestGate struct {
	mu       sync.Mutex
	draining bool
	inflight int
	idle     chan struct{} // closed when draining and inflight reaches 0
}

// isTransport reports raft traffic, which is never gated: in-flight client
// requests need it to commit.
func isTransport(method string) bool {
	return strings.HasPrefix(method, "/shale.transport.")
}

func (g *requestGate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		return status.Error(codes.Unavailable, "tablet server is shutting down")
	}
	g.inflight++
	return nil
}

func (g *requestGate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if g.draining && g.inflight == 0 {
		close(g.idle)
	}
}

// drain refuses new requests and waits up to timeout for in-flight ones. It
// reports whether they all finished.
func (g *requestGate) drain(timeout time.Duration) bool {
	g.mu.Lock()
	g.draining = true
	g.idle = make(chan struct{})
	if g.inflight == 0 {
		close(g.idle)
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (g *requestGate) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if isTransport(info.FullMethod) {
		return h(ctx, req)
	}
	if err := g.enter(); err != nil {
		return nil, err
	}
	defer g.exit()
	return h(ctx, req)
}

func (g *requestGate) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if isTransport(info.FullMethod) {
		return h(srv, ss)
	}
	if err := g.enter(); err != nil {
		return err
	}
	defer g.exit()
	return h(srv, ss)
}

// httpRoutes registers every route of the status port (each must be
// classified in internal/authz/table.go: TestEveryHTTPRouteIsClassified).
// /metrics and profiles: the performance work needs CPU and allocation
// profiles of real servers under load. /admission reads and changes the
// admission settings at run time (docs/qos.md).
func httpRoutes(mux authz.Registrar, reg *prometheus.Registry, adm *admission.Controller, ready http.HandlerFunc) {
	metrics.HandleDebug(mux, reg)
	mux.HandleFunc("/healthz", ready)
	mux.HandleFunc("/readyz", ready)
	get, put := serveAdmission(adm)
	mux.HandleFunc("GET /admission", get)
	mux.HandleFunc("PUT /admission", put)
}
