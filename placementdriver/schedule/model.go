package schedule

import (
	"bytes"
	"fmt"
	"time"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// StoreState is a store's liveness as judged by the PD server from store
// heartbeats. The values and their order match pdpb.StoreState.
type StoreState int

const (
	// StoreUp: heartbeating normally. The only state that may receive
	// replicas or leaders.
	StoreUp StoreState = iota
	// StoreDisconnected: heartbeats missed for a short while. Nothing is
	// repaired yet (a restart or a network blip must not cause copies), but
	// the store gets no new replicas.
	StoreDisconnected
	// StoreDown: heartbeats missing for longer; replicas are replaced once
	// Store.DownFor reaches Config.MaxStoreDownTime.
	StoreDown
	// StoreOffline: being decommissioned by an operator; replicas are moved
	// away while the store still serves them.
	StoreOffline
	// StoreTombstone: removed from the cluster; any replica still recorded
	// there is replaced.
	StoreTombstone
)

var storeStateNames = [...]string{"up", "disconnected", "down", "offline", "tombstone"}

func (s StoreState) String() string {
	if s >= 0 && int(s) < len(storeStateNames) {
		return storeStateNames[s]
	}
	return fmt.Sprintf("StoreState(%d)", int(s))
}

// StoreStateFromProto converts the wire enum.
func StoreStateFromProto(s pdpb.StoreState) StoreState { return StoreState(s) }

// Store is the scheduler's view of one store, built by the PD server from the
// latest store heartbeat.
type Store struct {
	ID     uint64
	Labels map[string]string
	State  StoreState
	// DownFor is how long the store has gone without a heartbeat, computed
	// by the caller when it builds the snapshot (the library reads no
	// clock). Only consulted when State is StoreDown.
	DownFor time.Duration

	CapacityBytes, AvailableBytes, UsedBytes uint64
	// DiskFull: the store refuses writes for lack of space (or its engine
	// failed). It gets no replicas or leaders; its own are moved away.
	DiskFull bool
	// Snapshots in flight as reported by the store itself. The snapshot limit
	// uses the larger of these and the Controller's own count.
	SendingSnapshots, ReceivingSnapshots int
	// SnapshotLimit overrides Config.MaxSnapshotsPerStore for this store
	// (0: no override; shale ctl store limit).
	SnapshotLimit int
}

// StoreFromProto builds a Store from a StoreInfo. downFor is the time since
// the store's last heartbeat as measured by the caller.
func StoreFromProto(si *pdpb.StoreInfo, downFor time.Duration) *Store {
	s := &Store{
		ID:      si.GetStore().GetStoreId(),
		Labels:  si.GetStore().GetLabels(),
		State:   StoreStateFromProto(si.GetState()),
		DownFor: downFor,

		SnapshotLimit: int(si.GetSnapshotLimit()),
	}
	if st := si.GetStats(); st != nil {
		s.CapacityBytes = st.GetCapacityBytes()
		s.AvailableBytes = st.GetAvailableBytes()
		s.UsedBytes = st.GetUsedBytes()
		s.DiskFull = st.GetDiskFull()
		s.SendingSnapshots = int(st.GetSendingSnapshots())
		s.ReceivingSnapshots = int(st.GetReceivingSnapshots())
	}
	return s
}

// Replica is one member of a tablet's raft group.
type Replica struct {
	ID      uint64
	StoreID uint64
	Learner bool
}

// Tablet is the scheduler's view of one tablet, built from the latest
// TabletReport of its leader. Checkers, schedulers and the Controller never
// modify a Tablet; the PD server replaces it on every report.
type Tablet struct {
	ID                   uint64
	StartKey, EndKey     []byte // [StartKey, EndKey); empty EndKey: +inf
	Version, ConfVersion uint64
	Replicas             []Replica
	LeaderStoreID        uint64
	Term                 uint64 // the leader's raft term; 0: unknown (see Cluster.PutTablet)
	Size, Keys           uint64
	ReadQPS, WriteQPS    float64
	// HotReports is the number of consecutive reports in which
	// ReadQPS+WriteQPS exceeded Config.SplitQPS, kept by the caller (the PD
	// server's heartbeat handler) because the library has no memory between
	// snapshots. A load split needs HotReports >= Config.SplitHotReports.
	HotReports   int
	LoadSplitKey []byte
	// DownReplicas and PendingReplicas hold replica IDs reported by the leader.
	DownReplicas, PendingReplicas []uint64
	// BadReplicas failed a consistency check or found their own data
	// corrupt: they are replaced whatever their store's state.
	BadReplicas []uint64
	// Inconsistent: the last consistency check found no majority. Nothing
	// is replaced; a person decides.
	Inconsistent bool
	// Joint: the tablet is between two voter sets (joint consensus); its
	// leader leaves that state on its own. Incoming and outgoing voters
	// are both listed as voters.
	Joint bool
	// RangeAge is how long the tablet has had its current key range
	// (since it was created by a split or changed by a merge), measured by
	// the caller. Young tablets are not merged (see SplitMergeInterval).
	RangeAge time.Duration
}

// TabletFromProto builds a Tablet from a leader's report. hotReports is the
// caller's count of consecutive hot reports (see Tablet.HotReports).
func TabletFromProto(r *pdpb.TabletReport, hotReports int) *Tablet {
	d := r.GetTablet()
	t := &Tablet{
		ID:              d.GetTabletId(),
		StartKey:        d.GetStartKey(),
		EndKey:          d.GetEndKey(),
		Version:         d.GetEpoch().GetVersion(),
		ConfVersion:     d.GetEpoch().GetConfVersion(),
		LeaderStoreID:   r.GetLeaderStoreId(),
		Term:            r.GetTerm(),
		HotReports:      hotReports,
		DownReplicas:    r.GetDownReplicaIds(),
		PendingReplicas: r.GetPendingReplicaIds(),
		BadReplicas:     r.GetBadReplicaIds(),
		Inconsistent:    r.GetInconsistent(),
	}
	for _, rp := range d.GetReplicas() {
		t.Replicas = append(t.Replicas, Replica{
			ID:      rp.GetReplicaId(),
			StoreID: rp.GetStoreId(),
			Learner: rp.GetRole() == metapb.ReplicaRole_LEARNER,
		})
		if r := rp.GetRole(); r == metapb.ReplicaRole_VOTER_INCOMING || r == metapb.ReplicaRole_VOTER_OUTGOING {
			t.Joint = true
		}
	}
	if st := r.GetStats(); st != nil {
		t.Size = st.GetApproximateSize()
		t.Keys = st.GetApproximateKeys()
		t.ReadQPS = st.GetReadQps()
		t.WriteQPS = st.GetWriteQps()
		t.LoadSplitKey = st.GetLoadSplitKey()
	}
	return t
}

// Clone returns a deep copy (the simulator mutates copies).
func (t *Tablet) Clone() *Tablet {
	c := *t
	c.Replicas = append([]Replica(nil), t.Replicas...)
	c.DownReplicas = append([]uint64(nil), t.DownReplicas...)
	c.PendingReplicas = append([]uint64(nil), t.PendingReplicas...)
	c.BadReplicas = append([]uint64(nil), t.BadReplicas...)
	return &c
}

// ReplicaOn returns the tablet's replica on the store.
func (t *Tablet) ReplicaOn(storeID uint64) (Replica, bool) {
	for _, r := range t.Replicas {
		if r.StoreID == storeID {
			return r, true
		}
	}
	return Replica{}, false
}

// HasStore reports whether the tablet has a replica on the store.
func (t *Tablet) HasStore(storeID uint64) bool {
	_, ok := t.ReplicaOn(storeID)
	return ok
}

// VoterCount is the number of non-learner replicas.
func (t *Tablet) VoterCount() int {
	n := 0
	for _, r := range t.Replicas {
		if !r.Learner {
			n++
		}
	}
	return n
}

// IsDown reports whether the leader reported the replica as down.
func (t *Tablet) IsDown(replicaID uint64) bool { return containsID(t.DownReplicas, replicaID) }

// IsBad reports whether the leader reported the replica as bad.
func (t *Tablet) IsBad(replicaID uint64) bool { return containsID(t.BadReplicas, replicaID) }

// IsPending reports whether the replica is still catching up.
func (t *Tablet) IsPending(replicaID uint64) bool { return containsID(t.PendingReplicas, replicaID) }

// QPS is the tablet's total read+write rate.
func (t *Tablet) QPS() float64 { return t.ReadQPS + t.WriteQPS }

// ContainsKey reports whether key is in [StartKey, EndKey).
func (t *Tablet) ContainsKey(key []byte) bool {
	return bytes.Compare(key, t.StartKey) >= 0 && (len(t.EndKey) == 0 || bytes.Compare(key, t.EndKey) < 0)
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// IDAllocator hands out cluster-unique IDs for new replicas and tablets. The
// PD server backs it with its raft-replicated ID counter.
type IDAllocator interface {
	AllocID() uint64
}
