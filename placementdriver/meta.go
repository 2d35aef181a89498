package placementdriver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shaledb/shale/proto/metapb"
)

// PD keeps its metadata as rows of one table in a raft-replicated tablet
// hosted by an embedded store (the same code as a tablet server's), so it
// gets durability, snapshots and linearizable reads for free.
const (
	metaTabletID = 1
	metaTableID  = 1
	metaFamily   = "m"
)

var metaSchema = &metapb.TableSchema{TableId: metaTableID, Name: "pd-meta", Version: 1, Families: []*metapb.FamilySchema{{Name: metaFamily, MaxVersions: 1}}}

// Row keys of the metadata table.
const (
	rowClusterID      = "cluster_id"
	rowAllocID        = "alloc_id"
	rowTSO            = "tso"
	rowCatalogVersion = "catalog_version"
	rowConfig         = "config"
	rowBootstrap      = "bootstrap"
	prefixStore       = "store/"
	prefixTablet      = "tablet/"
	prefixTable       = "table/"
	prefixDropped     = "dropped/"
)

func idRow(prefix string, id uint64) string { return fmt.Sprintf("%s%016x", prefix, id) }

// metadata is PD's replicated metadata: rows of one table in one raft
// group. Reads and writes must run on the PD leader (they are refused
// elsewhere); localRow reads this member's replica, possibly stale.
// metastore.go implements it on an embedded store, the one place PD
// depends on the tablet server's code.
type metadata interface {
	get(ctx context.Context, row string) ([]byte, bool, error)
	// put writes rows (a nil value deletes); each row is atomic on its own.
	put(ctx context.Context, rows map[string][]byte) error
	// cas sets row to v if it currently holds old (nil old: row absent).
	cas(ctx context.Context, row string, old, v []byte) (bool, error)
	// scan returns every row whose key starts with prefix.
	scan(ctx context.Context, prefix string) (map[string][]byte, error)
	// localRow reads row from this member's replica as far as it applied.
	localRow(ctx context.Context, row string) ([]byte, bool, error)
	// leader reports the metadata group's leader (member ID) and term.
	leader() (leaderID, term uint64, err error)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, errors.New("pd: corrupt counter in metadata")
	}
	return binary.BigEndian.Uint64(b), nil
}
