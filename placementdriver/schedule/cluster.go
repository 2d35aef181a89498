package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
)

// ErrStaleTablet is returned by Cluster.PutTablet when the report is older
// than what the cluster already knows (a smaller epoch than the same tablet,
// or an overlapping tablet with a newer Version). The PD server drops such
// reports.
var ErrStaleTablet = errors.New("schedule: stale tablet report")

// storeIndex is the per-store part of the Cluster indexes.
type storeIndex struct {
	store   *Store
	tablets []*Tablet        // tablets with a replica (voter or learner) here
	pos     map[uint64]int32 // tablet ID → index in tablets
	leaders int
	size    uint64
	// leaderQPS is the read+write QPS of the tablets led here.
	leaderQPS float64
}

// Cluster is a snapshot of stores and tablets with the indexes checkers and
// schedulers need: per-store tablet/leader counts, size and leader load
// (O(1)), the tablets on a store, and tablets sorted by start key (binary
// search for neighbours and key lookups).
//
// A Cluster is not safe for concurrent use; the PD server guards it with the
// lock it already holds while applying heartbeats. The Put/Remove methods
// keep the indexes current, so the server (and the simulator) can maintain
// one Cluster incrementally instead of rebuilding it. Stored *Tablet and
// *Store values must not be modified after they are handed in: replace them.
type Cluster struct {
	stores  []*storeIndex // sorted by store ID
	storeBy map[uint64]*storeIndex
	tablets map[uint64]*Tablet
	byKey   []*Tablet // sorted by StartKey; ranges do not overlap
	// storeGen changes whenever the set of stores or a store changes, so
	// derived caches (label locations) know when to rebuild.
	storeGen uint64
}

// NewCluster builds a snapshot. Tablets must not overlap.
func NewCluster(stores []*Store, tablets []*Tablet) *Cluster {
	c := &Cluster{
		storeBy: make(map[uint64]*storeIndex, len(stores)),
		tablets: make(map[uint64]*Tablet, len(tablets)),
		byKey:   make([]*Tablet, 0, len(tablets)),
	}
	for _, s := range stores {
		c.PutStore(s)
	}
	for _, t := range tablets {
		c.tablets[t.ID] = t
		c.byKey = append(c.byKey, t)
		c.indexTablet(t)
	}
	sort.Slice(c.byKey, func(i, j int) bool { return bytes.Compare(c.byKey[i].StartKey, c.byKey[j].StartKey) < 0 })
	return c
}

// PutStore adds or replaces a store.
func (c *Cluster) PutStore(s *Store) {
	c.storeGen++
	if si, ok := c.storeBy[s.ID]; ok {
		si.store = s
		return
	}
	si := &storeIndex{store: s, pos: make(map[uint64]int32)}
	c.storeBy[s.ID] = si
	i := sort.Search(len(c.stores), func(i int) bool { return c.stores[i].store.ID >= s.ID })
	c.stores = append(c.stores, nil)
	copy(c.stores[i+1:], c.stores[i:])
	c.stores[i] = si
}

// Store returns the store, or nil.
func (c *Cluster) Store(id uint64) *Store {
	if si, ok := c.storeBy[id]; ok {
		return si.store
	}
	return nil
}

// Stores returns all stores sorted by ID (a fresh slice).
func (c *Cluster) Stores() []*Store {
	out := make([]*Store, len(c.stores))
	for i, si := range c.stores {
		out[i] = si.store
	}
	return out
}

// StoreTabletCount is the number of replicas (voters and learners) on the store.
func (c *Cluster) StoreTabletCount(id uint64) int {
	if si, ok := c.storeBy[id]; ok {
		return len(si.tablets)
	}
	return 0
}

// StoreLeaderCount is the number of tablets led from the store.
func (c *Cluster) StoreLeaderCount(id uint64) int {
	if si, ok := c.storeBy[id]; ok {
		return si.leaders
	}
	return 0
}

// StoreSize is the summed approximate size of the store's replicas.
func (c *Cluster) StoreSize(id uint64) uint64 {
	if si, ok := c.storeBy[id]; ok {
		return si.size
	}
	return 0
}

// StoreLeaderQPS is the summed read+write QPS of the tablets led from the store.
func (c *Cluster) StoreLeaderQPS(id uint64) float64 {
	if si, ok := c.storeBy[id]; ok {
		return si.leaderQPS
	}
	return 0
}

