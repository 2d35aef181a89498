package placementdriver

import (
	"bytes"
	"sort"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// tabletIndex holds the cluster's tablets by ID and ordered by start key.
// Inserting a descriptor removes every known tablet it overlaps whose epoch
// is older (they were split or merged away), as PD's region tree does.
type tabletIndex struct {
	byID    map[uint64]*pdpb.TabletInfo
	byStart []*pdpb.TabletInfo // sorted by StartKey, non-overlapping
}

func newTabletIndex() *tabletIndex {
	return &tabletIndex{byID: map[uint64]*pdpb.TabletInfo{}}
}

func (x *tabletIndex) len() int { return len(x.byStart) }

// search returns the position of the first tablet whose start key is > key.
func (x *tabletIndex) search(key []byte) int {
	return sort.Search(len(x.byStart), func(i int) bool { return bytes.Compare(x.byStart[i].Tablet.StartKey, key) > 0 })
}

// lookup returns the tablet containing key.
func (x *tabletIndex) lookup(key []byte) *pdpb.TabletInfo {
	i := x.search(key) - 1
	if i < 0 {
		return nil
	}
	t := x.byStart[i]
	if len(t.Tablet.EndKey) != 0 && bytes.Compare(key, t.Tablet.EndKey) >= 0 {
		return nil
	}
	return t
}

func newer(a, b *metapb.TabletDescriptor) bool {
	if a.Epoch.GetVersion() != b.Epoch.GetVersion() {
		return a.Epoch.GetVersion() > b.Epoch.GetVersion()
	}
	return a.Epoch.GetConfVersion() > b.Epoch.GetConfVersion()
}

// update installs info unless a known tablet makes it stale. It returns
// whether the descriptor changed (and so must be persisted) and the IDs of
// tablets it replaced.
func (x *tabletIndex) update(info *pdpb.TabletInfo) (changed bool, removed []uint64) {
	d := info.Tablet
	if old, ok := x.byID[d.TabletId]; ok {
		if newer(old.Tablet, d) {
			return false, nil // stale report
		}
		if !newer(d, old.Tablet) {
			// Same epoch: only leader/stats change.
			old.LeaderStoreId, old.Stats = info.LeaderStoreId, info.Stats
			return false, nil
		}
	}
	// Any overlapping tablet with an equal or newer epoch makes this stale.
	lo := x.search(d.StartKey) - 1
	if lo < 0 {
		lo = 0
	}
	var overlaps []int
	for i := lo; i < len(x.byStart); i++ {
		o := x.byStart[i].Tablet
		if len(d.EndKey) != 0 && bytes.Compare(o.StartKey, d.EndKey) >= 0 {
			break
		}
		if len(o.EndKey) != 0 && bytes.Compare(o.EndKey, d.StartKey) <= 0 {
			continue
		}
		if o.TabletId != d.TabletId && !newer(d, o) && o.Epoch.GetVersion() >= d.Epoch.GetVersion() {
			return false, nil
		}
		overlaps = append(overlaps, i)
	}
	for j := len(overlaps) - 1; j >= 0; j-- {
		i := overlaps[j]
		id := x.byStart[i].Tablet.TabletId
		if id != d.TabletId {
			removed = append(removed, id)
		}
		delete(x.byID, id)
		x.byStart = append(x.byStart[:i], x.byStart[i+1:]...)
	}
	x.byID[d.TabletId] = info
	i := x.search(d.StartKey)
	x.byStart = append(x.byStart, nil)
	copy(x.byStart[i+1:], x.byStart[i:])
	x.byStart[i] = info
	return true, removed
}

// scan returns up to limit tablets overlapping [start, end).
func (x *tabletIndex) scan(start, end []byte, limit int) []*pdpb.TabletInfo {
	i := x.search(start) - 1
	if i < 0 {
		i = 0
	}
	var out []*pdpb.TabletInfo
	for ; i < len(x.byStart) && (limit <= 0 || len(out) < limit); i++ {
		t := x.byStart[i].Tablet
		if len(end) != 0 && bytes.Compare(t.StartKey, end) >= 0 {
			break
		}
		if len(t.EndKey) != 0 && bytes.Compare(t.EndKey, start) <= 0 {
			continue
		}
		out = append(out, x.byStart[i])
	}
	return out
}
