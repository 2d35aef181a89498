package store

import (
	"context"
	"encoding/binary"
	"fmt"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// Service serves the Tablet gRPC API on a store.
type Service struct {
	kvpb.UnimplementedTabletServer
	s *Store
}

var _ kvpb.TabletServer = (*Service)(nil)

// NewService returns the gRPC service of s.
func NewService(s *Store) *Service { return &Service{s: s} }

func (s *Store) checkRowKey(row []byte) error {
	if len(row) == 0 {
		return errs.InvalidArgument("row key must not be empty")
	}
	if len(row) > s.opts.Limits.MaxRowKeyBytes {
		return errs.InvalidArgument("row key is %d bytes; the limit is %d", len(row), s.opts.Limits.MaxRowKeyBytes)
	}
	return nil
}

// checkMutations validates one row's mutations against the schema and the
// limits, so nothing invalid reaches the log.
func (s *Store) checkMutations(schema *metapb.TableSchema, row []byte, muts []*kvpb.Mutation) (int, error) {
	if err := s.checkRowKey(row); err != nil {
		return 0, err
	}
	if len(muts) == 0 {
		return 0, errs.InvalidArgument("row %q: no mutations", row)
	}
	lim := s.opts.Limits
	size := len(row)
	family := func(name string) error {
		for _, f := range schema.Families {
			if f.Name == name {
				return nil
			}
		}
		return errs.InvalidArgument("table %q (%d) has no column family %q", schema.Name, schema.TableId, name)
	}
	for _, m := range muts {
		switch x := m.Mutation.(type) {
		case *kvpb.Mutation_SetCell_:
			c := x.SetCell
			if err := family(c.Family); err != nil {
				return 0, err
			}
			if len(c.Qualifier) > lim.MaxQualifierBytes {
				return 0, errs.InvalidArgument("qualifier is %d bytes; the limit is %d", len(c.Qualifier), lim.MaxQualifierBytes)
			}
			if len(c.Value) > lim.MaxValueBytes {
				return 0, errs.InvalidArgument("value of %s:%q is %d bytes; the limit is %d", c.Family, c.Qualifier, len(c.Value), lim.MaxValueBytes)
			}
			if err := s.checkClientTimestamp(c.Timestamp); err != nil {
				return 0, errs.InvalidArgument("cell %s:%q: %s", c.Family, c.Qualifier, status.Convert(err).Message())
			}
			if err := checkCellSum(0, s.opts.StoreID, row, c, "at proposal"); err != nil {
				return 0, err
			}
			size += len(c.Family) + len(c.Qualifier) + len(c.Value) + 16
		case *kvpb.Mutation_DeleteFromColumn_:
			if err := family(x.DeleteFromColumn.Family); err != nil {
				return 0, err
			}
			if tr := x.DeleteFromColumn.TimeRange; tr != nil && (tr.StartTs < 0 || tr.EndTs < 0) {
				return 0, errs.InvalidArgument("time range must not be negative")
			}
			size += len(x.DeleteFromColumn.Qualifier) + 16
		case *kvpb.Mutation_DeleteFromFamily_:
			if err := family(x.DeleteFromFamily.Family); err != nil {
				return 0, err
			}
		case *kvpb.Mutation_DeleteFromRow_:
		default:
			return 0, errs.InvalidArgument("row %q: empty mutation", row)
		}
	}
	if size > lim.MaxMutationBytes {
		return 0, errs.InvalidArgument("row %q: mutations are %d bytes; the limit is %d", row, size, lim.MaxMutationBytes)
	}
	return size, nil
}

// maxAges lists the families of schema that expire versions by age.
func maxAges(schema *metapb.TableSchema) map[string]int64 {
	var m map[string]int64
	for _, f := range schema.Families {
		if f.MaxAgeMs > 0 {
			if m == nil {
				m = map[string]int64{}
			}
			m[f.Name] = f.MaxAgeMs
		}
	}
	return m
}

// writeLeader resolves the replica a write goes to and checks its epoch.
func (s *Store) writeLeader(h *kvpb.RequestHeader) (*replica, *metapb.TabletDescriptor, error) {
	r, err := s.replicaForRequest(h.GetTabletId())
	if err != nil {
		return nil, nil, err
	}
	if err := r.refuseIfBad(); err != nil {
		return nil, nil, err
	}
	if err := s.disk.refuseWrite(h.GetTabletId()); err != nil {
		// DiskFull only from the leader: once PD moved the leadership,
		// the client must hear where it went.
		r.mu.Lock()
		if !r.mu.isLeader {
			err = r.leaderErrorLocked()
		}
		r.mu.Unlock()
		return nil, nil, err
	}
	desc := r.descriptor()
	if err := s.checkEpoch(desc, h); err != nil {
		return nil, nil, err
	}
	if err := r.refuseBlocked(); err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	merging := r.mu.mergingInto
	r.mu.Unlock()
	if merging != 0 {
		return nil, nil, errs.ServerBusy(fmt.Sprintf("tablet %d is being merged into tablet %d", r.tabletID, merging), 200)
	}
	return r, desc, nil
}

// MutateRow atomically applies mutations to one row.
func (s *Store) MutateRow(ctx context.Context, req *kvpb.MutateRowRequest) (*kvpb.MutateRowResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkMutations(schema, req.RowKey, req.Mutations); err != nil {
		return nil, err
	}
	r, desc, err := s.writeLeader(req.Header)
	if err != nil {
		return nil, err
	}
	r.record(true, req.TableId, req.RowKey, proto.Size(req))
	resp, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_MutateRow{MutateRow: req}})
	if err != nil {
		return nil, err
	}
	return resp.(*kvpb.MutateRowResponse), nil
}

