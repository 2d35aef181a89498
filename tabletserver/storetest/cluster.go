package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/freeport"
	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/transport"
)

// Node is one store in the cluster.
type Node struct {
	ID     uint64
	Dir    string
	Addr   string
	Store  *store.Store // nil while stopped
	Client kvpb.TabletClient

	srv  *grpc.Server
	conn *grpc.ClientConn
}

// Cluster is a set of in-process stores.
type Cluster struct {
	t       testing.TB
	Nodes   map[uint64]*Node
	Net     *Network
	tweak   func(*store.Options)
	mu      sync.Mutex
	addrs   map[uint64]string
	nextID  uint64
	tabletN uint64
}

// FastOptions are raft timings suited to tests on a busy 2-core machine:
// 20ms ticks, 300ms election timeout; and no disk-full protection.
func FastOptions(o *store.Options) {
	o.TickInterval = 20 * time.Millisecond
	o.ElectionTicks = 15
	o.HeartbeatTicks = 3
	o.ProposalTimeout = 5 * time.Second
	// No ballast and no free-space threshold: many test stores share one
	// machine's disk (the disk-full tests set their own).
	o.MinFreeBytes, o.BallastBytes = -1, -1
}

// Start starts n stores (IDs 1..n). tweak adjusts each store's options.
func Start(t testing.TB, n int, tweak func(*store.Options)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Nodes: map[uint64]*Node{}, Net: NewNetwork(), tweak: tweak, addrs: map[uint64]string{}, nextID: 1000, tabletN: 100}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		id := uint64(i)
		lis, err := listenFree()
		if err != nil {
			t.Fatal(err)
		}
		node := &Node{ID: id, Dir: filepath.Join(dir, fmt.Sprintf("s%d", id)), Addr: lis.Addr().String()}
		c.Nodes[id] = node
		c.addrs[id] = node.Addr
		c.startNode(node, lis)
	}
	t.Cleanup(c.Close)
	return c
}

// AddNode starts one more store and returns it.
func (c *Cluster) AddNode() *Node {
	id := uint64(len(c.Nodes) + 1)
	for c.Nodes[id] != nil {
		id++
	}
	lis, err := listenFree()
	if err != nil {
		c.t.Fatal(err)
	}
	node := &Node{ID: id, Dir: filepath.Join(filepath.Dir(c.Nodes[1].Dir), fmt.Sprintf("s%d", id)), Addr: lis.Addr().String()}
	c.mu.Lock()
	c.Nodes[id] = node
	c.addrs[id] = node.Addr
	c.mu.Unlock()
	c.startNode(node, lis)
	return node
}

// listenFree listens on a free loopback port below the ephemeral range, so
// that Restart can bind it again after Stop (an ephemeral port may be taken
// by an outgoing connection meanwhile).
func listenFree() (net.Listener, error) {
	a, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	return net.Listen("tcp", a)
}

// Resolve implements transport.Resolver.
func (c *Cluster) Resolve(id uint64) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[id]
	if !ok {
		return "", fmt.Errorf("unknown store %d", id)
	}
	return a, nil
}

func (c *Cluster) startNode(n *Node, lis net.Listener) {
	c.t.Helper()
	opts := store.Options{
		StoreID:  n.ID,
		Dir:      n.Dir,
		Resolver: c,
		Knobs:    &store.TestingKnobs{Transport: &transport.TestingKnobs{SendFilter: c.Net.filter, SnapshotFilter: c.Net.snapshotFilter}},
	}
	FastOptions(&opts)
	if c.tweak != nil {
		c.tweak(&opts)
	}
	s, err := store.Open(opts)
	if err != nil {
		c.t.Fatalf("open store %d: %v", n.ID, err)
	}
	srv := grpc.NewServer(grpcutil.ServerOptions(nil)...)
	s.Transport().Register(srv)
	kvpb.RegisterTabletServer(srv, store.NewService(s))
	go func() { _ = srv.Serve(lis) }()
	s.Start()
	conn, err := grpc.NewClient(n.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	n.Store, n.srv, n.conn, n.Client = s, srv, conn, kvpb.NewTabletClient(conn)
	c.mu.Unlock()
}

// Stop shuts a store down (cleanly; acknowledged data is durable either way).
func (c *Cluster) Stop(id uint64) {
	n := c.Nodes[id]
	c.mu.Lock()
	s, srv, conn := n.Store, n.srv, n.conn
	n.Store, n.srv, n.conn = nil, nil, nil
	c.mu.Unlock()
	if s == nil {
		return
	}
	srv.Stop()
	conn.Close()
	if err := s.Close(); err != nil {
		c.t.Errorf("close store %d: %v", id, err)
	}
}

// Restart starts a stopped store again on the same directory and address.
func (c *Cluster) Restart(id uint64) {
	c.t.Helper()
	n := c.Nodes[id]
	var lis net.Listener
	// The old listener's port may linger a moment after Stop.
	testutils.SucceedsSoon(c.t, func() (err error) {
		lis, err = net.Listen("tcp", n.Addr)
		return err
	})
	c.startNode(n, lis)
}

// Close stops every store.
func (c *Cluster) Close() {
	for id := range c.Nodes {
		c.Stop(id)
	}
}

// NewID returns a fresh tablet or replica ID.
func (c *Cluster) NewID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return c.nextID
}

