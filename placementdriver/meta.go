package placementdriver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
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

// metaStore reads and writes metadata rows through the local store; every
// call must run on the PD leader (the store refuses otherwise).
type metaStore struct{ s *store.Store }

func header() *kvpb.RequestHeader { return &kvpb.RequestHeader{TabletId: metaTabletID} }

func setCell(v []byte) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: metaFamily, Value: v}}}
}

func (m metaStore) get(ctx context.Context, row string) ([]byte, bool, error) {
	resp, err := m.s.Get(ctx, &kvpb.GetRequest{Header: header(), TableId: metaTableID, RowKey: []byte(row)})
	if err != nil {
		return nil, false, err
	}
	if resp.Row == nil || len(resp.Row.Cells) == 0 {
		return nil, false, nil
	}
	return resp.Row.Cells[0].Value, true, nil
}

// put writes rows; each row is atomic on its own.
func (m metaStore) put(ctx context.Context, rows map[string][]byte) error {
	if len(rows) == 0 {
		return nil
	}
	req := &kvpb.BatchMutateRequest{Header: header(), TableId: metaTableID}
	for row, v := range rows {
		mut := setCell(v)
		if v == nil {
			mut = &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}}
		}
		req.Entries = append(req.Entries, &kvpb.BatchMutateRequest_Entry{RowKey: []byte(row), Mutations: []*kvpb.Mutation{mut}})
	}
	resp, err := m.s.BatchMutate(ctx, req)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		if r.Error != nil {
			return fmt.Errorf("pd metadata write: %s", r.Error.Message)
		}
	}
	return nil
}

// cas sets row to v if it currently holds old (nil old: row absent).
func (m metaStore) cas(ctx context.Context, row string, old, v []byte) (bool, error) {
	cond := &kvpb.Condition{Family: metaFamily, Op: kvpb.Condition_EQUAL, Value: old}
	if old == nil {
		cond = &kvpb.Condition{Family: metaFamily, Op: kvpb.Condition_NOT_EXISTS}
	}
	resp, err := m.s.CheckAndMutateRow(ctx, &kvpb.CheckAndMutateRowRequest{
		Header: header(), TableId: metaTableID, RowKey: []byte(row), Condition: cond,
		TrueMutations: []*kvpb.Mutation{setCell(v)},
	})
	if err != nil {
		return false, err
	}
	return resp.PredicateMatched, nil
}

// scan returns every row whose key starts with prefix.
func (m metaStore) scan(ctx context.Context, prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	end := keys.PrefixEnd([]byte(prefix))
	err := m.s.Scan(ctx, &kvpb.ScanRequest{Header: header(), TableId: metaTableID, StartRow: []byte(prefix), EndRow: end}, func(resp *kvpb.ScanResponse) error {
		for _, r := range resp.Rows {
			if len(r.Cells) > 0 {
				out[string(r.Key)] = r.Cells[0].Value
			}
		}
		return nil
	})
	return out, err
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, errors.New("pd: corrupt counter in metadata")
	}
	return binary.BigEndian.Uint64(b), nil
}