// CheckAndMutateRow applies one of two mutation lists depending on a cell.
func (s *Store) CheckAndMutateRow(ctx context.Context, req *kvpb.CheckAndMutateRowRequest) (*kvpb.CheckAndMutateRowResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return nil, err
	}
	if err := s.checkRowKey(req.RowKey); err != nil {
		return nil, err
	}
	if req.Condition == nil {
		return nil, errs.InvalidArgument("check-and-mutate needs a condition")
	}
	if _, err := s.checkMutations(schema, req.RowKey, []*kvpb.Mutation{{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: &kvpb.Mutation_DeleteFromColumn{Family: req.Condition.Family}}}}); err != nil {
		return nil, err
	}
	for _, muts := range [][]*kvpb.Mutation{req.TrueMutations, req.FalseMutations} {
		if len(muts) == 0 {
			continue
		}
		if _, err := s.checkMutations(schema, req.RowKey, muts); err != nil {
			return nil, err
		}
	}
	r, desc, err := s.writeLeader(req.Header)
	if err != nil {
		return nil, err
	}
	r.record(true, req.TableId, req.RowKey, proto.Size(req))
	resp, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, FamilyMaxAgeMs: maxAges(schema), Cmd: &raftcmdpb.RaftCommand_CheckAndMutateRow{CheckAndMutateRow: req}})
	if err != nil {
		return nil, err
	}
	return resp.(*kvpb.CheckAndMutateRowResponse), nil
}

// ReadModifyWriteRow atomically increments or appends to cells.
func (s *Store) ReadModifyWriteRow(ctx context.Context, req *kvpb.ReadModifyWriteRowRequest) (*kvpb.ReadModifyWriteRowResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return nil, err
	}
	if len(req.Rules) == 0 {
		return nil, errs.InvalidArgument("read-modify-write needs at least one rule")
	}
	muts := make([]*kvpb.Mutation, 0, len(req.Rules))
	for _, rule := range req.Rules {
		if rule.Rule == nil {
			return nil, errs.InvalidArgument("read-modify-write rule for %s:%q has no append or increment", rule.Family, rule.Qualifier)
		}
		muts = append(muts, &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: rule.Family, Qualifier: rule.Qualifier, Value: rule.GetAppendValue()}}})
	}
	if _, err := s.checkMutations(schema, req.RowKey, muts); err != nil {
		return nil, err
	}
	r, desc, err := s.writeLeader(req.Header)
	if err != nil {
		return nil, err
	}
	r.record(true, req.TableId, req.RowKey, proto.Size(req))
	resp, err := r.propose(ctx, &raftcmdpb.RaftCommand{
		Epoch: desc.Epoch, FamilyMaxAgeMs: maxAges(schema), MaxValueBytes: int64(s.opts.Limits.MaxValueBytes),
		Cmd: &raftcmdpb.RaftCommand_ReadModifyWriteRow{ReadModifyWriteRow: req},
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kvpb.ReadModifyWriteRowResponse), nil
}

