package transport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/transportpb"
)

// TestSendOrderedDelivery: three goroutines on store 1 send to stores 2
// and 3 concurrently; every message arrives, in per-sender order.
func TestSendOrderedDelivery(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	dests := []*testNode{startNode(t, 2, res, Options{}), startNode(t, 3, res, Options{})}

	const senders, perSender = 3, 400
	seed := testutils.Seed(t)
	var wg sync.WaitGroup
	for s := uint64(1); s <= senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, s))
			for seq := uint64(0); seq < perSender; {
				k := min(uint64(1+rng.IntN(5)), perSender-seq)
				for _, d := range dests {
					var msgs []*transportpb.RaftMessage
					for i := range k {
						msgs = append(msgs, msg(s, 1, d.id, seq+i))
					}
					n1.tr.Send(d.id, msgs)
				}
				seq += k
			}
		}()
	}
	wg.Wait()

	for _, d := range dests {
		testutils.SucceedsSoon(t, func() error {
			if got := len(d.h.messages()); got != senders*perSender {
				return fmt.Errorf("store %d got %d of %d messages", d.id, got, senders*perSender)
			}
			return nil
		})
		next := map[uint64]uint64{}
		for _, m := range d.h.messages() {
			require.Equal(t, d.id, m.ToStore)
			require.Equal(t, next[m.TabletId], seqOf(t, m), "sender %d to store %d", m.TabletId, d.id)
			next[m.TabletId]++
		}
		batches := d.h.batchList()
		for _, b := range batches {
			require.Equal(t, uint64(1), b.FromStore)
		}
		t.Logf("store %d: %d messages in %d batches", d.id, senders*perSender, len(batches))
	}
	require.Zero(t, n1.h.unreachableCount(2)+n1.h.unreachableCount(3))
}

func TestSendEmptyIsPing(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	n2 := startNode(t, 2, res, Options{})

	n1.tr.Send(2, nil)
	testutils.SucceedsSoon(t, func() error {
		if got := len(n2.h.batchList()); got != 1 {
			return fmt.Errorf("store 2 got %d batches, want 1", got)
		}
		return nil
	})
	b := n2.h.batchList()[0]
	require.Equal(t, uint64(1), b.FromStore)
	require.Empty(t, b.Messages)
}

func TestSendFilter(t *testing.T) {
	const delay = 300 * time.Millisecond
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{Knobs: &TestingKnobs{
		SendFilter: func(from, to uint64, m *transportpb.RaftMessage) (bool, time.Duration) {
			switch m.TabletId {
			case 7:
				return true, 0
			case 8:
				return false, delay
			}
			return false, 0
		},
	}})
	n2 := startNode(t, 2, res, Options{})

	start := time.Now()
	n1.tr.Send(2, []*transportpb.RaftMessage{msg(7, 1, 2, 0), msg(8, 1, 2, 0), msg(9, 1, 2, 0)})
	testutils.SucceedsSoon(t, func() error { return n2.h.expect(8) })
	require.GreaterOrEqual(t, time.Since(start), delay)

	got := n2.h.messages()
	require.Len(t, got, 2)
	require.Equal(t, uint64(9), got[0].TabletId, "undelayed message first")
	require.Equal(t, uint64(8), got[1].TabletId)
}

// TestSendReconnect: the receiver dies and comes back on the same address;
// the sender reports it unreachable meanwhile and then delivers again.
func TestSendReconnect(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	n2 := startNode(t, 2, res, Options{})

	n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 0)})
	testutils.SucceedsSoon(t, func() error { return n2.h.expect(1) })

	n2.stopServer()
	testutils.SucceedsSoon(t, func() error {
		n1.tr.Send(2, []*transportpb.RaftMessage{msg(2, 1, 2, 0)})
		return n1.h.expectUnreachable(2)
	})

	n2.restartServer(t)
	testutils.SucceedsSoon(t, func() error {
		n1.tr.Send(2, []*transportpb.RaftMessage{msg(3, 1, 2, 0)})
		return n2.h.expect(3)
	})
}

