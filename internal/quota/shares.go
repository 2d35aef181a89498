package quota

import (
	"slices"

	"github.com/shaledb/shale/proto/pdpb"
)

// Placement is what PD knows about where requests land.
type Placement struct {
	// Stores are the stores serving now (state Up), in any order.
	Stores []uint64
	// Leaders counts, per table ID, the table's tablet leaders per store.
	Leaders map[uint64]map[uint64]int
}

// Shares splits every quota of st into per-store shares, by store ID.
//
// A table's limits follow its leaders: a store leading k of the table's n
// tablets (counting only serving stores) gets k/n of each limit, since a
// table's requests go to its leaders (HBase splits cluster-scope table
// quotas the same way, by regions). A store leading none gets no share of
// the table and does not limit it; a table with no leader known yet is
// split evenly. A user's requests can reach any store, so a user's limits
// are split evenly over the serving stores (as HBase splits user quotas).
// The result is deterministic and bounded by len(Quotas) × len(Stores).
func Shares(st *pdpb.QuotaState, p Placement) map[uint64][]*pdpb.QuotaShare {
	out := map[uint64][]*pdpb.QuotaShare{}
	if st == nil || len(p.Stores) == 0 {
		return out
	}
	stores := slices.Sorted(slices.Values(p.Stores))
	even := map[uint64]int{}
	for _, s := range stores {
		even[s] = 1
	}
	for _, q := range st.Quotas {
		weights := even
		if q.User == "" {
			if w := serving(p.Leaders[q.TableId], even); len(w) > 0 {
				weights = w
			}
		}
		total := 0
		for _, w := range weights {
			total += w
		}
		for _, s := range stores {
			w := weights[s]
			if w == 0 {
				continue
			}
			out[s] = append(out[s], share(q, float64(w)/float64(total)))
		}
	}
	return out
}

// serving keeps the leader counts of serving stores.
func serving(leaders map[uint64]int, up map[uint64]int) map[uint64]int {
	w := map[uint64]int{}
	for s, n := range leaders {
		if up[s] != 0 && n > 0 {
			w[s] = n
		}
	}
	return w
}

func share(q *pdpb.Quota, f float64) *pdpb.QuotaShare {
	name := q.User
	if name == "" {
		name = q.TableName
	}
	return &pdpb.QuotaShare{
		TableId: q.TableId, User: q.User, Name: name,
		ReadRps:    float64(Get(q.Limits, ReadRPS)) * f,
		WriteRps:   float64(Get(q.Limits, WriteRPS)) * f,
		ReadBytes:  float64(Get(q.Limits, ReadBytes)) * f,
		WriteBytes: float64(Get(q.Limits, WriteBytes)) * f,
	}
}