// BatchMutate applies many rows' mutations; each row is atomic on its own
// and gets its own result. Invalid rows fail without reaching raft.
func (s *Store) BatchMutate(ctx context.Context, req *kvpb.BatchMutateRequest) (*kvpb.BatchMutateResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return nil, err
	}
	lim := s.opts.Limits
	if len(req.Entries) == 0 {
		return nil, errs.InvalidArgument("batch has no rows")
	}
	if len(req.Entries) > lim.MaxBatchRows {
		return nil, errs.InvalidArgument("batch has %d rows; the limit is %d", len(req.Entries), lim.MaxBatchRows)
	}
	results := make([]*kvpb.BatchMutateResponse_Result, len(req.Entries))
	valid := &kvpb.BatchMutateRequest{Header: req.Header, TableId: req.TableId, RequestId: req.RequestId}
	var index []int
	total := 0
	numbered := entryNumbering{}
	for i, e := range req.Entries {
		size, err := s.checkMutations(schema, e.RowKey, e.Mutations)
		if err == nil && hasRequestID(req.RequestId) {
			err = numbered.add(e)
		}
		if err != nil {
			results[i] = &kvpb.BatchMutateResponse_Result{Error: errs.ToProto(err)}
			continue
		}
		total += size
		valid.Entries = append(valid.Entries, e)
		index = append(index, i)
	}
	if total > lim.MaxBatchBytes {
		return nil, errs.InvalidArgument("batch is %d bytes; the limit is %d", total, lim.MaxBatchBytes)
	}
	if len(valid.Entries) > 0 {
		r, desc, err := s.writeLeader(req.Header)
		if err != nil {
			return nil, err
		}
		for _, e := range valid.Entries {
			r.record(true, req.TableId, e.RowKey, 0)
		}
		r.load.writeBytes.Add(uint64(total))
		resp, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_BatchMutate{BatchMutate: valid}})
		if err != nil {
			return nil, err
		}
		for j, res := range resp.(*kvpb.BatchMutateResponse).Results {
			results[index[j]] = res
		}
	}
	return &kvpb.BatchMutateResponse{Results: results}, nil
}

// entryNumbering checks that the entries of one request name each
// (row, index) once: the tablet remembers a request's outcome per (row,
// request ID, index), so a second entry with the same pair would be taken
// for a retry of the first.
type entryNumbering map[string]struct{}

func (n entryNumbering) add(e *kvpb.BatchMutateRequest_Entry) error {
	k := string(binary.BigEndian.AppendUint32(nil, e.Index)) + string(e.RowKey)
	if _, dup := n[k]; dup {
		return errs.InvalidArgument("row %q appears twice with entry index %d in one request; number a request's entries by their position (BatchMutateRequest.Entry.index)", e.RowKey, e.Index)
	}
	n[k] = struct{}{}
	return nil
}

