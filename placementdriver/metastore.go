package placementdriver

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
)

// metaStore is PD's metadata on an embedded store: the same code as a
// tablet server's, so PD gets durability, snapshots and linearizable reads
// for free. It is the only file of PD that imports the store.
type metaStore struct{ s *store.Store }

var _ metadata = metaStore{}

// openMetaStore opens this member's replica of the metadata group in dir,
// bootstrapping the group on first start. members are the member IDs 1..n
// (raft replica ID = store ID = member ID); peers resolves their addresses.
func openMetaStore(o Options, memberID uint64, members int, peers peerResolver, log *slog.Logger, reg prometheus.Registerer) (metaStore, error) {
	st, err := store.Open(store.Options{
		StoreID:      memberID,
		Dir:          filepath.Join(o.DataDir, "meta"),
		Resolver:     peers,
		TLS:          o.TLS,
		TickInterval: o.TickInterval,
		GCInterval:   -1,
		// PD's metadata is small; the disk-full policy is the tablet
		// servers' (no ballast, no refusal below a threshold).
		MinFreeBytes: -1,
		BallastBytes: -1,
		Logger:       log,
		Registry:     reg,
	})
	if err != nil {
		return metaStore{}, fmt.Errorf("pd: open metadata store in %s: %w", o.DataDir, err)
	}
	// Every member bootstraps the same metadata tablet; the call is
	// idempotent and a no-op once the tablet exists.
	desc := &metapb.TabletDescriptor{TabletId: metaTabletID, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for id := uint64(1); id <= uint64(members); id++ {
		desc.Replicas = append(desc.Replicas, &metapb.Replica{ReplicaId: id, StoreId: id})
	}
	if len(st.Tablets()) == 0 {
		if err := st.BootstrapTablet(desc); err != nil {
			st.Close()
			return metaStore{}, fmt.Errorf("pd: bootstrap metadata group: %w", err)
		}
	}
	if err := st.PutTableSchema(metaSchema); err != nil {
		st.Close()
		return metaStore{}, err
	}
	return metaStore{st}, nil
}

// registerPeers serves the metadata group's raft traffic on srv.
func (m metaStore) registerPeers(srv *grpc.Server) { m.s.Transport().Register(srv) }

func (m metaStore) start() { m.s.Start() }

func (m metaStore) close() error { return m.s.Close() }

func (m metaStore) leader() (uint64, uint64, error) {
	st, err := m.s.TabletStatus(metaTabletID)
	if err != nil {
		return 0, 0, err
	}
	return st.LeaderReplicaId, st.Term, nil
}

func (m metaStore) localRow(ctx context.Context, row string) ([]byte, bool, error) {
	resp, err := m.s.ReadLocal(ctx, &kvpb.GetRequest{Header: header(), TableId: metaTableID, RowKey: []byte(row)})
	return cellValue(resp, err)
}

func header() *kvpb.RequestHeader { return &kvpb.RequestHeader{TabletId: metaTabletID} }

func setCell(v []byte) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: metaFamily, Value: v}}}
}

func (m metaStore) get(ctx context.Context, row string) ([]byte, bool, error) {
	return cellValue(m.s.Get(ctx, &kvpb.GetRequest{Header: header(), TableId: metaTableID, RowKey: []byte(row)}))
}

func cellValue(resp *kvpb.GetResponse, err error) ([]byte, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if resp.Row == nil || len(resp.Row.Cells) == 0 {
		return nil, false, nil
	}
	return resp.Row.Cells[0].Value, true, nil
}

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
