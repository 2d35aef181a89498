package importer

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// cluster is what the importer asks of the placement driver directly:
// tables, timestamps, the PD's view of tablets while splitting, and split
// and leader operators. Routing, store connections and retries are
// kvclient's (job.kv).
type cluster struct {
	pd *pdclient.Client
}

func dialCluster(ctx context.Context, endpoints []string, tls *security.Reloader) (*cluster, error) {
	pd, err := pdclient.New(endpoints, 0, pdclient.WithTLS(tls))
	if err != nil {
		return nil, err
	}
	if _, err := pd.GetMembers(ctx); err != nil {
		pd.Close()
		return nil, fmt.Errorf("importer: contacting the placement driver at %v: %w", endpoints, err)
	}
	return &cluster{pd: pd}, nil
}

func (c *cluster) close() { c.pd.Close() }

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
