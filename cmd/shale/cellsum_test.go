package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// bitFlipper is a client interceptor that flips one bit of a cell value
// on the way to the servers (writes) or back from one server (reads),
// after kvclient computed or before it checks the checksums: a bit
// changed on the network or in a server's memory.
type bitFlipper struct {
	mu         sync.Mutex
	writes     int    // MutateRow and BatchMutate requests still to corrupt
	readsFrom  string // corrupt every Get answer from this address
	readFlips  atomic.Int64
	writeFlips atomic.Int64
}

func (b *bitFlipper) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	b.mu.Lock()
	flipWrite := b.writes > 0 && (strings.HasSuffix(method, "/MutateRow") || strings.HasSuffix(method, "/BatchMutate"))
	if flipWrite {
		b.writes--
	}
	flipRead := b.readsFrom != "" && strings.HasSuffix(cc.Target(), b.readsFrom) && strings.HasSuffix(method, "/Get")
	b.mu.Unlock()
	if flipWrite {
		req = proto.Clone(req.(proto.Message)) // the client's copy stays intact
		var m *kvpb.Mutation
		switch r := req.(type) {
		case *kvpb.MutateRowRequest:
			m = r.Mutations[0]
		case *kvpb.BatchMutateRequest:
			m = r.Entries[len(r.Entries)-1].Mutations[0]
		}
		m.GetSetCell().Value[0] ^= 0x01
		b.writeFlips.Add(1)
	}
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil && flipRead {
		if cells := reply.(*kvpb.GetResponse).GetRow().GetCells(); len(cells) > 0 {
			cells[0].Value[len(cells[0].Value)/2] ^= 0x10
			b.readFlips.Add(1)
		}
	}
	return err
}

// TestCellChecksumRefusesFlippedWrite: a bit flipped in a cell's value
// between kvclient and the tablet server is refused with
// ErrChecksumMismatch, and nothing of the row is applied; in a batch, only
// the corrupted row is refused. Without the checksum the flipped value
// would be stored and read back.
func TestCellChecksumRefusesFlippedWrite(t *testing.T) {
	// Its own cluster: on the shared one PD moves leaders for the other
	// tests' tables, and a flipped write refused as "not leader" is resent
	// intact (it failed once that way).
	c, _ := startedStores(t, 3, nil)
	pd := strings.Join(c.PDEndpoints(), ",")
	_, err := runShale(t, "table", "--pd", pd, "create", "cellsum_write", "f")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flip := &bitFlipper{}
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(flip.intercept)}})
	require.NoError(t, err)
	defer cl.Close()
	users, err := cl.Table(ctx, "cellsum_write")
	require.NoError(t, err)
	_, err = users.MutateRow(ctx, []byte("warm"), kvclient.SetCell("f", []byte("q"), []byte("up")))
	require.NoError(t, err)

	flip.mu.Lock()
	flip.writes = 1
	flip.mu.Unlock()
	_, err = users.MutateRow(ctx, []byte("a"), kvclient.SetCell("f", []byte("q"), []byte("value-a")), kvclient.SetCell("f", []byte("r"), []byte("other")))
	require.ErrorIs(t, err, kvclient.ErrChecksumMismatch)
	require.NotErrorIs(t, err, kvclient.ErrAmbiguous)
	require.EqualValues(t, 1, flip.writeFlips.Load())
	r, err := users.Get(ctx, []byte("a"))
	require.NoError(t, err)
	require.Nil(t, r, "a refused row must have no cell at all")

	flip.mu.Lock()
	flip.writes = 1
	flip.mu.Unlock()
	res := users.BatchMutate(ctx, []kvclient.RowMutation{
		{Row: []byte("b"), Mutations: []kvclient.Mutation{kvclient.SetCell("f", []byte("q"), []byte("value-b"))}},
		{Row: []byte("c"), Mutations: []kvclient.Mutation{kvclient.SetCell("f", []byte("q"), []byte("value-c"))}},
	})
	require.NoError(t, res[0])
	require.ErrorIs(t, res[1], kvclient.ErrChecksumMismatch)
	r, err = users.Get(ctx, []byte("b"))
	require.NoError(t, err)
	v, _ := r.Value("f", []byte("q"))
	require.Equal(t, "value-b", string(v))
	r, err = users.Get(ctx, []byte("c"))
	require.NoError(t, err)
	require.Nil(t, r)

	// Sent again, intact, the write applies.
	_, err = users.MutateRow(ctx, []byte("a"), kvclient.SetCell("f", []byte("q"), []byte("value-a")))
	require.NoError(t, err)
	r, err = users.Get(ctx, []byte("a"))
	require.NoError(t, err)
	v, _ = r.Value("f", []byte("q"))
	require.Equal(t, "value-a", string(v))
}

