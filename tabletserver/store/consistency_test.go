package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

const checkTable = 77

// newCheckCluster starts three stores with one tablet of table checkTable
// on all of them and writes rows r000..r(n-1) through the leader.
func newCheckCluster(t *testing.T, rows int) (*storetest.Cluster, *metapb.TabletDescriptor) {
	t.Helper()
	c := storetest.Start(t, 3, func(o *store.Options) {
		storetest.FastOptions(o)
		o.ConsistencyCheckInterval = -1 // only forced checks
	})
	return newCheckClusterOn(t, c, rows)
}

// newCheckClusterOn creates the tablet of table checkTable on stores 1-3
// of c and writes rows r000..r(n-1).
func newCheckClusterOn(t *testing.T, c *storetest.Cluster, rows int) (*storetest.Cluster, *metapb.TabletDescriptor) {
	t.Helper()
	c.PutSchema(&metapb.TableSchema{TableId: checkTable, Name: "check", Version: 1, Families: []*metapb.FamilySchema{{Name: "f"}}})
	desc := c.Bootstrap(c.NewID(), keys.TablePrefix(checkTable), keys.PrefixEnd(keys.TablePrefix(checkTable)), 1, 2, 3)
	ctx := context.Background()
	for i := 0; i < rows; i++ {
		req := &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte(fmt.Sprintf("r%03d", i)),
			Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Value: []byte(fmt.Sprintf("v%d", i))}}}}}
		require.NoError(t, c.Call(ctx, desc.TabletId, func(cl kvpb.TabletClient) error { _, err := cl.MutateRow(ctx, req); return err }))
	}
	return c, desc
}

// waitApplied waits until every store applied what the leader applied.
func waitApplied(t *testing.T, c *storetest.Cluster, tabletID uint64) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		want := uint64(0)
		for _, n := range c.Nodes {
			st, err := n.Store.TabletStatus(tabletID)
			if err != nil {
				return err
			}
			if st.LeaderReplicaId == st.Tablet.Replicas[0].ReplicaId || want == 0 {
				want = max(want, st.AppliedIndex)
			}
		}
		for id, n := range c.Nodes {
			st, _ := n.Store.TabletStatus(tabletID)
			if st.AppliedIndex < want {
				return fmt.Errorf("store %d applied %d < %d", id, st.AppliedIndex, want)
			}
		}
		return nil
	})
}

// injectCell writes a cell straight into one store's engine, bypassing
// raft: the divergence a bug or a flipped bit would cause.
func injectCell(t *testing.T, s *store.Store, row, value string) []byte {
	t.Helper()
	k := keys.DataKey(keys.CellKey(checkTable, []byte(row), "f", []byte("q"), 1))
	require.NoError(t, s.DB().Set(k, cellvalue.Encode([]byte(value)), pebble.Sync))
	return k
}

func checkOn(t *testing.T, c *storetest.Cluster, tabletID uint64) *kvpb.CheckTabletResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp *kvpb.CheckTabletResponse
	require.NoError(t, c.Call(ctx, tabletID, func(cl kvpb.TabletClient) error {
		var err error
		resp, err = cl.CheckTablet(ctx, &kvpb.CheckTabletRequest{TabletId: tabletID})
		return err
	}))
	return resp
}

func TestConsistencyCheckAgrees(t *testing.T) {
	c, desc := newCheckCluster(t, 300)
	resp := checkOn(t, c, desc.TabletId)
	require.True(t, resp.Consistent, "%v", resp)
	require.Len(t, resp.Replicas, 3)
	for _, r := range resp.Replicas {
		require.Empty(t, r.Error)
		require.Equal(t, uint64(300), r.Keys)
		require.Equal(t, resp.Replicas[0].Hash, r.Hash)
	}
	require.Empty(t, resp.DifferingSpans)
}

