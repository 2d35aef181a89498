package schedule

import (
	"fmt"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type seqAlloc struct{ next uint64 }

func (a *seqAlloc) AllocID() uint64 { a.next++; return a.next }

func newAlloc() *seqAlloc { return &seqAlloc{next: 1000} }

// store builds an Up store; zone/host labels when zone != "".
func store(id uint64, zone string) *Store {
	s := &Store{ID: id, State: StoreUp, Labels: map[string]string{"host": fmt.Sprintf("h%d", id)}}
	if zone != "" {
		s.Labels["zone"] = zone
	}
	return s
}

// tablet builds a healthy tablet with voters on stores (replica ID =
// 100*tabletID + store), led by the first store.
func tablet(id uint64, start, end string, stores ...uint64) *Tablet {
	t := &Tablet{ID: id, StartKey: []byte(start), EndKey: []byte(end), Version: 1, ConfVersion: 1, LeaderStoreID: stores[0], Size: 50 << 20}
	for _, s := range stores {
		t.Replicas = append(t.Replicas, Replica{ID: 100*id + s, StoreID: s})
	}
	return t
}

func testConfig() Config {
	return Config{LocationLabels: []string{"zone", "host"}, MaxStoreDownTime: 30 * time.Minute}.EnsureDefaults()
}

// fixture bundles a cluster with a controller and allocator.
type fixture struct {
	cfg   Config
	c     *Cluster
	ctl   *Controller
	alloc *seqAlloc
}

func newFixture(cfg Config, stores []*Store, tablets ...*Tablet) *fixture {
	return &fixture{cfg: cfg, c: NewCluster(stores, tablets), ctl: NewController(cfg), alloc: newAlloc()}
}

func move(from, to, oldID, newID, sender uint64) []Step {
	return []Step{
		AddLearner{Store: to, ReplicaID: newID, Sender: sender},
		ChangeReplicas{Promote: []PromoteLearner{{Store: to, ReplicaID: newID}}, Remove: []RemoveReplica{{Store: from, ReplicaID: oldID}}},
	}
}
