package importer

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
)

// ---- phase 2: split and scatter ----

// splitPoints picks row keys about every SplitBytes of sorted data.
func (j *job) splitPoints() [][]byte {
	if j.o.SplitBytes < 0 || len(j.cp.Samples) == 0 {
		return nil
	}
	samples := slices.Clone(j.cp.Samples)
	sort.Slice(samples, func(a, b int) bool { return bytes.Compare(samples[a].Key, samples[b].Key) < 0 })
	var out [][]byte
	var acc int64
	for _, s := range samples {
		acc += s.Bytes
		if acc < j.o.SplitBytes {
			continue
		}
		row, err := keys.RowPrefix(s.Key)
		if err != nil {
			continue
		}
		if len(out) > 0 && bytes.Compare(row, out[len(out)-1]) <= 0 {
			continue
		}
		out = append(out, bytes.Clone(row))
		acc = 0
	}
	return out
}

func (j *job) splitAndScatter(ctx context.Context) error {
	points := j.splitPoints()
	if len(points) == 0 {
		return nil
	}
	// The PD runs one operator per tablet, so splits of one tablet are
	// sequential; splitting at the middle point first and then both
	// halves concurrently takes log2(n) rounds instead of n.
	g := j.stopper.NewGroup()
	var split func(ctx context.Context, ps [][]byte)
	split = func(ctx context.Context, ps [][]byte) {
		if len(ps) == 0 || ctx.Err() != nil {
			return
		}
		mid := len(ps) / 2
		if err := j.splitAt(ctx, ps[mid]); err != nil && ctx.Err() == nil {
			// Best effort: the ingest works with whatever tablets exist.
			j.o.Logger.Warn("split failed", "key", fmt.Sprintf("%x", ps[mid]), "err", err)
		}
		g.Go(ctx, "importer.split-at", func(ctx context.Context) { split(ctx, ps[:mid]) })
		g.Go(ctx, "importer.split-at", func(ctx context.Context) { split(ctx, ps[mid+1:]) })
	}
	split(ctx, points)
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	start := keys.TablePrefix(j.schema.TableId)
	tablets, err := j.cl.tablets(ctx, start, keys.PrefixEnd(start))
	if err != nil {
		return err
	}
	// Spread leaders round-robin over each tablet's replicas.
	for i, t := range tablets {
		reps := t.GetTablet().GetReplicas()
		if len(reps) < 2 {
			continue
		}
		to := reps[i%len(reps)].StoreId
		if to != t.LeaderStoreId {
			if err := j.cl.transferLeader(ctx, t.Tablet.TabletId, to); err != nil {
				j.o.Logger.Debug("leader scatter failed", "tablet", t.Tablet.TabletId, "err", err)
			}
		}
	}
	return nil
}

// splitAt asks the PD to split the tablet holding row key p at p and waits
// (up to 10s) until the PD reports the split.
func (j *job) splitAt(ctx context.Context, p []byte) error {
	deadline := time.Now().Add(10 * time.Second)
	var requested time.Time
	bo := retry.NewExponential(50*time.Millisecond, 200*time.Millisecond)
	for {
		info, err := j.cl.tablet(ctx, p)
		if err == nil && bytes.Equal(info.Tablet.StartKey, p) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("split not visible after 10s (last error: %v)", err)
		}
		// (Re-)request it: the PD may refuse while the tablet runs another
		// operator, or cancel the split when the tablet changes.
		if err == nil && time.Since(requested) > 2*time.Second {
			if err := j.cl.split(ctx, info.Tablet.TabletId, p); err == nil {
				requested = time.Now()
			} else {
				j.o.Logger.Debug("split request", "tablet", info.Tablet.TabletId, "err", err)
			}
		}
		if err := bo.Wait(ctx, 0); err != nil {
			return err
		}
	}
}
