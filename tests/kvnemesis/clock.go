package kvnemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// Request-ID records and skewed clocks (issue 15, fix 4). A tablet keeps a
// write's request-ID record for dedupRetention of its own HLC time; a
// store's wall clock may run ahead of the others. The numbers keep correct
// code correct and make wall-clock expiry visible:
//
//   - A worker resends a write for at most opTimeout (20 s) after its first
//     attempt, and a resend may still apply some seconds later (a proposal
//     left in a log that commits after an election). A tablet's time runs
//     at most clockAhead ahead of real time (only a store ahead proposes
//     ahead). 20 s + 15 s of slack + clockAhead = dedupRetention, so no
//     record a worker may still resend expires by the tablet's time.
//   - The probe holds its write's responses for probeHold, so its client
//     resends for that long. probeHold < dedupRetention: by real time, or
//     any clock that is not ahead, its record never expires either. But
//     probeHold > dedupRetention - clockAhead + a GC interval + a resend's
//     backoff: a store whose wall clock jumped clockAhead forward after the
//     write, and that expired records by its wall clock, drops the record
//     while the client still resends, and the resend applies twice.
//
// GC runs every 5 s. A 1 s interval once made most runs end with a
// tablet that never served again; the defects behind it (replica IDs out
// of order, learners promoted without data, replicas recreated while
// being destroyed) are fixed (docs/reliability.md), and 1 s is what a
// hunt for the next one should use.
const (
	dedupRetention = 50 * time.Second
	clockAhead     = 15 * time.Second
	probeHold      = 45 * time.Second
	gcInterval     = 5 * time.Second
)

// clocks are the stores' wall clocks (store.Options.WallClock, the HLC's
// physical clock), by store index: real time plus an offset that the
// nemesis sets. Offsets are 0 or clockAhead, never negative, so a leader's
// clock is never behind this machine's (the workers' explicit timestamps
// rely on it).
type clocks struct {
	ahead []atomic.Int64 // nanoseconds
}

func newClocks(n int) *clocks { return &clocks{ahead: make([]atomic.Int64, n)} }

func (c *clocks) wall(i int) func() time.Time {
	return func() time.Time { return time.Now().Add(time.Duration(c.ahead[i].Load())) }
}

// jump moves store i's wall clock forward by clockAhead, unless it is
// ahead already; it reports whether it moved.
func (c *clocks) jump(i int) bool {
	return c.ahead[i].CompareAndSwap(0, int64(clockAhead))
}

// reset sets every clock back to real time (as an NTP step would); the
// stores' HLCs never go back.
func (c *clocks) reset() {
	for i := range c.ahead {
		c.ahead[i].Store(0)
	}
}

// idleTable holds the probe's row; no other client writes it and the
// nemesis neither splits nor merges it, so between the probe's writes its
// tablet's HLC time stands still.
const (
	idleTable = "kvnemesis_idle"
	probeRow  = "idle.ctr"
	probeID   = 7 // history client ID: after the workers (0-5) and the transfer probe (6)
)

// dedupProbe increments a counter on a quiet tablet while every response
// to the increment is lost for probeHold (the client resends it under the
// same request ID all that time), and meanwhile the wall clock of the
// store leading the tablet jumps clockAhead forward. The increment and a
// final read go into the history: applied twice, the counter's value has
// no linearization.
type dedupProbe struct {
	c      *testcluster.Cluster
	clocks *clocks
	h      *history
	cl     *kvclient.Client
	tbl    *kvclient.Table
	key    []byte // the probe row's engine key, for PD lookups

	hold    atomic.Bool   // lose write responses while set
	applied chan struct{} // a write applied while held
	addrs   sync.Map      // store ID → index
}