// StoreTablets returns the tablets with a replica on the store, in no
// particular (but deterministic) order. The slice is shared: do not modify,
// and do not hold it across Put/Remove calls.
func (c *Cluster) StoreTablets(id uint64) []*Tablet {
	if si, ok := c.storeBy[id]; ok {
		return si.tablets
	}
	return nil
}

// Tablet returns the tablet, or nil.
func (c *Cluster) Tablet(id uint64) *Tablet { return c.tablets[id] }

// TabletCount is the number of tablets.
func (c *Cluster) TabletCount() int { return len(c.byKey) }

// Tablets returns all tablets in key order. The slice is shared: do not
// modify, and do not hold it across Put/Remove calls.
func (c *Cluster) Tablets() []*Tablet { return c.byKey }

// searchStart returns the index of the first tablet with StartKey >= key.
func (c *Cluster) searchStart(key []byte) int {
	return sort.Search(len(c.byKey), func(i int) bool { return bytes.Compare(c.byKey[i].StartKey, key) >= 0 })
}

// TabletForKey returns the tablet whose range contains key, or nil.
func (c *Cluster) TabletForKey(key []byte) *Tablet {
	i := sort.Search(len(c.byKey), func(i int) bool { return bytes.Compare(c.byKey[i].StartKey, key) > 0 })
	if i == 0 {
		return nil
	}
	if t := c.byKey[i-1]; t.ContainsKey(key) {
		return t
	}
	return nil
}

// staleLeader reports whether t, at the same epoch as old, comes from a
// leader that raft has already replaced: a lower term, or the same term from
// another store (raft elects one leader per term; the first report wins).
// A deposed leader that is quiesced may not hear of the new term for a
// while and keeps reporting; taking each report would flip the leader.
// Term 0 is unknown (an older store, a split report's hint): it is taken as
// before and clears the held term. A newer epoch is always taken (terms only
// grow, and a split or merge must go through).
func staleLeader(t, old *Tablet) bool {
	if t.Term == 0 || old.Term == 0 || t.Version != old.Version || t.ConfVersion != old.ConfVersion {
		return false
	}
	return t.Term < old.Term || (t.Term == old.Term && t.LeaderStoreID != old.LeaderStoreID)
}

// Neighbours returns the tablets immediately before and after t in key
// order that are adjacent to it (left.EndKey == t.StartKey, t.EndKey ==
// right.StartKey), or nil where there is a gap or an end of the key space.
func (c *Cluster) Neighbours(t *Tablet) (left, right *Tablet) {
	i := c.searchStart(t.StartKey)
	if i >= len(c.byKey) || c.byKey[i].ID != t.ID {
		return nil, nil
	}
	if i > 0 && bytes.Equal(c.byKey[i-1].EndKey, t.StartKey) {
		left = c.byKey[i-1]
	}
	if i+1 < len(c.byKey) && len(t.EndKey) > 0 && bytes.Equal(c.byKey[i+1].StartKey, t.EndKey) {
		right = c.byKey[i+1]
	}
	return left, right
}