// Bootstrap creates a tablet covering [start, end) with one voter on each
// of the given stores (replica ID = store ID) and waits for a leader.
func (c *Cluster) Bootstrap(tabletID uint64, start, end []byte, stores ...uint64) *metapb.TabletDescriptor {
	c.t.Helper()
	desc := &metapb.TabletDescriptor{TabletId: tabletID, StartKey: start, EndKey: end, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for _, s := range stores {
		desc.Replicas = append(desc.Replicas, &metapb.Replica{ReplicaId: s, StoreId: s})
	}
	for _, s := range stores {
		if err := c.Nodes[s].Store.BootstrapTablet(desc); err != nil {
			c.t.Fatalf("bootstrap tablet %d on store %d: %v", tabletID, s, err)
		}
	}
	c.WaitLeader(tabletID)
	return desc
}

// PutSchema installs a table schema on every running store.
func (c *Cluster) PutSchema(ts *metapb.TableSchema) {
	c.t.Helper()
	for _, n := range c.Nodes {
		if n.Store == nil {
			continue
		}
		if err := n.Store.PutTableSchema(ts); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Leader returns the store that currently leads the tablet, or 0.
func (c *Cluster) Leader(tabletID uint64) uint64 {
	for id, n := range c.Nodes {
		c.mu.Lock()
		s := n.Store
		c.mu.Unlock()
		if s == nil {
			continue
		}
		st, err := s.TabletStatus(tabletID)
		if err != nil {
			continue
		}
		for _, rep := range st.Tablet.Replicas {
			if rep.ReplicaId == st.LeaderReplicaId && rep.StoreId == id {
				return id
			}
		}
	}
	return 0
}

// WaitLeader waits for the tablet to have a leader.
func (c *Cluster) WaitLeader(tabletID uint64) uint64 {
	c.t.Helper()
	var id uint64
	testutils.SucceedsSoon(c.t, func() error {
		if id = c.Leader(tabletID); id == 0 {
			return fmt.Errorf("tablet %d has no leader", tabletID)
		}
		return nil
	})
	return id
}

// Call runs op against the tablet's leader, following NotLeader hints and
// retrying retryable errors until ctx ends. It returns the last error.
func (c *Cluster) Call(ctx context.Context, tabletID uint64, op func(kvpb.TabletClient) error) error {
	try := c.Leader(tabletID)
	bo := retry.NewExponential(5*time.Millisecond, 100*time.Millisecond)
	for {
		var err error
		c.mu.Lock()
		n := c.Nodes[try]
		var client kvpb.TabletClient
		if n != nil && n.Store != nil {
			client = n.Client
		}
		c.mu.Unlock()
		if client == nil {
			err = errors.New("no live store to try")
		} else {
			err = op(client)
			if err == nil {
				return nil
			}
			if !notApplied(err) && !isUnavailable(err) {
				return err
			}
		}
		if nl, ok := errs.As[*errorpb.NotLeader](err); ok && nl.LeaderStoreId != 0 && nl.LeaderStoreId != try {
			try = nl.LeaderStoreId
			continue
		}
		if bo.Wait(ctx, 0) != nil {
			return err
		}
		if l := c.Leader(tabletID); l != 0 {
			try = l
		} else {
			try = c.anyLive()
		}
	}
}

func (c *Cluster) anyLive() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint64, 0, len(c.Nodes))
	for id, n := range c.Nodes {
		if n.Store != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0
	}
	return ids[rand.Intn(len(ids))]
}

// Network is the shared fault injector every store's transport consults.
type Network struct {
	mu       sync.Mutex
	group    map[uint64]int // partition group per store; missing = 0
	dropRate float64
	maxDelay time.Duration
	rng      *rand.Rand
	noSnapTo map[uint64]bool // snapshots TO these stores fail
	// armedCut > 0: the next store to send MsgTimeoutNow stops receiving
	// raft messages for that long (cutUntil).
	armedCut time.Duration
	cutUntil map[uint64]time.Time
	// held: while holding (HoldMessages), every raft message that is not
	// dropped waits here, in send order, until DeliverHeld or DropHeld.
	holding bool
	held    []Held
	deliver func(to uint64, b *transportpb.RaftMessageBatch)
}

// Held is a raft message the network holds.
type Held struct {
	From, To uint64
	Msg      *transportpb.RaftMessage
}

// NewNetwork returns a healthy network.
func NewNetwork() *Network {
	return &Network{group: map[uint64]int{}, noSnapTo: map[uint64]bool{}, cutUntil: map[uint64]time.Time{}, rng: rand.New(rand.NewSource(1))}
}

// Partition splits stores into groups that cannot reach each other; stores
// not named stay in group 0 with the first group.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[uint64]int{}
	for i, g := range groups {
		for _, s := range g {
			n.group[s] = i
		}
	}
	n.held = slices.DeleteFunc(n.held, func(h Held) bool { return n.group[h.From] != n.group[h.To] })
}

