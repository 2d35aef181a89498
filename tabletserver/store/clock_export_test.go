package store

import (
	"context"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// ProposeMutateRowForTest puts a MutateRow into the tablet's log as is,
// bypassing the leader's checks, to test the apply-time ones.
func (s *Store) ProposeMutateRowForTest(ctx context.Context, tabletID uint64, epoch *metapb.Epoch, req *kvpb.MutateRowRequest) (*kvpb.MutateRowResponse, error) {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return nil, err
	}
	resp, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: epoch, Cmd: &raftcmdpb.RaftCommand_MutateRow{MutateRow: req}})
	if err != nil {
		return nil, err
	}
	return resp.(*kvpb.MutateRowResponse), nil
}

// ClockLastForTest is the largest timestamp the store's clock handed out
// or took in.
func (s *Store) ClockLastForTest() int64 { return s.clock.Last() }
