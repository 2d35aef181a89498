package raftlog

import "go.etcd.io/raft/v3/raftpb"

// defaultCacheBytes caps one replica's entry cache. A tail longer than this
// means the replica is far behind on applying; it reads Pebble until it
// catches up.
const defaultCacheBytes = 4 << 20

// entryCache holds the unapplied tail of the log: a contiguous run of
// entries identical to what Pebble holds at those indexes, so that raft
// reading back a just-persisted entry when it commits does not go to Pebble.
// Callers hold Storage.mu.
type entryCache struct {
	ents  []raftpb.Entry
	bytes uint64 // sum of the cached entries' encoded sizes
	limit uint64
}

func (c *entryCache) first() uint64 { return c.ents[0].Index }
func (c *entryCache) last() uint64  { return c.ents[len(c.ents)-1].Index }

// add records entries that were just persisted. An append at or below the
// cached last index replaced a conflicting tail in Pebble, so the cache drops
// that tail too; a gap starts the cache afresh.
func (c *entryCache) add(ents []raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	if len(c.ents) > 0 {
		switch at := ents[0].Index; {
		case at > c.last()+1:
			c.clear()
		case at <= c.last():
			c.dropFrom(at)
		}
	}
	for _, e := range ents {
		c.bytes += uint64(e.Size())
	}
	c.ents = append(c.ents, ents...)
	// Over the cap: drop the oldest, keeping a contiguous newest run.
	n := 0
	for n < len(c.ents) && c.bytes > c.limit {
		c.bytes -= uint64(c.ents[n].Size())
		n++
	}
	c.dropFront(n)
}

// dropFrom removes the entries with Index >= index.
func (c *entryCache) dropFrom(index uint64) {
	if len(c.ents) == 0 || index > c.last() {
		return
	}
	if index <= c.first() {
		c.clear()
		return
	}
	k := int(index - c.first())
	for i := k; i < len(c.ents); i++ {
		c.bytes -= uint64(c.ents[i].Size())
		c.ents[i] = raftpb.Entry{} // release Data
	}
	c.ents = c.ents[:k]
}

// dropTo removes the entries with Index <= index.
func (c *entryCache) dropTo(index uint64) {
	if len(c.ents) == 0 || index < c.first() {
		return
	}
	if index >= c.last() {
		c.clear()
		return
	}
	n := int(index - c.first() + 1)
	for _, e := range c.ents[:n] {
		c.bytes -= uint64(e.Size())
	}
	c.dropFront(n)
}

// dropFront removes the first n entries, zeroing them so the backing array
// does not pin their Data, and lets go of the array when nothing is left.
func (c *entryCache) dropFront(n int) {
	if n == len(c.ents) {
		c.clear()
		return
	}
	clear(c.ents[:n])
	c.ents = c.ents[n:]
}

func (c *entryCache) clear() {
	c.ents, c.bytes = nil, 0
}

// get returns [lo, hi) limited by maxSize like the Pebble path (at least one
// entry, none past maxSize), in a fresh slice the caller may append to; ok is
// false unless the cache holds the whole range.
func (c *entryCache) get(lo, hi, maxSize uint64) (ents []raftpb.Entry, ok bool) {
	if len(c.ents) == 0 || lo >= hi || lo < c.first() || hi-1 > c.last() {
		return nil, false
	}
	src := c.ents[lo-c.first() : hi-c.first()]
	n, size := 0, uint64(0)
	for ; n < len(src); n++ {
		size += uint64(src[n].Size())
		if n > 0 && size > maxSize {
			break
		}
	}
	return append([]raftpb.Entry(nil), src[:n]...), true
}

// term returns the term of entry i if it is cached.
func (c *entryCache) term(i uint64) (uint64, bool) {
	if len(c.ents) == 0 || i < c.first() || i > c.last() {
		return 0, false
	}
	return c.ents[i-c.first()].Term, true
}
