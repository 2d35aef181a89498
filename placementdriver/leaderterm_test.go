package placementdriver_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// termReporter sends tablet 1's heartbeat (whole key space, a replica on
// every store, epoch 1/1) as the leader on one store at one raft term, and
// reads back PD's leader and size of the tablet.
type termReporter struct {
	t      *testing.T
	ctx    context.Context
	cl     *pdclient.Client
	stores []uint64
}

func (r termReporter) report(store, term, size uint64) {
	r.t.Helper()
	d := &metapb.TabletDescriptor{TabletId: 1, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for i, id := range r.stores {
		d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: uint64(100 + i), StoreId: id})
	}
	_, err := r.cl.TabletHeartbeat(r.ctx, &pdpb.TabletHeartbeatRequest{StoreId: store, Reports: []*pdpb.TabletReport{{
		Tablet: d, LeaderStoreId: store, Term: term, Stats: &pdpb.TabletStats{ApproximateSize: size},
	}}})
	require.NoError(r.t, err)
}

func (r termReporter) want(leader, size uint64) {
	r.t.Helper()
	resp, err := r.cl.GetTablet(r.ctx, &pdpb.GetTabletRequest{Key: []byte("a")})
	require.NoError(r.t, err)
	require.Equal(r.t, leader, resp.Tablet.LeaderStoreId, "leader")
	require.Equal(r.t, size, resp.Tablet.Stats.GetApproximateSize(), "size")
}

// step is one report (from store, at term, with size) and PD's leader
// and size after it.
type step struct{ store, term, size, leader, wantSize uint64 }

func (r termReporter) run(steps []step) {
	r.t.Helper()
	for _, st := range steps {
		r.report(st.store, st.term, st.size)
		r.want(st.leader, st.wantSize)
	}
}

func startTermPD(t *testing.T) (*pdCluster, termReporter) {
	c := startPD(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cl := c.client()
	c.leader(ctx, cl)
	return c, termReporter{t: t, ctx: ctx, cl: cl, stores: httpRegisterStores(ctx, t, cl, 3)}
}

// A leader report with an older raft term than PD holds (a deposed leader
// that still thinks it leads) changes neither the leader nor the stats; a
// newer term wins; the same term from another store keeps the first. A
// restarted PD holds no term: the first report wins.
func TestLeaderReportWithOlderTermIgnored(t *testing.T) {
	c, r := startTermPD(t)
	a, b, third := r.stores[0], r.stores[1], r.stores[2]
	r.run([]step{
		{a, 5, 100, a, 100},
		{b, 4, 200, a, 100}, // older term: stale
		{b, 6, 300, b, 300}, // newer term wins
		{a, 5, 400, b, 300},
		{a, 6, 500, b, 300}, // same term, another store: the first keeps it
		{b, 6, 600, b, 600},
	})

	c.stop("pd1")
	c.start("pd1", nil)
	r.cl = c.client()
	c.leader(r.ctx, r.cl)
	r.run([]step{
		{third, 2, 700, third, 700}, // a restarted PD holds no term
		{b, 1, 800, third, 700},
	})
}

// Rolling upgrade: a store that does not send a term (0) is taken as
// before, whatever term PD holds, and clears it.
func TestLeaderReportWithoutTermTaken(t *testing.T) {
	_, r := startTermPD(t)
	a, b := r.stores[0], r.stores[1]
	r.run([]step{
		{a, 0, 100, a, 100},
		{b, 0, 200, b, 200},
		{a, 5, 300, a, 300},
		{b, 0, 400, b, 400}, // term 0 is taken and clears the held term
		{a, 3, 500, a, 500},
	})
}
