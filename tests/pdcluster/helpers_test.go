package pdcluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// tabletConns keeps one Tablet API connection per store for a test's
// writes and reads, so that each operation costs PD's routing lookup and
// the request, not a new connection.
type tabletConns struct {
	c       *testcluster.Cluster
	mu      sync.Mutex
	m       map[uint64]kvpb.TabletClient
	closers []func()
}

func newTabletConns(t *testing.T, c *testcluster.Cluster) *tabletConns {
	tc := &tabletConns{c: c, m: map[uint64]kvpb.TabletClient{}}
	t.Cleanup(func() {
		tc.mu.Lock()
		defer tc.mu.Unlock()
		for _, f := range tc.closers {
			f()
		}
	})
	return tc
}

// open returns store storeID's client, connecting the first time.
func (tc *tabletConns) open(ctx context.Context, storeID uint64) (kvpb.TabletClient, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if cl, ok := tc.m[storeID]; ok {
		return cl, nil
	}
	cl, done, err := tc.c.TabletClient(ctx, storeID)
	if err != nil {
		return nil, err
	}
	tc.closers = append(tc.closers, done)
	tc.m[storeID] = cl
	return cl, nil
}

// put writes one cell through the tablet's current leader, re-resolving
// through PD on routing errors. (Tests here exercise PD; kvclient has its
// own tests.)
func put(ctx context.Context, c *tabletConns, table uint64, row, value []byte) error {
	return routed(ctx, c, table, row, func(cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: h, TableId: table, RowKey: row, Mutations: []*kvpb.Mutation{
			{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Value: value}}},
		}})
		return err
	})
}

// get reads one cell's value.
func get(ctx context.Context, c *tabletConns, table uint64, row []byte) ([]byte, error) {
	var v []byte
	err := routed(ctx, c, table, row, func(cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{Header: h, TableId: table, RowKey: row})
		if err == nil && resp.Row != nil {
			v = resp.Row.Cells[0].Value
		}
		return err
	})
	return v, err
}

func routed(ctx context.Context, tc *tabletConns, table uint64, row []byte, op func(kvpb.TabletClient, *kvpb.RequestHeader) error) error {
	key := keys.RowKey(table, row)
	for {
		err := func() error {
			resp, err := tc.c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
			if status.Code(err) == codes.NotFound {
				// Between a split's reports PD may know the narrowed left
				// tablet but not yet the right one (kvclient retries too).
				return fmt.Errorf("no leader")
			}
			if err != nil {
				return err
			}
			if resp.Tablet.LeaderStoreId == 0 {
				return fmt.Errorf("no leader")
			}
			cl, err := tc.open(ctx, resp.Tablet.LeaderStoreId)
			if err != nil {
				return err
			}
			return op(cl, &kvpb.RequestHeader{TabletId: resp.Tablet.Tablet.TabletId})
		}()
		if err == nil {
			return nil
		}
		if !retry.Classify(err).NotApplied() && err.Error() != "no leader" && errs.Code(err) != "KV:Unavailable" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tablets lists the cluster's tablets from PD.
func tablets(ctx context.Context, c *testcluster.Cluster) ([]*pdpb.TabletInfo, error) {
	resp, err := c.PD().ScanTablets(ctx, &pdpb.ScanTabletsRequest{})
	if err != nil {
		return nil, err
	}
	return resp.Tablets, nil
}

// perStore counts replicas and leaders per store ID.
func perStore(ts []*pdpb.TabletInfo) (replicas, leaders map[uint64]int) {
	replicas, leaders = map[uint64]int{}, map[uint64]int{}
	for _, t := range ts {
		for _, r := range t.Tablet.Replicas {
			replicas[r.StoreId]++
		}
		leaders[t.LeaderStoreId]++
	}
	return replicas, leaders
}

// within reports whether every one of the stores' counts is within frac of
// their mean.
func within(counts map[uint64]int, stores []uint64, frac float64) error {
	total := 0
	for _, s := range stores {
		total += counts[s]
	}
	mean := float64(total) / float64(len(stores))
	for _, s := range stores {
		if d := float64(counts[s]) - mean; d > frac*mean || -d > frac*mean {
			return fmt.Errorf("store %d has %d, mean %.1f (counts %v)", s, counts[s], mean, counts)
		}
	}
	return nil
}

// eachRow runs f for rows 0..n-1 from a few goroutines (each row once) and
// returns the first error; after an error no new row is started.
func eachRow(n int, f func(i int) error) error {
	const workers = 4
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		failed  atomic.Bool
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return first
}