// TestCellChecksumReadServedElsewhere: every answer from the tablet's
// leader comes back with a flipped bit in a value. kvclient notices from
// the cell's CRC-32C, reads the row from a follower instead (so the
// caller gets the right value), and the follower has the leader check the
// tablet: the report of the bad replica reaches the consistency checker.
// Without the checksums the caller would get the flipped value.
func TestCellChecksumReadServedElsewhere(t *testing.T) {
	// Parallel: its own in-process cluster, and it mostly waits (on PD
	// and the stores), using little CPU.
	t.Parallel()
	// Its own cluster: it corrupts what the tablet's leader answers, which
	// must stay the leader (on the shared cluster PD moves leaders).
	c, storeByID := startedStores(t, 3, nil)
	pd := strings.Join(c.PDEndpoints(), ",")
	dropAtEnd(t, pd, "cellsum_read")
	_, err := runShale(t, "table", "--pd", pd, "create", "cellsum_read", "f")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flip := &bitFlipper{}
	reg := prometheus.NewRegistry()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), Registry: reg, DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(flip.intercept)}})
	require.NoError(t, err)
	defer cl.Close()
	users, err := cl.Table(ctx, "cellsum_read")
	require.NoError(t, err)
	want := map[string]string{}
	for i := 0; i < 20; i++ {
		row := fmt.Sprintf("r%02d", i)
		want[row] = strings.Repeat(row, 100)
		_, err := users.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), []byte(want[row])))
		require.NoError(t, err)
	}
	loc, err := users.Locate(ctx, []byte("r00"), true)
	require.NoError(t, err)
	info, err := c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: loc.TabletID})
	require.NoError(t, err)
	var holders []*store.Store // the tablet's replicas' stores
	for _, rep := range info.Tablet.GetTablet().GetReplicas() {
		s := storeByID(rep.StoreId)
		require.NotNil(t, s, "store %d", rep.StoreId)
		require.Nil(t, s.LastCheck(loc.TabletID), "periodic checks are off")
		holders = append(holders, s)
	}

	// PD may move the tablet's leader between the lookup and the reads
	// (it failed once that way: every read went to the new leader and none
	// was corrupted), so a round corrupts what the store the client routes
	// to answers; it is repeated until one of its answers was corrupted.
	corruptedRound := func() error {
		loc, err := users.Locate(ctx, []byte("r00"), true)
		if err != nil {
			return err
		}
		if loc.LeaderAddr == "" {
			return fmt.Errorf("tablet %d has no known leader", loc.TabletID)
		}
		flip.mu.Lock()
		flip.readsFrom = loc.LeaderAddr
		flip.mu.Unlock()
		before := flip.readFlips.Load()
		for row, v := range want {
			r, err := users.Get(ctx, []byte(row))
			require.NoError(t, err, row)
			got, ok := r.Value("f", []byte("q"))
			require.True(t, ok, row)
			require.Equal(t, v, string(got), row)
		}
		if flip.readFlips.Load() == before {
			return fmt.Errorf("no answer of store %d (%s) was corrupted: the leader moved", loc.LeaderStoreID, loc.LeaderAddr)
		}
		return nil
	}
	testutils.SucceedsSoon(t, corruptedRound)
	require.Positive(t, counterValue(t, reg, "shale_kvclient_cell_checksum_mismatches_total"))
	// The report reached the leader: it ran a check (periodic checks are
	// off), which found the replicas consistent (the flip was on the way).
	// The store that served the read again notes why. A report can be
	// lost (the leader moved, or a follower knew no leader yet); as a
	// client that keeps reading would, the wait corrupts more reads, and
	// the stores ask for a check again.
	tabletEvents := func() string {
		var events strings.Builder
		for _, s := range holders {
			events.WriteString(s.TabletEvents(loc.TabletID))
		}
		return events.String()
	}
	testutils.SucceedsSoon(t, func() error {
		for _, s := range holders {
			if rep := s.LastCheck(loc.TabletID); rep != nil {
				if !rep.Consistent {
					return fmt.Errorf("check: %v", rep)
				}
				return nil
			}
		}
		_ = corruptedRound()
		return fmt.Errorf("no check of tablet %d yet; its events:\n%s", loc.TabletID, tabletEvents())
	})
	require.Contains(t, tabletEvents(), "failed its cell checksums")
}

// counterValue is the value of a counter without labels in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}