// TestSendUnresolvable: a store the resolver does not know is reported
// unreachable, and other destinations are unaffected.
func TestSendUnresolvable(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	n2 := startNode(t, 2, res, Options{})

	n1.tr.Send(42, []*transportpb.RaftMessage{msg(1, 1, 42, 0)})
	testutils.SucceedsSoon(t, func() error { return n1.h.expectUnreachable(42) })
	n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 0)})
	testutils.SucceedsSoon(t, func() error { return n2.h.expect(1) })
}

// TestPeerQueue exercises the queue without a goroutine draining it.
func TestPeerQueue(t *testing.T) {
	tr, err := New(Options{StoreID: 1, Resolver: newTestResolver(), SendQueueLen: 4}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Resolver: newTestResolver()}, &recorder{}); err == nil {
		t.Fatal("New without a StoreID succeeded")
	}
	defer tr.Close()
	p := newPeer(tr, peerKey{store: 2})

	t.Run("batches everything queued", func(t *testing.T) {
		p.enqueue([]*transportpb.RaftMessage{msg(1, 1, 2, 0)}, false)
		p.enqueue(nil, true)
		p.enqueue([]*transportpb.RaftMessage{msg(1, 1, 2, 1), msg(2, 1, 2, 0)}, false)
		msgs, send, dropped, more := p.take()
		require.Len(t, msgs, 3)
		require.True(t, send)
		require.Zero(t, dropped)
		require.False(t, more)
		_, send, _, _ = p.take()
		require.False(t, send, "ping was consumed by the batch")
	})
	t.Run("ping alone", func(t *testing.T) {
		p.enqueue(nil, true)
		msgs, send, _, _ := p.take()
		require.Empty(t, msgs)
		require.True(t, send)
	})
	t.Run("overflow drops newest", func(t *testing.T) {
		var in []*transportpb.RaftMessage
		for i := range uint64(6) {
			in = append(in, msg(1, 1, 2, i))
		}
		p.enqueue(in, false)
		msgs, _, dropped, _ := p.take()
		require.Equal(t, in[:4], msgs)
		require.Equal(t, 2, dropped)
		_, _, dropped, _ = p.take()
		require.Zero(t, dropped, "reported once")
	})
	t.Run("large messages split batches", func(t *testing.T) {
		big := make([]byte, 600<<10)
		for i := range 3 {
			p.enqueue([]*transportpb.RaftMessage{{TabletId: uint64(i), Message: big}}, false)
		}
		msgs, _, _, more := p.take()
		require.Len(t, msgs, 2)
		require.True(t, more)
		msgs, _, _, more = p.take()
		require.Len(t, msgs, 1)
		require.Equal(t, uint64(2), msgs[0].TabletId)
		require.False(t, more)
	})
}

// TestSendQueueOverflowReported: a destination that cannot be reached
// overflows its queue and is reported, without blocking Send.
func TestSendQueueOverflowReported(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{SendQueueLen: 2})
	var msgs []*transportpb.RaftMessage
	for i := range uint64(100) {
		msgs = append(msgs, msg(1, 1, 42, i))
	}
	start := time.Now()
	for range 50 {
		n1.tr.Send(42, msgs)
	}
	require.Less(t, time.Since(start), 5*time.Second, "Send must not block")
	testutils.SucceedsSoon(t, func() error { return n1.h.expectUnreachable(42) })
	p := n1.tr.peer(peerKey{store: 42})
	p.mu.Lock()
	queued := len(p.mu.msgs)
	p.mu.Unlock()
	require.LessOrEqual(t, queued, 2)
}

