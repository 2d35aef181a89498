package importer

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// cluster is what the importer needs of a Shale cluster: the placement
// driver (tables, tablets, timestamps, split and leader operators) and
// gRPC connections to stores.
type cluster struct {
	pd *pdclient.Client

	mu    sync.Mutex
	conns map[uint64]*grpc.ClientConn
}

func dialCluster(ctx context.Context, endpoints []string) (*cluster, error) {
	pd, err := pdclient.New(endpoints, 0)
	if err != nil {
		return nil, err
	}
	if _, err := pd.GetMembers(ctx); err != nil {
		pd.Close()
		return nil, fmt.Errorf("importer: contacting the placement driver at %v: %w", endpoints, err)
	}
	return &cluster{pd: pd, conns: map[uint64]*grpc.ClientConn{}}, nil
}

func (c *cluster) close() {
	c.mu.Lock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = nil
	c.mu.Unlock()
	c.pd.Close()
}

func (c *cluster) table(ctx context.Context, name string) (*metapb.TableSchema, error) {
	resp, err := c.pd.GetTable(ctx, &pdpb.GetTableRequest{Name: name})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("importer: table %q does not exist", name)
		}
		return nil, fmt.Errorf("importer: looking up table %q: %w", name, err)
	}
	if resp.Table == nil {
		return nil, fmt.Errorf("importer: table %q does not exist", name)
	}
	return resp.Table, nil
}

func (c *cluster) timestamp(ctx context.Context) (int64, error) {
	resp, err := c.pd.GetTimestamp(ctx, &pdpb.GetTimestampRequest{Count: 1})
	if err != nil {
		return 0, fmt.Errorf("importer: timestamp from the placement driver: %w", err)
	}
	return resp.First, waitForTimestamp(ctx, resp.First, time.Now)
}

// maxTimestampLead is how far ahead of this machine's clock the PD's
// timestamp may be: its oracle serves from above a window it persisted,
// up to 3 s ahead of wall time, after a leader change. Further ahead, a
// clock is wrong.
const maxTimestampLead = 10 * time.Second

// waitForTimestamp returns once the wall clock reached ts. Tablet servers
// refuse an ingest whose max timestamp lies more than their maximum clock
// offset (500 ms) ahead of their clock, and a new PD leader's timestamps
// may lead wall time by seconds.
func waitForTimestamp(ctx context.Context, ts int64, now func() time.Time) error {
	if ts < 0 {
		return fmt.Errorf("importer: the placement driver returned a negative timestamp %d", ts)
	}
	leadUs := ts - now().UnixMicro()
	if leadUs <= 0 {
		return nil
	}
	if leadUs > maxTimestampLead.Microseconds() {
		return fmt.Errorf("importer: the placement driver's timestamp %d is more than %v ahead of this machine's clock; check the clocks", ts, maxTimestampLead)
	}
	lead := time.Duration(leadUs) * time.Microsecond
	t := time.NewTimer(lead)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tablet returns the tablet holding an encoded row key, as the PD knows it.
func (c *cluster) tablet(ctx context.Context, rowKey []byte) (*pdpb.TabletInfo, error) {
	resp, err := c.pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: rowKey})
	if err != nil {
		return nil, err
	}
	if resp.Tablet == nil || resp.Tablet.Tablet == nil {
		return nil, fmt.Errorf("importer: the placement driver knows no tablet for key %x", rowKey)
	}
	return resp.Tablet, nil
}

// tablets lists the tablets overlapping [start, end).
func (c *cluster) tablets(ctx context.Context, start, end []byte) ([]*pdpb.TabletInfo, error) {
	var out []*pdpb.TabletInfo
	for {
		resp, err := c.pd.ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: start, EndKey: end, Limit: 256})
		if err != nil {
			return nil, err
		}
		out = append(out, resp.Tablets...)
		if len(resp.Tablets) < 256 {
			return out, nil
		}
		last := resp.Tablets[len(resp.Tablets)-1].GetTablet().GetEndKey()
		if len(last) == 0 || bytes.Compare(last, end) >= 0 || bytes.Compare(last, start) <= 0 {
			return out, nil
		}
		start = last
	}
}

func (c *cluster) client(ctx context.Context, storeID uint64) (kvpb.TabletClient, error) {
	c.mu.Lock()
	cc, ok := c.conns[storeID]
	c.mu.Unlock()
	if ok {
		return kvpb.NewTabletClient(cc), nil
	}
	resp, err := c.pd.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: storeID})
	if err != nil {
		return nil, fmt.Errorf("importer: resolving store %d: %w", storeID, err)
	}
	addr := resp.GetStore().GetStore().GetAddress()
	if addr == "" {
		return nil, fmt.Errorf("importer: store %d has no address", storeID)
	}
	cc, err = grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		limits.DialOption(),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.conns[storeID]; ok {
		cc.Close()
		cc = prev
	} else {
		c.conns[storeID] = cc
	}
	return kvpb.NewTabletClient(cc), nil
}

// forget drops a store's connection (it may have moved address).
func (c *cluster) forget(storeID uint64) {
	c.mu.Lock()
	if cc, ok := c.conns[storeID]; ok {
		cc.Close()
		delete(c.conns, storeID)
	}
	c.mu.Unlock()
}

// splitKeys asks the PD to make every key start a tablet: one batch split
// per tablet, done when the PD routes them all.
func (c *cluster) splitKeys(ctx context.Context, keys [][]byte) error {
	_, err := c.pd.SplitTablets(ctx, &pdpb.SplitTabletsRequest{SplitKeys: keys})
	return err
}

func (c *cluster) transferLeader(ctx context.Context, tabletID, toStore uint64) error {
	_, err := c.pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: tabletID, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: toStore}})
	return err
}

// routing classifies an ingest error.
type routing int

const (
	routeFatal    routing = iota
	routeRecut            // the tablet changed: locate again and re-cut
	routeLeader           // another store leads: retry there
	routeReupload         // the store lost or rejected the staged file
	routeRetry            // transient: back off and retry
)

func classify(err error) (routing, *errorpb.NotLeader) {
	switch d := errs.Detail(err).(type) {
	case *errorpb.NotLeader:
		return routeLeader, d
	case *errorpb.EpochMismatch, *errorpb.KeyNotInTablet, *errorpb.TabletNotFound:
		return routeRecut, nil
	case *errorpb.ServerBusy, *errorpb.TableNotFound:
		// TableNotFound: the store has not heard of a new table yet.
		return routeRetry, nil
	}
	switch status.Code(err) {
	case codes.NotFound, codes.DataLoss:
		return routeReupload, nil
	case codes.Unavailable, codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
		// Unknown is "result unknown" (Ambiguous): ingesting again is
		// harmless, the cells are identical.
		return routeRetry, nil
	}
	return routeFatal, nil
}