// openProbe creates the idle table and the probe's client, whose write
// responses are lost while the probe holds them.
func openProbe(ctx context.Context, c *testcluster.Cluster, cl *kvclient.Client, h *history, cks *clocks) (*dedupProbe, error) {
	info, err := cl.CreateTable(ctx, idleTable, []kvclient.Family{{Name: famF}, {Name: famG}})
	if err != nil {
		return nil, err
	}
	p := &dedupProbe{c: c, clocks: cks, h: h, key: keys.RowKey(info.ID, []byte(probeRow)), applied: make(chan struct{}, 1)}
	pc, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), RequestTimeout: opTimeout, DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(p.intercept)}})
	if err != nil {
		return nil, err
	}
	p.cl = pc
	if p.tbl, err = pc.Table(ctx, idleTable); err != nil {
		pc.Close()
		return nil, err
	}
	return p, nil
}

func (p *dedupProbe) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err != nil || !p.hold.Load() || !writeMethods[method[strings.LastIndexByte(method, '/')+1:]] {
		return err
	}
	select {
	case p.applied <- struct{}{}:
	default:
	}
	return status.Error(codes.Unavailable, "kvnemesis: probe response lost after the write applied")
}

// loop runs probe rounds while a whole round fits before ctx ends, with a
// pause of clockAhead between rounds: a store's HLC stays ahead that long
// after its wall clock is set back.
func (p *dedupProbe) loop(ctx context.Context, rng *rand.Rand) {
	deadline, _ := ctx.Deadline()
	for ctx.Err() == nil && time.Until(deadline) > probeHold+5*time.Second {
		err := p.round(ctx)
		p.clocks.reset()
		if err != nil {
			p.h.count("fault clock-jump (not injected)")
			p.h.sample("fault clock-jump", err)
		}
		sleep(ctx, clockAhead+time.Duration(rng.Int64N(int64(time.Second))))
	}
}

// round is one held increment. The probe is the only writer of its row,
// so the model knows what each increment must return.
func (p *dedupProbe) round(ctx context.Context) error {
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeHold+opTimeout)
	defer cancel()
	f, q := splitCol(colN)
	in := input{Row: probeRow, Kind: opIncrement, Cols: []string{colN}, Delta: 1, Desc: "probe increment (responses lost for 45 s, the leader's clock 15 s ahead)"}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	select {
	case <-p.applied: // a signal left from the last round's hold
	default:
	}
	p.hold.Store(true)
	defer p.hold.Store(false)
	call := p.h.now()
	go func() {
		n, err := p.tbl.Increment(opCtx, []byte(probeRow), f, q, in.Delta)
		done <- result{n, err}
	}()
	record := func(r result) {
		ret := p.h.now()
		p.h.count("probe-increment")
		if rec, unknown := outcome(r.err); rec {
			p.h.add(probeID, in, output{Unknown: unknown, Value: encodeInt(r.n)}, call, ret)
		}
	}
	var first time.Time
	select {
	case <-p.applied:
		first = time.Now()
	case r := <-done:
		record(r)
		return fmt.Errorf("the increment returned before it applied: %v", r.err)
	}
	// Every store that leads the tablet while the client resends has its
	// clock jump ahead, after the record was written.
	jumped := 0
	for time.Since(first) < probeHold {
		if i, err := p.leaderIndex(opCtx); err == nil && p.clocks.jump(i) {
			jumped++
			p.h.count("fault clock-jump")
		}
		sleep(opCtx, 200*time.Millisecond) // poll the leader while the hold lasts
	}
	p.hold.Store(false)
	record(<-done)
	if jumped == 0 {
		return fmt.Errorf("no leader of the probe's tablet found")
	}
	return nil
}

// leaderIndex is the index in the cluster of the store leading the
// probe's tablet.
func (p *dedupProbe) leaderIndex(ctx context.Context) (int, error) {
	resp, err := p.c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: p.key})
	if err != nil {
		return 0, err
	}
	id := resp.Tablet.LeaderStoreId
	if i, ok := p.addrs.Load(id); ok {
		return i.(int), nil
	}
	st, err := p.c.PD().GetStore(ctx, &pdpb.GetStoreRequest{StoreId: id})
	if err != nil {
		return 0, err
	}
	for _, s := range p.c.Stores {
		if s.Addr == st.Store.Store.Address {
			p.addrs.Store(id, s.Index)
			return s.Index, nil
		}
	}
	return 0, fmt.Errorf("store %d (%s) is not in the cluster", id, st.Store.Store.Address)
}
