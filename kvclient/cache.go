package kvclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// tabletLookup is what the location cache needs from the placement driver.
// The production implementation is pdLookup over pdclient (which follows
// PD leader changes itself); tests use a fake.
type tabletLookup interface {
	// GetTablet returns the tablet containing the encoded key.
	GetTablet(ctx context.Context, key []byte) (*pdpb.TabletInfo, error)
	// ScanTablets returns up to limit tablets overlapping [start, end) in
	// key order (empty end: to the end of the key space).
	ScanTablets(ctx context.Context, start, end []byte, limit int) ([]*pdpb.TabletInfo, error)
}

// location is a snapshot of one cache entry: a tablet descriptor and the
// store believed to lead it (0: unknown, pick a replica). Descriptors are
// never modified once cached.
type location struct {
	desc   *metapb.TabletDescriptor
	leader uint64
}

func (l location) tabletID() uint64 { return l.desc.GetTabletId() }

func (l location) contains(key []byte) bool {
	return bytes.Compare(key, l.desc.StartKey) >= 0 && (len(l.desc.EndKey) == 0 || bytes.Compare(key, l.desc.EndKey) < 0)
}

// containsBefore reports whether the key just before key lies in l:
// start < key <= end.
func (l location) containsBefore(key []byte) bool {
	return bytes.Compare(l.desc.StartKey, key) < 0 && (len(l.desc.EndKey) == 0 || bytes.Compare(key, l.desc.EndKey) <= 0)
}

// target returns the store to send to: the leader, or the first voter.
func (l location) target() uint64 {
	if l.leader != 0 {
		return l.leader
	}
	for _, r := range l.desc.Replicas {
		if isVoter(r) {
			return r.StoreId
		}
	}
	return 0
}

func isVoter(r *metapb.Replica) bool {
	return r.Role == metapb.ReplicaRole_VOTER || r.Role == metapb.ReplicaRole_VOTER_INCOMING
}

func hasReplicaOn(d *metapb.TabletDescriptor, store uint64) bool {
	for _, r := range d.Replicas {
		if r.StoreId == store {
			return true
		}
	}
	return false
}

func epochVersion(d *metapb.TabletDescriptor) uint64 { return d.GetEpoch().GetVersion() }

// locationCache maps encoded keys to tablets. Entries are sorted by start
// key and never overlap. It is filled from the placement driver on a miss
// and corrected from the routing errors tablet servers return:
//
//   - NotLeader with a hint: the entry's leader is updated in place.
//   - NotLeader without a hint: the caller tries the descriptor's other
//     replicas (setLeader), then drops the entry.
//   - EpochMismatch: the current descriptors in the error replace the entry
//     and every entry they overlap.
//   - KeyNotInTablet, TabletNotFound: the entry is dropped and refetched.
//
// A descriptor never replaces an overlapping entry with a newer epoch
// version (the PD may lag behind the tablet servers after a split).
type locationCache struct {
	lookup tabletLookup
	misses prometheus.Counter

	mu struct {
		sync.RWMutex
		entries []*location // sorted by desc.StartKey, non-overlapping
	}
}

func newLocationCache(l tabletLookup) *locationCache {
	return &locationCache{lookup: l, misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})}
}

// searchLocked returns the index of the last entry with start <= key, or -1.
func (c *locationCache) searchLocked(key []byte) int {
	es := c.mu.entries
	i := sort.Search(len(es), func(i int) bool { return bytes.Compare(es[i].desc.StartKey, key) > 0 })
	return i - 1
}

// cached returns the cached tablet containing key.
func (c *locationCache) cached(key []byte) (location, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if i := c.searchLocked(key); i >= 0 && c.mu.entries[i].contains(key) {
		return *c.mu.entries[i], true
	}
	return location{}, false
}

