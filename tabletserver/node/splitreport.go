package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// splitReporter tells the placement driver about every tablet a split led
// here produced as soon as the split applied (TiKV's ReportBatchSplit),
// so PD routes the new tablets without waiting for their leaders'
// heartbeats and never has a gap between the narrowed left tablet and
// the right ones. Reports queue without blocking the store; a full queue
// drops a report, and the next heartbeats carry the same facts.
type splitReporter struct {
	cl      *pdclient.Client
	storeID uint64
	log     *slog.Logger
	ch      chan []*metapb.TabletDescriptor
}

// splitReportQueue bounds the reports waiting for PD.
const splitReportQueue = 256

func newSplitReporter(cl *pdclient.Client, storeID uint64, log *slog.Logger) *splitReporter {
	return &splitReporter{cl: cl, storeID: storeID, log: log, ch: make(chan []*metapb.TabletDescriptor, splitReportQueue)}
}

// onSplit is store.Options.OnSplit.
func (r *splitReporter) onSplit(tablets []*metapb.TabletDescriptor) {
	select {
	case r.ch <- tablets:
	default:
		r.log.Warn("split report queue full; PD learns of the split from heartbeats", "tablet", tablets[0].GetTabletId())
	}
}

// run sends queued reports until ctx ends.
func (r *splitReporter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ts := <-r.ch:
			r.report(ctx, ts)
		}
	}
}

func (r *splitReporter) report(ctx context.Context, tablets []*metapb.TabletDescriptor) {
	req := &pdpb.ReportSplitRequest{StoreId: r.storeID}
	for _, d := range tablets {
		// This store led the parent and its replicas of the new tablets
		// campaign at once (store.initSplitReplica): it is the best
		// leader hint until their own heartbeats. No term: the new
		// tablets' leaders are not known here, and PD takes term 0 as is.
		req.Reports = append(req.Reports, &pdpb.TabletReport{Tablet: d, LeaderStoreId: r.storeID})
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.cl.ReportSplit(cctx, req); err != nil && ctx.Err() == nil {
		r.log.Warn("reporting a split to the placement driver failed; heartbeats will carry it", "tablet", tablets[0].GetTabletId(), "err", err)
	}
}