// TestSendControlNotBehindData: a message sent with SendControl arrives
// while a large one sent earlier with Send is still being received and
// handled, as a raft heartbeat must while a multi-MiB MsgApp crawls over
// a loaded link (else the followers call an election).
func TestSendControlNotBehindData(t *testing.T) {
	res := newTestResolver()
	n1 := startNode(t, 1, res, Options{})
	n2 := startNode(t, 2, res, Options{})
	release := make(chan struct{})
	defer close(release)
	n2.h.mu.Lock()
	n2.h.hold = func(b *transportpb.RaftMessageBatch) {
		for _, m := range b.Messages {
			if m.TabletId == 1 {
				<-release // the big message is still "arriving"
			}
		}
	}
	n2.h.mu.Unlock()

	big := msg(1, 1, 2, 0)
	big.Message = append(big.Message, make([]byte, 8<<20)...)
	n1.tr.Send(2, []*transportpb.RaftMessage{big})
	n1.tr.SendControl(2, []*transportpb.RaftMessage{msg(2, 1, 2, 0)})
	// The control message is delivered behind the held data message.
	testutils.SucceedsSoon(t, func() error { return n2.h.expect(2) })
	require.False(t, n2.h.has(1))
}

// TestControlLaneCarriesRaftBusy: control-lane batches (pings included) are
// marked and carry RaftBusy as it is when they are sent; data-lane batches
// carry neither, since one may arrive long after it was stamped.
func TestControlLaneCarriesRaftBusy(t *testing.T) {
	res := newTestResolver()
	var busy atomic.Bool
	n1 := startNode(t, 1, res, Options{RaftBusy: busy.Load})
	n2 := startNode(t, 2, res, Options{})

	n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 0)})
	n1.tr.SendControl(2, []*transportpb.RaftMessage{msg(2, 1, 2, 0)})
	testutils.SucceedsSoon(t, func() error { return n2.h.expect(2) })
	busy.Store(true)
	n1.tr.Send(2, []*transportpb.RaftMessage{msg(3, 1, 2, 0)})
	n1.tr.Send(2, nil) // a liveness ping
	testutils.SucceedsSoon(t, func() error {
		if err := n2.h.expect(3); err != nil {
			return err
		}
		for _, b := range n2.h.batchList() {
			if len(b.Messages) == 0 {
				return nil
			}
		}
		return fmt.Errorf("no ping yet")
	})
	for _, b := range n2.h.batchList() {
		switch {
		case len(b.Messages) == 0:
			require.True(t, b.ControlLane && b.RaftBusy, "ping sent while busy: %v", b)
		case b.Messages[0].TabletId == 2:
			require.True(t, b.ControlLane, "control message: %v", b)
			require.False(t, b.RaftBusy, "control message sent while idle: %v", b)
		default:
			require.False(t, b.ControlLane || b.RaftBusy, "data-lane batch: %v", b)
		}
	}
}

// cachingResolver answers from a cache that keeps an address until the
// transport invalidates it, as the tablet server's PD resolver does.
type cachingResolver struct {
	*testResolver
	mu          sync.Mutex
	cached      map[uint64]string
	invalidated int
}

func (r *cachingResolver) Resolve(id uint64) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.cached[id]; ok {
		return a, nil
	}
	a, err := r.testResolver.Resolve(id)
	if err == nil {
		r.cached[id] = a
	}
	return a, err
}

func (r *cachingResolver) Invalidate(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cached, id)
	r.invalidated++
}

// TestSendReresolvesUnreachableStore: a store restarted on another
// address is reached there although the resolver had cached the old one.
// The transport invalidates the address it cannot reach; before, it kept
// dialling the old one for the cache's lifetime.
func TestSendReresolvesUnreachableStore(t *testing.T) {
	res := &cachingResolver{testResolver: newTestResolver(), cached: map[uint64]string{}}
	n1 := startNode(t, 1, res.testResolver, Options{Resolver: res})
	n2 := startNode(t, 2, res.testResolver, Options{})
	// Store 2's old address, where nothing listens any more.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	res.cached[2] = lis.Addr().String()
	require.NoError(t, lis.Close())

	testutils.SucceedsSoon(t, func() error {
		n1.tr.Send(2, []*transportpb.RaftMessage{msg(1, 1, 2, 0)})
		return n2.h.expect(1)
	})
	res.mu.Lock()
	defer res.mu.Unlock()
	require.Positive(t, res.invalidated)
}