// cachedBefore returns the cached tablet containing the keys just below
// key (start < key <= end).
func (c *locationCache) cachedBefore(key []byte) (location, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	es := c.mu.entries
	i := sort.Search(len(es), func(i int) bool { return bytes.Compare(es[i].desc.StartKey, key) >= 0 }) - 1
	if i >= 0 && es[i].containsBefore(key) {
		return *es[i], true
	}
	return location{}, false
}

// locate returns the tablet containing key, from the cache or the PD.
func (c *locationCache) locate(ctx context.Context, key []byte) (location, error) {
	if l, ok := c.cached(key); ok {
		return l, nil
	}
	c.misses.Inc()
	info, err := c.lookup.GetTablet(ctx, key)
	if err != nil {
		return location{}, err
	}
	l := location{desc: info.GetTablet(), leader: info.GetLeaderStoreId()}
	if l.desc == nil || !l.contains(key) {
		return location{}, fmt.Errorf("kvclient: placement driver returned tablet %d [%x, %x) for key %x", l.tabletID(), l.desc.GetStartKey(), l.desc.GetEndKey(), key)
	}
	c.insert(l)
	return l, nil
}

// locateBefore returns the tablet holding the keys just below key: the one
// with start < key <= end. Reverse scans walk tablets this way.
func (c *locationCache) locateBefore(ctx context.Context, key []byte) (location, error) {
	if l, ok := c.cachedBefore(key); ok {
		return l, nil
	}
	c.misses.Inc()
	probe, ok := keyBelow(key)
	if !ok {
		return location{}, fmt.Errorf("kvclient: no key below %x", key)
	}
	// probe < key, and usually no tablet boundary lies in [probe, key);
	// walk forward in case one does.
	for i := 0; i < 1000; i++ {
		info, err := c.lookup.GetTablet(ctx, probe)
		if err != nil {
			return location{}, err
		}
		l := location{desc: info.GetTablet(), leader: info.GetLeaderStoreId()}
		if l.desc == nil || !l.contains(probe) {
			return location{}, fmt.Errorf("kvclient: placement driver returned tablet %d [%x, %x) for key %x", l.tabletID(), l.desc.GetStartKey(), l.desc.GetEndKey(), probe)
		}
		c.insert(l)
		if l.containsBefore(key) {
			return l, nil
		}
		probe = l.desc.EndKey
	}
	return location{}, fmt.Errorf("kvclient: could not find the tablet before key %x", key)
}

// keyBelow returns a key smaller than key such that, for keys of Shale's
// shape (bare table prefixes and encoded row keys), hardly any tablet
// boundary lies between them.
func keyBelow(key []byte) ([]byte, bool) {
	if len(key) == 0 {
		return nil, false
	}
	if len(key) == 8 {
		// A bare table prefix: the end of the previous table's key space.
		id := binary.BigEndian.Uint64(key)
		if id == 0 {
			return []byte{}, true
		}
		k := binary.BigEndian.AppendUint64(nil, id-1)
		return append(k, bytes.Repeat([]byte{0xff}, 16)...), true
	}
	// Dropping the last byte of an encoded row key (its 0x00 0x01
	// terminator) leaves a key that no valid boundary follows before key.
	return key[: len(key)-1 : len(key)-1], true
}

// prefetch loads the tablets overlapping [start, end) into the cache,
// paging through ScanTablets. It is best effort: errors are returned but
// the cache stays consistent.
func (c *locationCache) prefetch(ctx context.Context, start, end []byte, max int) error {
	const page = 64
	for n := 0; n < max; {
		infos, err := c.lookup.ScanTablets(ctx, start, end, page)
		if err != nil {
			return err
		}
		if len(infos) == 0 {
			return nil
		}
		for _, info := range infos {
			if info.GetTablet() != nil {
				c.insert(location{desc: info.Tablet, leader: info.LeaderStoreId})
			}
		}
		n += len(infos)
		last := infos[len(infos)-1].GetTablet()
		if len(last.GetEndKey()) == 0 || (len(end) > 0 && bytes.Compare(last.EndKey, end) >= 0) || len(infos) < page {
			return nil
		}
		if bytes.Compare(last.EndKey, start) <= 0 {
			return nil // no progress: the PD answered oddly
		}
		start = last.EndKey
	}
	return nil
}

