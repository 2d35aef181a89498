package importer

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"time"

	"github.com/shaledb/shale/internal/keys"
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
	return j.splitAndScatterAt(ctx, j.splitPoints())
}

// splitAndScatterAt splits the table at points (row keys) and spreads the
// tablets' leaders.
func (j *job) splitAndScatterAt(ctx context.Context, points [][]byte) error {
	if len(points) == 0 {
		return nil
	}
	// One request: the PD splits each tablet at all the points inside it
	// in one raft command and returns once it routes every new tablet.
	sctx, cancel := context.WithTimeout(ctx, splitTimeout)
	err := j.cl.splitKeys(sctx, points)
	cancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil {
		// Best effort: the ingest works with whatever tablets exist.
		j.o.Logger.Warn("split failed", "points", len(points), "err", err)
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

// splitTimeout bounds the split phase's request to the PD.
const splitTimeout = time.Minute
