package authz

import (
	"encoding/binary"

	"github.com/shaledb/shale/proto/kvpb"
)

// maxTabletTables bounds how many tables a tablet may span for a per-table
// check; a wider tablet (one not yet split at table boundaries) needs the
// cluster admin grant.
const maxTabletTables = 16

// TablesInRange lists the tables whose keys intersect the encoded key
// range [start, end) (empty end: to the end of the key space), or false
// when they are more than maxTabletTables.
func TablesInRange(start, end []byte) ([]uint64, bool) {
	first := uint64(0)
	if len(start) >= 8 {
		first = binary.BigEndian.Uint64(start)
	}
	if len(end) < 8 {
		return nil, false // to the end of the key space (or a corrupt key)
	}
	last := binary.BigEndian.Uint64(end)
	if len(end) == 8 { // a bare table prefix: that table is not included
		if last == 0 {
			return nil, false
		}
		last--
	}
	if last < first || last-first >= maxTabletTables {
		return nil, false
	}
	var out []uint64
	for id := first; id <= last; id++ {
		out = append(out, id)
	}
	return out, true
}

// TabletStatuser is what StoreResolver needs of a store.
type TabletStatuser interface {
	TabletStatus(tabletID uint64) (*kvpb.TabletStatusResponse, error)
}

// StoreResolver maps the tablets of a store to their tables (a store's
// requests carry table IDs, except UploadSST's).
func StoreResolver(s TabletStatuser) Resolver { return storeResolver{s} }

type storeResolver struct{ s TabletStatuser }

func (storeResolver) TableID(string) (uint64, bool, error) { return 0, false, nil }

// TabletTables answers the store's own error for a tablet it does not
// have (TabletNotFound, which sends the client to refresh its route, as
// the handler would), without running the handler.
func (r storeResolver) TabletTables(id uint64) ([]uint64, bool, error) {
	st, err := r.s.TabletStatus(id)
	if err != nil {
		return nil, false, err
	}
	if st.GetTablet() == nil {
		return nil, false, nil
	}
	ids, ok := TablesInRange(st.Tablet.StartKey, st.Tablet.EndKey)
	return ids, ok, nil
}
