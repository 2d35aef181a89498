// Package ctl holds the operator-facing views of placement driver state:
// the JSON shapes served by PD's HTTP API (/pd/api/v1/...) and printed by
// `shale ctl --json`, and the aligned text tables `shale ctl` prints for
// humans. Both front ends convert from the pdpb messages with the same
// functions, so their field names never drift apart.
package ctl

import (
	"encoding/hex"
	"sort"
	"strings"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Store is one store as shown to operators. TabletCount and LeaderCount
// are counted from PD's tablet index (replicas and leaders on the store),
// not taken from the store's own report.
type Store struct {
	ID                  uint64            `json:"id"`
	Address             string            `json:"address"`
	State               string            `json:"state"`
	Labels              map[string]string `json:"labels"`
	TabletCount         int               `json:"tablet_count"`
	LeaderCount         int               `json:"leader_count"`
	UsedBytes           uint64            `json:"used_bytes"`
	CapacityBytes       uint64            `json:"capacity_bytes"`
	AvailableBytes      uint64            `json:"available_bytes"`
	LastHeartbeatUnixMs int64             `json:"last_heartbeat_unix_ms"`
	// SnapshotLimit is the store's own snapshot limit (0: the
	// max-snapshots-per-store config).
	SnapshotLimit uint32 `json:"snapshot_limit"`
}

// Epoch is a tablet's epoch.
type Epoch struct {
	Version     uint64 `json:"version"`
	ConfVersion uint64 `json:"conf_version"`
}

// Peer is one replica of a tablet.
type Peer struct {
	ReplicaID uint64 `json:"replica_id"`
	StoreID   uint64 `json:"store_id"`
	// Role is voter, learner, voter_incoming or voter_outgoing.
	Role string `json:"role"`
	// Bad: the replica failed a consistency check or found its own data
	// corrupt; PD replaces it.
	Bad bool `json:"bad,omitempty"`
}

// Tablet is one tablet as shown to operators. Keys are hex-encoded
// encoded row keys; an empty end key means the end of the key space.
type Tablet struct {
	ID              uint64  `json:"id"`
	StartKey        string  `json:"start_key"`
	EndKey          string  `json:"end_key"`
	Epoch           Epoch   `json:"epoch"`
	Peers           []Peer  `json:"peers"`
	LeaderStoreID   uint64  `json:"leader_store_id"`
	ApproximateSize uint64  `json:"approximate_size"`
	ApproximateKeys uint64  `json:"approximate_keys"`
	ReadQPS         float64 `json:"read_qps"`
	WriteQPS        float64 `json:"write_qps"`
	// ReadBytesPerSec and WriteBytesPerSec are the leader's last report.
	ReadBytesPerSec  float64 `json:"read_bytes_per_sec"`
	WriteBytesPerSec float64 `json:"write_bytes_per_sec"`
	// Inconsistent: the last consistency check found no majority among
	// the replicas; nothing was replaced, a person decides.
	Inconsistent bool `json:"inconsistent,omitempty"`
}

// Family is a column family of a table.
type Family struct {
	Name        string `json:"name"`
	MaxVersions uint32 `json:"max_versions"`
	MaxAgeMs    int64  `json:"max_age_ms"`
}

// Table is one table of the catalog. SplitRows are hex-encoded row keys.
type Table struct {
	ID        uint64   `json:"id"`
	Name      string   `json:"name"`
	Version   uint64   `json:"version"`
	Families  []Family `json:"families"`
	SplitRows []string `json:"split_rows"`
}

// Operator is one running scheduling operator.
type Operator struct {
	TabletID      uint64 `json:"tablet_id"`
	Kind          string `json:"kind"`
	Description   string `json:"description"`
	Step          string `json:"step"`
	CreatedUnixMs int64  `json:"created_unix_ms"`
}

// Member is one PD member.
type Member struct {
	Name       string `json:"name"`
	MemberID   uint64 `json:"member_id"`
	ClientAddr string `json:"client_addr"`
	PeerAddr   string `json:"peer_addr"`
	Leader     bool   `json:"leader"`
}

// Members is the PD membership: every member and the leader's name (""
// while none is elected). ClusterID is 0 when the answering member does
// not know it (a follower, or before the first leader loaded).
type Members struct {
	ClusterID uint64   `json:"cluster_id"`
	Leader    string   `json:"leader"`
	Members   []Member `json:"members"`
}

// Counts are the replicas and leaders one store holds.
type Counts struct {
	Tablets int
	Leaders int
}

// CountTablets counts, per store ID, the replicas and the leaders in tablets.
func CountTablets(tablets []*pdpb.TabletInfo) map[uint64]Counts {
	out := map[uint64]Counts{}
	for _, t := range tablets {
		for _, r := range t.GetTablet().GetReplicas() {
			c := out[r.StoreId]
			c.Tablets++
			out[r.StoreId] = c
		}
		if id := t.GetLeaderStoreId(); id != 0 {
			c := out[id]
			c.Leaders++
			out[id] = c
		}
	}
	return out
}

// StateName renders a store state as operators read it: Up, Disconnected,
// Down, Offline or Tombstone.
func StateName(s pdpb.StoreState) string {
	n := s.String()
	if n == "" {
		return ""
	}
	return n[:1] + strings.ToLower(n[1:])
}

// RoleName renders a replica role: voter, learner, voter_incoming,
// voter_outgoing.
func RoleName(r metapb.ReplicaRole) string { return strings.ToLower(r.String()) }

// StoreFromPB converts a store, with its counts from CountTablets.
func StoreFromPB(si *pdpb.StoreInfo, c Counts) Store {
	st := si.GetStore()
	out := Store{
		ID:                  st.GetStoreId(),
		Address:             st.GetAddress(),
		State:               StateName(si.GetState()),
		Labels:              map[string]string{},
		TabletCount:         c.Tablets,
		LeaderCount:         c.Leaders,
		UsedBytes:           si.GetStats().GetUsedBytes(),
		CapacityBytes:       si.GetStats().GetCapacityBytes(),
		AvailableBytes:      si.GetStats().GetAvailableBytes(),
		LastHeartbeatUnixMs: si.GetLastHeartbeatUnixMs(),
		SnapshotLimit:       si.GetSnapshotLimit(),
	}
	for k, v := range st.GetLabels() {
		out.Labels[k] = v
	}
	return out
}

// StoresFromPB converts stores, sorted by ID.
func StoresFromPB(stores []*pdpb.StoreInfo, counts map[uint64]Counts) []Store {
	out := make([]Store, 0, len(stores))
	for _, si := range stores {
		out = append(out, StoreFromPB(si, counts[si.GetStore().GetStoreId()]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TabletFromPB converts a tablet.
func TabletFromPB(t *pdpb.TabletInfo) Tablet {
	d := t.GetTablet()
	out := Tablet{
		ID:              d.GetTabletId(),
		StartKey:        hex.EncodeToString(d.GetStartKey()),
		EndKey:          hex.EncodeToString(d.GetEndKey()),
		Epoch:           Epoch{Version: d.GetEpoch().GetVersion(), ConfVersion: d.GetEpoch().GetConfVersion()},
		Peers:           make([]Peer, 0, len(d.GetReplicas())),
		LeaderStoreID:   t.GetLeaderStoreId(),
		ApproximateSize: t.GetStats().GetApproximateSize(),
		ApproximateKeys: t.GetStats().GetApproximateKeys(),
		ReadQPS:         t.GetStats().GetReadQps(),
		WriteQPS:        t.GetStats().GetWriteQps(),

		ReadBytesPerSec:  t.GetStats().GetReadBytesPerSec(),
		WriteBytesPerSec: t.GetStats().GetWriteBytesPerSec(),
		Inconsistent:     t.GetInconsistent(),
	}
	for _, r := range d.GetReplicas() {
		bad := false
		for _, id := range t.GetBadReplicaIds() {
			bad = bad || id == r.ReplicaId
		}
		out.Peers = append(out.Peers, Peer{ReplicaID: r.ReplicaId, StoreID: r.StoreId, Role: RoleName(r.Role), Bad: bad})
	}
	return out
}

// TabletsFromPB converts tablets, keeping their order.
func TabletsFromPB(tablets []*pdpb.TabletInfo) []Tablet {
	out := make([]Tablet, 0, len(tablets))
	for _, t := range tablets {
		out = append(out, TabletFromPB(t))
	}
	return out
}

// TableFromPB converts a table schema.
func TableFromPB(t *metapb.TableSchema) Table {
	out := Table{
		ID:        t.GetTableId(),
		Name:      t.GetName(),
		Version:   t.GetVersion(),
		Families:  make([]Family, 0, len(t.GetFamilies())),
		SplitRows: make([]string, 0, len(t.GetSplitRows())),
	}
	for _, f := range t.GetFamilies() {
		out.Families = append(out.Families, Family{Name: f.Name, MaxVersions: f.MaxVersions, MaxAgeMs: f.MaxAgeMs})
	}
	for _, r := range t.GetSplitRows() {
		out.SplitRows = append(out.SplitRows, hex.EncodeToString(r))
	}
	return out
}

// TablesFromPB converts tables, sorted by name.
func TablesFromPB(tables []*metapb.TableSchema) []Table {
	out := make([]Table, 0, len(tables))
	for _, t := range tables {
		out = append(out, TableFromPB(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// OperatorFromPB converts an operator.
func OperatorFromPB(op *pdpb.OperatorInfo) Operator {
	return Operator{
		TabletID:      op.GetTabletId(),
		Kind:          op.GetKind(),
		Description:   op.GetDescription(),
		Step:          op.GetStep(),
		CreatedUnixMs: op.GetCreatedUnixMs(),
	}
}

// OperatorsFromPB converts operators, sorted by tablet ID then creation.
func OperatorsFromPB(ops []*pdpb.OperatorInfo) []Operator {
	out := make([]Operator, 0, len(ops))
	for _, op := range ops {
		out = append(out, OperatorFromPB(op))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].TabletID != out[j].TabletID {
			return out[i].TabletID < out[j].TabletID
		}
		return out[i].CreatedUnixMs < out[j].CreatedUnixMs
	})
	return out
}

// MembersFromPB converts a GetMembers answer.
func MembersFromPB(resp *pdpb.GetMembersResponse) Members {
	out := Members{ClusterID: resp.GetClusterId(), Leader: resp.GetLeader().GetName(), Members: make([]Member, 0, len(resp.GetMembers()))}
	for _, m := range resp.GetMembers() {
		out.Members = append(out.Members, Member{
			Name: m.Name, MemberID: m.MemberId, ClientAddr: m.ClientAddr, PeerAddr: m.PeerAddr,
			Leader: out.Leader != "" && m.Name == out.Leader,
		})
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].MemberID < out.Members[j].MemberID })
	return out
}

// EndedOperator is an operator that is no longer running: Status is
// finished, timed-out, cancelled or stale.
type EndedOperator struct {
	Operator
	Status      string `json:"status"`
	EndedUnixMs int64  `json:"ended_unix_ms"`
}