// Isolate cuts one store off from all others.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[uint64]int{id: 1}
}

// Heal removes partitions, drops and delays.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[uint64]int{}
	n.dropRate, n.maxDelay = 0, 0
}

// SetFaults drops messages with probability drop and delays the rest by up
// to maxDelay, using seed.
func (n *Network) SetFaults(seed int64, drop float64, maxDelay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rng = rand.New(rand.NewSource(seed))
	n.dropRate, n.maxDelay = drop, maxDelay
}

// CutInboundOnTransfer arms a one-shot, one-way fault: the next store to
// send MsgTimeoutNow (handing its leadership to another replica) receives
// no raft message for d from that moment, so it does not learn of the new
// leader's term while clients may still reach it. It models a link that
// fails at the worst moment of a transfer.
func (n *Network) CutInboundOnTransfer(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armedCut = d
}

func (n *Network) filter(from, to uint64, m *transportpb.RaftMessage) (bool, time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.group[from] != n.group[to] || time.Now().Before(n.cutUntil[to]) {
		return true, 0
	}
	if n.armedCut > 0 && m != nil { // m is nil for store liveness pings
		var rm raftpb.Message
		if err := rm.Unmarshal(m.Message); err == nil && rm.Type == raftpb.MsgTimeoutNow {
			n.cutUntil[from] = time.Now().Add(n.armedCut)
			n.armedCut = 0
		}
	}
	if n.holding {
		// Liveness pings go out from their own goroutine whenever a
		// store's clock moves; dropping them leaves liveness to the raft
		// traffic the script delivers, so it is the same on every run.
		if m != nil {
			n.held = append(n.held, Held{From: from, To: to, Msg: proto.Clone(m).(*transportpb.RaftMessage)})
		}
		return true, 0
	}
	if n.dropRate > 0 && n.rng.Float64() < n.dropRate {
		return true, 0
	}
	if n.maxDelay > 0 {
		return false, time.Duration(n.rng.Int63n(int64(n.maxDelay)))
	}
	return false, 0
}

// TransportKnobs returns transport knobs that route every raft message and
// snapshot of a store through this network's faults, for clusters built
// outside this package (internal/testcluster).
func (n *Network) TransportKnobs() *transport.TestingKnobs {
	return &transport.TestingKnobs{SendFilter: n.filter, SnapshotFilter: n.snapshotFilter}
}

// BlockSnapshots makes snapshots sent to store to fail (on) or pass again.
func (n *Network) BlockSnapshots(to uint64, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.noSnapTo[to] = on
}

func (n *Network) snapshotFilter(from, to uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.group[from] != n.group[to] || n.noSnapTo[to]
}

// HoldMessages makes the network hold every raft message instead of
// sending it; deliver hands a batch to its destination store (tests wire
// it to the store's handler). Store liveness pings are dropped: a store
// hears of its peers through the raft messages delivered.
func (n *Network) HoldMessages(deliver func(to uint64, b *transportpb.RaftMessageBatch)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.holding, n.deliver = true, deliver
}

// Held returns the messages held, in send order.
func (n *Network) Held() []Held {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.held)
}

// DropHeld discards the held messages match selects and returns them.
func (n *Network) DropHeld(match func(Held) bool) []Held {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.takeLocked(match)
}

func (n *Network) takeLocked(match func(Held) bool) []Held {
	var took, kept []Held
	for _, h := range n.held {
		if match(h) {
			took = append(took, h)
		} else {
			kept = append(kept, h)
		}
	}
	n.held = kept
	return took
}

// DeliverHeld delivers the held messages match selects and returns them.
// Each destination gets them in one batch, ordered by sender and tablet
// (each pair's send order kept), so that its Ready loop takes them in
// together and in the same order whatever the goroutine schedule.
func (n *Network) DeliverHeld(match func(Held) bool) []Held {
	n.mu.Lock()
	took := n.takeLocked(match)
	deliver := n.deliver
	n.mu.Unlock()
	sorted := slices.Clone(took)
	slices.SortStableFunc(sorted, func(a, b Held) int {
		return cmp.Or(cmp.Compare(a.To, b.To), cmp.Compare(a.From, b.From), cmp.Compare(a.Msg.TabletId, b.Msg.TabletId))
	})
	for i := 0; i < len(sorted); {
		to := sorted[i].To
		b := &transportpb.RaftMessageBatch{FromStore: sorted[i].From}
		for start := i; i < len(sorted) && sorted[i].To == to; i++ {
			if h := sorted[i]; i > start && sorted[i-1].From != h.From {
				// The store hears of each sender (an empty batch queues nothing).
				deliver(to, &transportpb.RaftMessageBatch{FromStore: h.From})
			}
			b.Messages = append(b.Messages, sorted[i].Msg)
		}
		deliver(to, b)
	}
	return took
}