// PutTablet adds or replaces a tablet (by ID), keeping every index current.
// Tablets overlapping the new range are removed and returned (the left
// half's report after a split, the absorbed tablet after a merge). A report
// with an older epoch than the known tablet, overlapping a tablet with a
// newer Version, or from a stale leader (staleLeader) is refused with
// ErrStaleTablet. Cost: O(log n) when the key range is unchanged, O(n)
// memmove when tablets are inserted or removed.
func (c *Cluster) PutTablet(t *Tablet) (removed []*Tablet, err error) {
	if old, ok := c.tablets[t.ID]; ok {
		if t.Version < old.Version || t.ConfVersion < old.ConfVersion {
			return nil, fmt.Errorf("%w: tablet %d epoch %d/%d < %d/%d", ErrStaleTablet, t.ID, t.Version, t.ConfVersion, old.Version, old.ConfVersion)
		}
		if staleLeader(t, old) {
			return nil, fmt.Errorf("%w: tablet %d leader on store %d at term %d, store %d reported term %d", ErrStaleTablet, t.ID, old.LeaderStoreID, old.Term, t.LeaderStoreID, t.Term)
		}
		if bytes.Equal(old.StartKey, t.StartKey) && bytes.Equal(old.EndKey, t.EndKey) {
			i := c.searchStart(t.StartKey)
			c.unindexTablet(old)
			c.byKey[i] = t
			c.tablets[t.ID] = t
			c.indexTablet(t)
			return nil, nil
		}
	}
	// Collect the overlapping tablets (including an old version of t).
	lo := c.searchStart(t.StartKey)
	if lo > 0 {
		if p := c.byKey[lo-1]; len(p.EndKey) == 0 || bytes.Compare(p.EndKey, t.StartKey) > 0 {
			lo--
		}
	}
	hi := lo
	for hi < len(c.byKey) && (len(t.EndKey) == 0 || bytes.Compare(c.byKey[hi].StartKey, t.EndKey) < 0) {
		if o := c.byKey[hi]; o.ID != t.ID && o.Version > t.Version {
			return nil, fmt.Errorf("%w: tablet %d version %d overlaps tablet %d version %d", ErrStaleTablet, t.ID, t.Version, o.ID, o.Version)
		}
		hi++
	}
	if old, ok := c.tablets[t.ID]; ok && (lo >= hi || !c.inRange(old, lo, hi)) {
		// The old version of t is elsewhere (its start moved past a gap).
		c.removeTablet(old)
		return c.PutTablet(t)
	}
	for _, o := range c.byKey[lo:hi] {
		c.unindexTablet(o)
		delete(c.tablets, o.ID)
		if o.ID != t.ID {
			removed = append(removed, o)
		}
	}
	// Replace byKey[lo:hi] with t.
	if hi-lo == 1 {
		c.byKey[lo] = t
	} else if hi == lo {
		c.byKey = append(c.byKey, nil)
		copy(c.byKey[lo+1:], c.byKey[lo:])
		c.byKey[lo] = t
	} else {
		c.byKey[lo] = t
		c.byKey = append(c.byKey[:lo+1], c.byKey[hi:]...)
	}
	c.tablets[t.ID] = t
	c.indexTablet(t)
	return removed, nil
}

func (c *Cluster) inRange(t *Tablet, lo, hi int) bool {
	for _, o := range c.byKey[lo:hi] {
		if o == t {
			return true
		}
	}
	return false
}

// RemoveTablet drops a tablet; it reports whether it existed.
func (c *Cluster) RemoveTablet(id uint64) bool {
	t, ok := c.tablets[id]
	if !ok {
		return false
	}
	c.removeTablet(t)
	return true
}

func (c *Cluster) removeTablet(t *Tablet) {
	i := c.searchStart(t.StartKey)
	if i < len(c.byKey) && c.byKey[i] == t {
		c.byKey = append(c.byKey[:i], c.byKey[i+1:]...)
	}
	delete(c.tablets, t.ID)
	c.unindexTablet(t)
}

// indexTablet adds t to the per-store indexes. Replicas on stores the
// cluster does not know get a placeholder store in state Tombstone, so the
// repair checker replaces them.
func (c *Cluster) indexTablet(t *Tablet) {
	for _, r := range t.Replicas {
		si, ok := c.storeBy[r.StoreID]
		if !ok {
			c.PutStore(&Store{ID: r.StoreID, State: StoreTombstone})
			si = c.storeBy[r.StoreID]
		}
		si.pos[t.ID] = int32(len(si.tablets))
		si.tablets = append(si.tablets, t)
		si.size += t.Size
		if r.StoreID == t.LeaderStoreID {
			si.leaders++
			si.leaderQPS += t.QPS()
		}
	}
}

func (c *Cluster) unindexTablet(t *Tablet) {
	for _, r := range t.Replicas {
		si, ok := c.storeBy[r.StoreID]
		if !ok {
			continue
		}
		i, ok := si.pos[t.ID]
		if !ok {
			continue
		}
		last := len(si.tablets) - 1
		if int(i) != last {
			moved := si.tablets[last]
			si.tablets[i] = moved
			si.pos[moved.ID] = i
		}
		si.tablets[last] = nil
		si.tablets = si.tablets[:last]
		delete(si.pos, t.ID)
		si.size -= t.Size
		if r.StoreID == t.LeaderStoreID {
			si.leaders--
			si.leaderQPS -= t.QPS()
		}
	}
}
