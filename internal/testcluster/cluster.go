package testcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/node"
	"github.com/shaledb/shale/tabletserver/store"
)

// Options size the cluster. Zero fields: 1 PD member, 3 stores.
type Options struct {
	PDMembers int
	Stores    int
	// Labels, if set, gives store i (0-based) its labels.
	Labels func(i int) map[string]string
	// Schedule sets PD's initial scheduling config.
	Schedule placementdriver.Config
	// StoreOptions adjusts store i's (0-based) options, at every start.
	StoreOptions func(i int, o *store.Options)
	// Secure runs every server with mutual TLS: a CA, a node certificate
	// for 127.0.0.1 and a client certificate for user "root" are created
	// in CertsDir; PD() and TabletClient connect as root, and clients of
	// the test pass ClientTLS() (kvclient.Options.TLS).
	Secure bool
	// HTTP gives every PD member and store an HTTP server (/metrics,
	// /healthz, pprof) on a loopback port: PDHTTP and Store.HTTPAddr.
	HTTP bool
}

// EnsureDefaults returns a copy of o with one PD member and three stores
// where o gives none.
func (o Options) EnsureDefaults() Options {
	if o.PDMembers == 0 {
		o.PDMembers = 1
	}
	if o.Stores == 0 {
		o.Stores = 3
	}
	return o
}

// Validate rejects negative member and store counts.
func (o Options) Validate() error {
	if o.PDMembers < 0 {
		return fmt.Errorf("testcluster: Options.PDMembers must not be negative, got %d", o.PDMembers)
	}
	if o.Stores < 0 {
		return fmt.Errorf("testcluster: Options.Stores must not be negative, got %d", o.Stores)
	}
	return nil
}

type proc struct {
	cancel context.CancelFunc
	done   chan error
}

// Cluster is a running in-process cluster.
type Cluster struct {
	t        testing.TB
	dir      string
	opts     Options
	PDPeers  map[string]string // name → peer addr
	PDAddrs  map[string]string // name → client addr
	PDHTTP   map[string]string // name → HTTP addr, with Options.HTTP
	Stores   []*Store
	mu       sync.Mutex
	pd       map[string]*proc
	pdClient *pdclient.Client
	// nodeTLS and clientTLS are nil unless Options.Secure.
	nodeTLS, clientTLS *security.Reloader
}

// Store is one tablet server.
type Store struct {
	Index int
	Dir   string
	Addr  string
	// HTTPAddr serves /metrics and /healthz, with Options.HTTP.
	HTTPAddr string
	p        *proc
}

func freeAddr(t testing.TB) string { return proctest.FreeAddr(t) }

// Start starts the cluster and waits until PD has bootstrapped the first
// tablet.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: t.TempDir(), opts: o, PDPeers: map[string]string{}, PDAddrs: map[string]string{}, PDHTTP: map[string]string{}, pd: map[string]*proc{}}
	for i := 1; i <= o.PDMembers; i++ {
		name := fmt.Sprintf("pd%d", i)
		c.PDPeers[name], c.PDAddrs[name] = freeAddr(t), freeAddr(t)
		if o.HTTP {
			c.PDHTTP[name] = freeAddr(t)
		}
	}
	if o.Secure {
		c.makeCerts()
	}
	for name := range c.PDPeers {
		c.StartPD(name)
	}
	var err error
	if c.pdClient, err = pdclient.New(c.PDEndpoints(), 0, pdclient.WithTLS(c.clientTLS)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < o.Stores; i++ {
		c.AddStore()
	}
	t.Cleanup(c.Close)
	testutils.SucceedsSoon(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: []byte{}})
		if err != nil {
			return err
		}
		if resp.Tablet.LeaderStoreId == 0 {
			return fmt.Errorf("first tablet has no leader yet")
		}
		return nil
	})
	return c
}