// TestConsistencyCheckFindsDivergentReplica: a write injected into one
// follower's engine is found by one check, which names the key, marks that
// replica bad (it stops serving) and reports it to PD in the leader's
// heartbeat.
func TestConsistencyCheckFindsDivergentReplica(t *testing.T) {
	c, desc := newCheckCluster(t, 300)
	leader := c.Leader(desc.TabletId)
	var victim uint64
	for id := range c.Nodes {
		if id != leader {
			victim = id
			break
		}
	}
	waitApplied(t, c, desc.TabletId)
	injected := injectCell(t, c.Nodes[victim].Store, "r150x", "not written through raft")

	resp := checkOn(t, c, desc.TabletId)
	require.False(t, resp.Consistent)
	require.False(t, resp.NoMajority)
	for _, r := range resp.Replicas {
		require.Equal(t, r.StoreId == victim, r.Bad, "replica on store %d: %v", r.StoreId, resp)
	}
	require.NotEmpty(t, resp.DifferingSpans)
	found := false
	for _, sp := range resp.DifferingSpans {
		found = found || (bytes.Compare(injected, sp.Start) >= 0 && (len(sp.End) == 0 || bytes.Compare(injected, sp.End) < 0))
	}
	require.True(t, found, "injected key %x not in the differing spans %v", injected, resp.DifferingSpans)
	require.Equal(t, [][]byte{injected}, resp.DifferingKeys)

	// The victim stops serving, the leader reports it.
	victimRep := replicaIDOn(desc, victim)
	testutils.SucceedsSoon(t, func() error {
		_, err := c.Nodes[victim].Store.ReadLocal(context.Background(), &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte("r001")})
		if err == nil {
			return fmt.Errorf("bad replica still serves")
		}
		for _, rep := range c.Nodes[c.Leader(desc.TabletId)].Store.LeaderReports() {
			if rep.Tablet.TabletId == desc.TabletId && len(rep.BadReplicaIds) == 1 && rep.BadReplicaIds[0] == victimRep {
				return nil
			}
		}
		return fmt.Errorf("leader does not report replica %d bad", victimRep)
	})
	// The good replicas still serve.
	_, err := c.Nodes[leader].Store.ReadLocal(context.Background(), &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte("r001")})
	require.NoError(t, err)
}

// TestConsistencyCheckNoMajority: two followers diverge differently; with
// no majority nothing is marked bad and the tablet is flagged.
func TestConsistencyCheckNoMajority(t *testing.T) {
	c, desc := newCheckCluster(t, 50)
	leader := c.Leader(desc.TabletId)
	waitApplied(t, c, desc.TabletId)
	n := 0
	for id, node := range c.Nodes {
		if id != leader {
			injectCell(t, node.Store, fmt.Sprintf("r0%dz", n), fmt.Sprintf("diverged %d", n))
			n++
		}
	}
	resp := checkOn(t, c, desc.TabletId)
	require.True(t, resp.NoMajority, "%v", resp)
	for _, r := range resp.Replicas {
		require.False(t, r.Bad)
	}
	testutils.SucceedsSoon(t, func() error {
		for _, rep := range c.Nodes[c.Leader(desc.TabletId)].Store.LeaderReports() {
			if rep.Tablet.TabletId == desc.TabletId && rep.Inconsistent && len(rep.BadReplicaIds) == 0 {
				return nil
			}
		}
		return fmt.Errorf("tablet not flagged inconsistent")
	})
	// Every replica still serves.
	for id, node := range c.Nodes {
		_, err := node.Store.ReadLocal(context.Background(), &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: desc.TabletId}, TableId: checkTable, RowKey: []byte("r001")})
		require.NoError(t, err, "store %d", id)
	}
}

func replicaIDOn(desc *metapb.TabletDescriptor, storeID uint64) uint64 {
	for _, r := range desc.Replicas {
		if r.StoreId == storeID {
			return r.ReplicaId
		}
	}
	return 0
}
