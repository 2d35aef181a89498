package store

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/cellsum"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// TestApplyRefusesBadCellChecksum: a cell whose value no longer matches
// its client checksum when a replica applies the entry (a bit flipped in
// the proposal, the raft log or the transport, after the leader's check)
// is refused at apply, and nothing of its row is written, not even the
// cells before it; an intact row applies.
func TestApplyRefusesBadCellChecksum(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	defer db.Close()
	b := db.NewIndexedBatch()
	defer b.Close()
	ev := evaluator{b: b, desc: &metapb.TabletDescriptor{TabletId: 7}, ts: 100, bound: newApplyBound(&raftcmdpb.RaftCommand{})}
	row := []byte("r")
	set := func(q, v string, sum uint32) *kvpb.Mutation {
		return &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte(q), Value: []byte(v), Crc32C: &sum}}}
	}
	ok := cellsum.Cell(row, "f", []byte("a"), []byte("va"))
	flipped := cellsum.Cell(row, "f", []byte("b"), []byte("vb")) ^ 0x4 // as if "vb" had a bit flipped since
	_, err = ev.mutateRow(&kvpb.MutateRowRequest{TableId: 1, RowKey: row, Mutations: []*kvpb.Mutation{set("a", "va", ok), set("b", "vb", flipped)}})
	mm, isMismatch := errs.As[*errorpb.ChecksumMismatch](err)
	require.True(t, isMismatch, "%v", err)
	require.EqualValues(t, 7, mm.TabletId)
	require.Contains(t, mm.Where, "at apply")
	require.Zero(t, b.Count(), "a refused row must write nothing")
	require.False(t, ev.wrote)

	_, err = ev.mutateRow(&kvpb.MutateRowRequest{TableId: 1, RowKey: row, Mutations: []*kvpb.Mutation{set("a", "va", ok)}})
	require.NoError(t, err)
	require.EqualValues(t, 1, b.Count())
}

// Clients' reports ask for at most one check of a tablet per
// suspectInterval, unless the check they asked for did not run (forget):
// then the next report asks again at once.
func TestSuspectReportsAskOncePerIntervalUnlessLost(t *testing.T) {
	var sp suspects
	now := time.Unix(1e9, 0)
	require.True(t, sp.due(7, now))
	require.False(t, sp.due(7, now.Add(suspectInterval/2)), "one check per interval")
	require.True(t, sp.due(8, now), "per tablet")
	sp.forget(7)
	require.True(t, sp.due(7, now.Add(suspectInterval/2)), "a lost ask is asked again")
	require.True(t, sp.due(8, now.Add(suspectInterval)), "and the interval passes")
}
