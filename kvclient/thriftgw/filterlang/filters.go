package filterlang

import (
	"bytes"
	"encoding/binary"

	"github.com/shaledb/shale/kvclient"
)

// node is a parsed filter (a leaf or a combination). stage makes its
// per-scan evaluator.
type node interface {
	stage(reverse bool) stage
}

// stage evaluates one node over the rows of one scan. It is called only
// with a row that has cells; it returns the cells it keeps (none: the row
// is dropped) and whether the scan ends (the row is then dropped too).
type stage interface {
	row(key []byte, cells []cell) (kept []cell, stop bool)
}

// cell is a row's cell with its index in the row as read, which OR uses
// to merge its branches in the row's order.
type cell struct {
	i int
	c kvclient.Cell
}

// ---- combinations ----

type andNode struct{ kids []node }
type orNode struct{ kids []node }
type skipNode struct{ kid node }
type whileNode struct{ kid node }

func (n *andNode) stage(rev bool) stage {
	s := &andStage{}
	for _, k := range n.kids {
		s.kids = append(s.kids, k.stage(rev))
	}
	return s
}

type andStage struct{ kids []stage }

func (s *andStage) row(key []byte, cells []cell) ([]cell, bool) {
	for _, k := range s.kids {
		var stop bool
		cells, stop = k.row(key, cells)
		if stop {
			return nil, true
		}
		if len(cells) == 0 {
			return nil, false
		}
	}
	return cells, false
}

func (n *orNode) stage(rev bool) stage {
	s := &orStage{}
	for _, k := range n.kids {
		s.kids = append(s.kids, k.stage(rev))
	}
	s.done = make([]bool, len(s.kids))
	return s
}

// orStage remembers which branches ended the scan: they keep nothing
// more, and the OR ends the scan when all have.
type orStage struct {
	kids []stage
	done []bool
}

func (s *orStage) row(key []byte, cells []cell) ([]cell, bool) {
	var kept []cell
	seen := map[int]bool{}
	live := false
	for i, k := range s.kids {
		if s.done[i] {
			continue
		}
		out, stop := k.row(key, cells)
		if stop {
			s.done[i] = true
			continue
		}
		live = true
		for _, c := range out {
			if !seen[c.i] {
				seen[c.i] = true
				kept = append(kept, c)
			}
		}
	}
	if !live {
		return nil, true
	}
	sortByIndex(kept)
	return kept, false
}

func sortByIndex(cs []cell) {
	// Insertion sort: the branches' outputs are each in order, and rows
	// are small.
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].i < cs[j-1].i; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func (n *skipNode) stage(rev bool) stage { return &skipStage{kid: n.kid.stage(rev)} }

type skipStage struct{ kid stage }

func (s *skipStage) row(key []byte, cells []cell) ([]cell, bool) {
	out, stop := s.kid.row(key, cells)
	if stop || len(out) != len(cells) {
		return nil, stop
	}
	return out, false
}

func (n *whileNode) stage(rev bool) stage { return &whileStage{kid: n.kid.stage(rev)} }

type whileStage struct{ kid stage }

func (s *whileStage) row(key []byte, cells []cell) ([]cell, bool) {
	out, stop := s.kid.row(key, cells)
	if stop || len(out) != len(cells) {
		return nil, true
	}
	return out, false
}

// ---- leaves ----

// stateless is a leaf with no per-scan state: the node is its own stage.
type stateless interface {
	node
	stage
}

// keepIf keeps the cells pred holds for.
func keepIf(cells []cell, pred func(c *kvclient.Cell) bool) []cell {
	var out []cell
	for _, c := range cells {
		if pred(&c.c) {
			out = append(out, c)
		}
	}
	return out
}

type prefixFilter struct{ prefix []byte }

func (f *prefixFilter) stage(bool) stage { return f }
func (f *prefixFilter) row(key []byte, cells []cell) ([]cell, bool) {
	if bytes.HasPrefix(key, f.prefix) {
		return cells, false
	}
	return nil, false
}

type rowFilter struct {
	op  compareOp
	cmp comparator
}

func (f *rowFilter) stage(bool) stage { return f }
func (f *rowFilter) row(key []byte, cells []cell) ([]cell, bool) {
	if f.cmp.match(f.op, key) {
		return cells, false
	}
	return nil, false
}

type inclusiveStopFilter struct{ stop []byte }

func (f *inclusiveStopFilter) stage(rev bool) stage { return &inclusiveStopStage{f: f, rev: rev} }

type inclusiveStopStage struct {
	f   *inclusiveStopFilter
	rev bool
}

func (s *inclusiveStopStage) row(key []byte, cells []cell) ([]cell, bool) {
	c := bytes.Compare(key, s.f.stop)
	if (!s.rev && c > 0) || (s.rev && c < 0) {
		return nil, true
	}
	return cells, false
}

type pageFilter struct{ n int64 }

func (f *pageFilter) stage(bool) stage { return &pageStage{n: f.n} }

