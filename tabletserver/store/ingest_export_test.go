package store

import (
	"context"
	"errors"
	"os"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// ProposeIngestForTest puts an IngestSSTCommand into the tablet's log as
// is, bypassing the leader's validation, to test the apply-time checks.
func (s *Store) ProposeIngestForTest(ctx context.Context, tabletID uint64, epoch *metapb.Epoch, c *raftcmdpb.IngestSSTCommand) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: epoch, Cmd: &raftcmdpb.RaftCommand_IngestSst{IngestSst: c}})
	return err
}

// HasCellForTest reports whether this store's engine holds a cell key,
// whatever its replicas' roles.
func (s *Store) HasCellForTest(cellKey []byte) (bool, error) {
	_, closer, err := s.db.Get(keys.DataKey(cellKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// StagedFilesForTest lists the staged SSTs.
func (s *Store) StagedFilesForTest() []string { return s.stagingFiles(".sst") }

// FirstLogIndexForTest is the first index still in the tablet's raft log
// on this store (0 if the store has no replica of it).
func (s *Store) FirstLogIndexForTest(tabletID uint64) uint64 {
	r := s.getReplica(tabletID)
	if r == nil {
		return 0
	}
	i, _ := r.storage.FirstIndex()
	return i
}

// SweepStagedForTest sweeps the staging directory now (uploads sweep at
// most once a minute).
func (s *Store) SweepStagedForTest() {
	s.ingest.lastSweep.Store(0)
	s.sweepStaged()
}

// IngestMarkersForTest lists the markers of files ingested by reference.
func (s *Store) IngestMarkersForTest() []string { return s.stagingFiles(".done") }

// DamageStagedForTest flips one byte of the staged file named sum at
// offset off (its size stays the same), as a failing disk might.
func (s *Store) DamageStagedForTest(sum []byte, off int64) error {
	f, err := os.OpenFile(s.ingest.path(sum), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0xFF
	_, err = f.WriteAt(b, off)
	return err
}

// QuarantinedForTest lists the staged files set aside as damaged.
func (s *Store) QuarantinedForTest() []string { return s.stagingFiles(".corrupt") }