// insert adds l, dropping every entry it overlaps, unless one of those has
// a newer epoch version (then l is stale and not cached).
func (c *locationCache) insert(l location) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.insertLocked(l)
}

func (c *locationCache) insertLocked(l location) bool {
	es := c.mu.entries
	lo, hi := c.overlapLocked(l.desc.StartKey, l.desc.EndKey)
	for _, e := range es[lo:hi] {
		if epochVersion(e.desc) > epochVersion(l.desc) {
			return false
		}
		if e.desc.TabletId == l.desc.TabletId && epochVersion(e.desc) == epochVersion(l.desc) &&
			e.desc.GetEpoch().GetConfVersion() > l.desc.GetEpoch().GetConfVersion() {
			return false
		}
	}
	n := &location{desc: l.desc, leader: l.leader}
	out := make([]*location, 0, len(es)-(hi-lo)+1)
	out = append(out, es[:lo]...)
	out = append(out, n)
	out = append(out, es[hi:]...)
	c.mu.entries = out
	return true
}

// overlapLocked returns the index range of entries overlapping [start, end).
func (c *locationCache) overlapLocked(start, end []byte) (int, int) {
	es := c.mu.entries
	lo := sort.Search(len(es), func(i int) bool {
		return len(es[i].desc.EndKey) == 0 || bytes.Compare(es[i].desc.EndKey, start) > 0
	})
	hi := lo
	for hi < len(es) && (len(end) == 0 || bytes.Compare(es[hi].desc.StartKey, end) < 0) {
		hi++
	}
	return lo, hi
}

// findLocked returns the index of the entry for tabletID, or -1.
func (c *locationCache) findLocked(tabletID uint64) int {
	for i, e := range c.mu.entries {
		if e.desc.TabletId == tabletID {
			return i
		}
	}
	return -1
}

// setLeader records store as the tablet's leader (NotLeader with a hint,
// or trying another replica). A store without a replica is ignored.
func (c *locationCache) setLeader(tabletID, store uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.findLocked(tabletID); i >= 0 {
		e := c.mu.entries[i]
		if store == 0 || hasReplicaOn(e.desc, store) {
			// Copy on write: readers hold snapshots by value anyway.
			c.mu.entries[i] = &location{desc: e.desc, leader: store}
		}
	}
}

// drop removes the tablet's entry (KeyNotInTablet, TabletNotFound, or
// every replica tried).
func (c *locationCache) drop(tabletID uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.findLocked(tabletID); i >= 0 {
		c.mu.entries = append(c.mu.entries[:i:i], c.mu.entries[i+1:]...)
	}
}

// onEpochMismatch installs the current descriptors from an EpochMismatch
// error. A descriptor keeps the leader of the entry it replaces when that
// store still has a replica (a split's right half is usually led where
// the parent was). It reports whether any descriptor was newer than what
// the cache held.
func (c *locationCache) onEpochMismatch(staleTabletID uint64, current []*metapb.TabletDescriptor) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var oldLeader uint64
	installed := false
	if i := c.findLocked(staleTabletID); i >= 0 {
		oldLeader = c.mu.entries[i].leader
	}
	for _, d := range current {
		if d == nil {
			continue
		}
		leader := uint64(0)
		if i := c.findLocked(d.TabletId); i >= 0 && hasReplicaOn(d, c.mu.entries[i].leader) {
			leader = c.mu.entries[i].leader
		} else if hasReplicaOn(d, oldLeader) {
			leader = oldLeader
		}
		if c.insertLocked(location{desc: d, leader: leader}) {
			installed = true
		}
	}
	return installed
}

// len returns the number of cached tablets (for tests).
func (c *locationCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.mu.entries)
}