type pageStage struct{ n, seen int64 }

func (s *pageStage) row(_ []byte, cells []cell) ([]cell, bool) {
	if s.seen >= s.n {
		return nil, true
	}
	s.seen++
	return cells, false
}

type valueFilter struct {
	op  compareOp
	cmp comparator
}

func (f *valueFilter) stage(bool) stage { return f }
func (f *valueFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	return keepIf(cells, func(c *kvclient.Cell) bool { return f.cmp.match(f.op, c.Value) }), false
}

type qualifierFilter struct {
	op  compareOp
	cmp comparator
}

func (f *qualifierFilter) stage(bool) stage { return f }
func (f *qualifierFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	return keepIf(cells, func(c *kvclient.Cell) bool { return f.cmp.match(f.op, c.Qualifier) }), false
}

type familyFilter struct {
	op  compareOp
	cmp comparator
}

func (f *familyFilter) stage(bool) stage { return f }
func (f *familyFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	return keepIf(cells, func(c *kvclient.Cell) bool { return f.cmp.match(f.op, []byte(c.Family)) }), false
}

type singleColumnValueFilter struct {
	family, qualifier []byte
	op                compareOp
	cmp               comparator
	filterIfMissing   bool
	latestOnly        bool
	exclude           bool
}

func (f *singleColumnValueFilter) stage(bool) stage { return f }

func (f *singleColumnValueFilter) isColumn(c *kvclient.Cell) bool {
	return c.Family == string(f.family) && bytes.Equal(c.Qualifier, f.qualifier)
}

func (f *singleColumnValueFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	found, matched := false, false
	for i := range cells {
		c := &cells[i].c
		if !f.isColumn(c) {
			continue
		}
		if f.latestOnly && found {
			break
		}
		found = true
		if f.cmp.match(f.op, c.Value) {
			matched = true
			break
		}
	}
	if (found && !matched) || (!found && f.filterIfMissing) {
		return nil, false
	}
	if f.exclude {
		return keepIf(cells, func(c *kvclient.Cell) bool { return !f.isColumn(c) }), false
	}
	return cells, false
}

type keyOnlyFilter struct{ lenAsValue bool }

func (f *keyOnlyFilter) stage(bool) stage { return f }
func (f *keyOnlyFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	out := make([]cell, len(cells))
	for i, c := range cells {
		out[i] = c
		if f.lenAsValue {
			out[i].c.Value = binary.BigEndian.AppendUint32(nil, uint32(len(c.c.Value)))
		} else {
			out[i].c.Value = nil
		}
	}
	return out, false
}

type firstKeyOnlyFilter struct{}

func (f *firstKeyOnlyFilter) stage(bool) stage { return f }
func (f *firstKeyOnlyFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	return cells[:1], false
}

type columnPrefixFilter struct{ prefixes [][]byte }

func (f *columnPrefixFilter) stage(bool) stage { return f }
func (f *columnPrefixFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	return keepIf(cells, func(c *kvclient.Cell) bool {
		for _, p := range f.prefixes {
			if bytes.HasPrefix(c.Qualifier, p) {
				return true
			}
		}
		return false
	}), false
}

type columnRangeFilter struct {
	min, max         []byte
	minIncl, maxIncl bool
	hasMin, hasMax   bool
}

func (f *columnRangeFilter) stage(bool) stage { return f }
func (f *columnRangeFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	return keepIf(cells, func(c *kvclient.Cell) bool {
		if f.hasMin {
			if r := bytes.Compare(c.Qualifier, f.min); r < 0 || (r == 0 && !f.minIncl) {
				return false
			}
		}
		if f.hasMax {
			if r := bytes.Compare(c.Qualifier, f.max); r > 0 || (r == 0 && !f.maxIncl) {
				return false
			}
		}
		return true
	}), false
}

type timestampsFilter struct{ ms map[int64]bool }

func (f *timestampsFilter) stage(bool) stage { return f }
func (f *timestampsFilter) row(_ []byte, cells []cell) ([]cell, bool) {
	// Cells carry microseconds; the filter's timestamps are milliseconds.
	return keepIf(cells, func(c *kvclient.Cell) bool { return f.ms[c.Timestamp/1000] }), false
}

// columnWindow keeps the newest version of the columns numbered [from,
// to) in the row (ColumnCountGetFilter, ColumnPaginationFilter).
type columnWindow struct{ from, to int64 }

func (f *columnWindow) stage(bool) stage { return f }
func (f *columnWindow) row(_ []byte, cells []cell) ([]cell, bool) {
	var out []cell
	col := int64(-1)
	for i, c := range cells {
		if i > 0 && c.c.Family == cells[i-1].c.Family && bytes.Equal(c.c.Qualifier, cells[i-1].c.Qualifier) {
			continue // an older version
		}
		col++
		if col >= f.to {
			break
		}
		if col >= f.from {
			out = append(out, c)
		}
	}
	return out, false
}