// TabletStatus reports a replica's view of its tablet.
func (s *Store) TabletStatus(tabletID uint64) (*kvpb.TabletStatusResponse, error) {
	r := s.getReplica(tabletID)
	if r == nil {
		return nil, errs.TabletNotFound(tabletID, s.opts.StoreID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.desc == nil {
		return nil, errs.TabletNotFound(tabletID, s.opts.StoreID)
	}
	return &kvpb.TabletStatusResponse{
		Tablet:          r.mu.desc,
		LeaderReplicaId: r.mu.leaderID,
		Term:            r.mu.term,
		AppliedIndex:    r.mu.applied,
		Quiesced:        r.mu.quiesced,
		MergingInto:     r.mu.mergingInto,
	}, nil
}

// Tablets lists the descriptors of the store's initialized replicas.
func (s *Store) Tablets() []*metapb.TabletDescriptor {
	reps := s.replicaList()
	var out []*metapb.TabletDescriptor
	for _, r := range reps {
		if d := r.descriptor(); d != nil {
			out = append(out, d)
		}
	}
	return out
}

// ---- gRPC ----

func (v *Service) Get(ctx context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	v.s.noteSuspectRead(req.Header.GetTabletId(), req.Options.GetSuspectStoreId())
	return v.s.Get(ctx, req)
}

func (v *Service) Scan(req *kvpb.ScanRequest, stream kvpb.Tablet_ScanServer) error {
	v.s.noteSuspectRead(req.Header.GetTabletId(), req.Options.GetSuspectStoreId())
	return v.s.Scan(stream.Context(), req, stream.Send)
}

func (v *Service) MutateRow(ctx context.Context, req *kvpb.MutateRowRequest) (*kvpb.MutateRowResponse, error) {
	return v.s.MutateRow(ctx, req)
}

func (v *Service) CheckAndMutateRow(ctx context.Context, req *kvpb.CheckAndMutateRowRequest) (*kvpb.CheckAndMutateRowResponse, error) {
	return v.s.CheckAndMutateRow(ctx, req)
}

func (v *Service) ReadModifyWriteRow(ctx context.Context, req *kvpb.ReadModifyWriteRowRequest) (*kvpb.ReadModifyWriteRowResponse, error) {
	return v.s.ReadModifyWriteRow(ctx, req)
}

func (v *Service) BatchMutate(ctx context.Context, req *kvpb.BatchMutateRequest) (*kvpb.BatchMutateResponse, error) {
	return v.s.BatchMutate(ctx, req)
}

func (v *Service) PutTableSchema(ctx context.Context, req *kvpb.PutTableSchemaRequest) (*kvpb.PutTableSchemaResponse, error) {
	if req.Schema == nil {
		return nil, errs.InvalidArgument("no schema given")
	}
	return &kvpb.PutTableSchemaResponse{}, v.s.PutTableSchema(req.Schema)
}

func (v *Service) BootstrapTablet(ctx context.Context, req *kvpb.BootstrapTabletRequest) (*kvpb.BootstrapTabletResponse, error) {
	if req.Tablet == nil {
		return nil, errs.InvalidArgument("no tablet given")
	}
	return &kvpb.BootstrapTabletResponse{}, v.s.BootstrapTablet(req.Tablet)
}

func (v *Service) SplitTablet(ctx context.Context, req *kvpb.SplitTabletRequest) (*kvpb.SplitTabletResponse, error) {
	return v.s.Split(ctx, req)
}

func (v *Service) TransferLeader(ctx context.Context, req *kvpb.TransferLeaderRequest) (*kvpb.TransferLeaderResponse, error) {
	return &kvpb.TransferLeaderResponse{}, v.s.TransferLeader(ctx, req)
}

func (v *Service) ChangeReplicas(ctx context.Context, req *kvpb.ChangeReplicasRequest) (*kvpb.ChangeReplicasResponse, error) {
	d, err := v.s.ChangeReplicas(ctx, req)
	if err != nil {
		return nil, err
	}
	return &kvpb.ChangeReplicasResponse{Tablet: d}, nil
}

func (v *Service) MergeTablets(ctx context.Context, req *kvpb.MergeTabletsRequest) (*kvpb.MergeTabletsResponse, error) {
	d, err := v.s.Merge(ctx, req)
	if err != nil {
		return nil, err
	}
	return &kvpb.MergeTabletsResponse{Tablet: d}, nil
}

func (v *Service) TabletStatus(ctx context.Context, req *kvpb.TabletStatusRequest) (*kvpb.TabletStatusResponse, error) {
	return v.s.TabletStatus(req.TabletId)
}
