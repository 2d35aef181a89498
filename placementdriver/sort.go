package placementdriver

import (
	"sort"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

func sortStores(s []*pdpb.StoreInfo) {
	sort.Slice(s, func(i, j int) bool { return s[i].Store.StoreId < s[j].Store.StoreId })
}

func sortTables(t []*metapb.TableSchema) {
	sort.Slice(t, func(i, j int) bool { return t[i].Name < t[j].Name })
}