// PDEndpoints lists the PD client addresses.
func (c *Cluster) PDEndpoints() []string {
	var out []string
	for _, a := range c.PDAddrs {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// PD returns a PD client.
func (c *Cluster) PD() *pdclient.Client { return c.pdClient }

// StartPD starts (or restarts) a PD member.
func (c *Cluster) StartPD(name string) {
	o := placementdriver.Options{
		Name: name, DataDir: filepath.Join(c.dir, name), ClientAddr: c.PDAddrs[name], PeerAddr: c.PDPeers[name],
		InitialCluster: c.PDPeers, ClientAddrs: c.PDAddrs, TickInterval: 20 * time.Millisecond,
		StoreHeartbeatTimeout: 5 * time.Second, Schedule: c.opts.Schedule, TLS: c.nodeTLS, HTTPAddr: c.PDHTTP[name],
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- placementdriver.Run(ctx, o) }()
	c.mu.Lock()
	c.pd[name] = p
	c.mu.Unlock()
}

// StopPD stops a PD member.
func (c *Cluster) StopPD(name string) {
	c.mu.Lock()
	p := c.pd[name]
	delete(c.pd, name)
	c.mu.Unlock()
	if p != nil {
		p.cancel()
		if err := <-p.done; err != nil {
			c.t.Errorf("pd %s: %v", name, err)
		}
	}
}

// AddStore starts a new tablet server.
func (c *Cluster) AddStore() *Store {
	i := len(c.Stores)
	s := &Store{Index: i, Dir: filepath.Join(c.dir, fmt.Sprintf("store%d", i)), Addr: freeAddr(c.t)}
	if c.opts.HTTP {
		s.HTTPAddr = freeAddr(c.t)
	}
	c.Stores = append(c.Stores, s)
	c.StartStore(i)
	return s
}

// StartStore starts (or restarts) store i.
func (c *Cluster) StartStore(i int) {
	s := c.Stores[i]
	so := store.Options{TickInterval: 20 * time.Millisecond, ElectionTicks: 15, HeartbeatTicks: 3, ProposalTimeout: 5 * time.Second,
		MinFreeBytes: -1, BallastBytes: -1} // many test stores share one disk
	if c.opts.StoreOptions != nil {
		c.opts.StoreOptions(i, &so)
	}
	var labels map[string]string
	if c.opts.Labels != nil {
		labels = c.opts.Labels(i)
	}
	o := node.Options{DataDir: s.Dir, Addr: s.Addr, HTTPAddr: s.HTTPAddr, PD: c.PDEndpoints(), Labels: labels, HeartbeatInterval: 200 * time.Millisecond, ShutdownTimeout: 2 * time.Second, Store: so, TLS: c.nodeTLS}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- node.Run(ctx, o) }()
	c.mu.Lock()
	s.p = p
	c.mu.Unlock()
}

// StopStore stops store i.
func (c *Cluster) StopStore(i int) {
	c.mu.Lock()
	p := c.Stores[i].p
	c.Stores[i].p = nil
	c.mu.Unlock()
	if p != nil {
		p.cancel()
		if err := <-p.done; err != nil {
			c.t.Errorf("store %d: %v", i, err)
		}
	}
}

// Close stops everything.
func (c *Cluster) Close() {
	// The stores stop together: a store stopped alone waits its whole
	// ShutdownTimeout for the raft streams its running peers keep open.
	var wg sync.WaitGroup
	for i := range c.Stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.StopStore(i)
		}()
	}
	wg.Wait()
	for name := range c.PDPeers {
		c.StopPD(name)
	}
	c.pdClient.Close()
}

// TabletClient returns a Tablet API client for the store with this ID.
func (c *Cluster) TabletClient(ctx context.Context, storeID uint64) (kvpb.TabletClient, func(), error) {
	st, err := c.PD().GetStore(ctx, &pdpb.GetStoreRequest{StoreId: storeID})
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(st.Store.Store.Address, grpcutil.DialOptions(c.clientTLS)...)
	if err != nil {
		return nil, nil, err
	}
	return kvpb.NewTabletClient(conn), func() { conn.Close() }, nil
}

// CertsDir is where a secure cluster's CA and certificates are.
func (c *Cluster) CertsDir() string { return filepath.Join(c.dir, "certs") }

// NodeTLS is the servers' identity; nil unless Options.Secure.
func (c *Cluster) NodeTLS() *security.Reloader { return c.nodeTLS }

// ClientTLS is user root's client certificate, for kvclient.Options.TLS;
// nil unless Options.Secure.
func (c *Cluster) ClientTLS() *security.Reloader { return c.clientTLS }

func (c *Cluster) makeCerts() {
	o := security.CertOptions{Dir: c.CertsDir()}
	for _, err := range []error{security.CreateCA(o), security.CreateNode(o, "127.0.0.1", "localhost"), security.CreateClient(o, "root")} {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	ca := filepath.Join(o.Dir, security.CAFile)
	var err error
	if c.nodeTLS, err = security.NewReloader(security.Config{CAFile: ca, CertFile: filepath.Join(o.Dir, security.NodeCert), KeyFile: filepath.Join(o.Dir, security.NodeKey)}); err != nil {
		c.t.Fatal(err)
	}
	if c.clientTLS, err = security.NewReloader(security.Config{CAFile: ca, CertFile: filepath.Join(o.Dir, security.ClientCertFile("root")), KeyFile: filepath.Join(o.Dir, security.ClientKeyFile("root"))}); err != nil {
		c.t.Fatal(err)
	}
}
