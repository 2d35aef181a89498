package store

import (
	"context"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// ProposeBatchSplitForTest proposes a batch split command as is, without
// the proposer's checks, so tests reach the apply-time ones.
func (s *Store) ProposeBatchSplitForTest(ctx context.Context, tabletID uint64, epoch *metapb.Epoch, splits []*raftcmdpb.SplitCommand) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: epoch, Cmd: &raftcmdpb.RaftCommand_BatchSplit{BatchSplit: &raftcmdpb.BatchSplitCommand{Splits: splits}}})
	return err
}
