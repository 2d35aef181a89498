package filterlang

import (
	"bytes"

	"github.com/shaledb/shale/kvclient"
)

// Read describes the read a filter runs on, which bounds what may be
// pushed down.
type Read struct {
	// Reverse: a reversed scan.
	Reverse bool
	// Families and Columns are the read's column selection (both empty:
	// every column).
	Families []string
	Columns  []kvclient.Column
	// TimeBounded: the read has a timestamp or time range (the servers'
	// row filter sees the newest version regardless; the gateway's, the
	// newest within the range).
	TimeBounded bool
}

// PushDown is what the tablet servers can do of a filter.
type PushDown struct {
	// Start and End narrow the scan's rows to [Start, End) (nil: no
	// bound), in key order whatever the scan's direction.
	Start, End []byte
	// Filter, if not nil, is a row filter the servers can apply.
	Filter *kvclient.RowFilter
	// Family, if not empty, is the only family the filter can keep (the
	// read had no column selection).
	Family string
}

// PushDown returns what of f the servers can evaluate for read r without
// changing the result (the gateway still evaluates all of f). It looks at
// the top-level AND chain: row-range filters before any PageFilter or
// WHILE, and SingleColumnValueFilters and FamilyFilter(=) seen before any
// filter that could change the cells they see.
func (f *Filter) PushDown(r Read) PushDown {
	chain := []node{f.root}
	if a, ok := f.root.(*andNode); ok {
		chain = a.kids
	}
	var p PushDown
	var conds []kvclient.RowFilter
	rangeOK, cellsOK := true, true
	excluded := map[string]bool{} // columns an Exclude filter removed
	for _, n := range chain {
		switch n := n.(type) {
		case *prefixFilter:
			if rangeOK {
				p.narrow(n.prefix, prefixEnd(n.prefix))
			}
		case *inclusiveStopFilter:
			if rangeOK {
				if r.Reverse {
					p.narrow(n.stop, nil)
				} else {
					p.narrow(nil, append(bytes.Clone(n.stop), 0))
				}
			}
		case *rowFilter:
			if rangeOK && n.cmp.kind == cmpBinary {
				p.narrow(rowRange(n.op, n.cmp.value))
			}
		case *singleColumnValueFilter:
			col := string(n.family) + "\x00" + string(n.qualifier)
			if cellsOK && rangeOK && !excluded[col] && n.pushable(r) {
				conds = append(conds, n.rowFilter())
			}
			if n.exclude {
				excluded[col] = true
			}
		case *familyFilter:
			if cellsOK && rangeOK && p.Family == "" && n.op == opEqual && n.cmp.kind == cmpBinary &&
				len(r.Families) == 0 && len(r.Columns) == 0 && allOnFamily(chain, n, string(n.cmp.value)) {
				p.Family = string(n.cmp.value)
			}
			cellsOK = false
		default:
			// Any other filter may change the cells later filters see;
			// PageFilter and WHILE count the rows they see.
			cellsOK = false
			if counts(n) {
				rangeOK = false
			}
		}
	}
	switch len(conds) {
	case 0:
	case 1:
		p.Filter = &conds[0]
	default:
		and := kvclient.And(conds...)
		p.Filter = &and
	}
	return p
}

// allOnFamily reports whether every SingleColumnValueFilter before ff in
// the chain reads family fam (they would see only fam's cells).
func allOnFamily(chain []node, ff *familyFilter, fam string) bool {
	for _, n := range chain {
		if n == node(ff) {
			return true
		}
		if s, ok := n.(*singleColumnValueFilter); ok && string(s.family) != fam {
			return false
		}
	}
	return true
}

// counts reports whether n has a filter whose result depends on the rows
// it saw before (PageFilter, WHILE).
func counts(n node) bool {
	switch n := n.(type) {
	case *pageFilter, *whileNode:
		return true
	case *andNode:
		for _, k := range n.kids {
			if counts(k) {
				return true
			}
		}
	case *orNode:
		for _, k := range n.kids {
			if counts(k) {
				return true
			}
		}
	case *skipNode:
		return counts(n.kid)
	}
	return false
}

// pushable reports whether the servers' row filter decides as f does on r:
// a binary comparison of the newest version, of a column the read returns.
func (f *singleColumnValueFilter) pushable(r Read) bool {
	if f.cmp.kind != cmpBinary || !f.latestOnly || r.TimeBounded {
		return false
	}
	if len(r.Families) == 0 && len(r.Columns) == 0 {
		return true
	}
	for _, fam := range r.Families {
		if fam == string(f.family) {
			return true
		}
	}
	for _, c := range r.Columns {
		if c.Family == string(f.family) && bytes.Equal(c.Qualifier, f.qualifier) {
			return true
		}
	}
	return false
}

var kvOps = map[compareOp]kvclient.CompareOp{
	opLess: kvclient.Less, opLessOrEqual: kvclient.LessOrEqual, opEqual: kvclient.Equal,
	opNotEqual: kvclient.NotEqual, opGreaterOrEqual: kvclient.GreaterOrEqual, opGreater: kvclient.Greater,
}

// rowFilter is f as the servers' filter: the comparison holds, or (unless
// filterIfMissing) the column is missing.
func (f *singleColumnValueFilter) rowFilter() kvclient.RowFilter {
	cmp := kvclient.Compare(string(f.family), f.qualifier, kvOps[f.op], f.cmp.value)
	if f.filterIfMissing {
		return cmp
	}
	return kvclient.Or(cmp, kvclient.Compare(string(f.family), f.qualifier, kvclient.NotExists, nil))
}

// narrow intersects p's range with [start, end) (nil: unbounded).
func (p *PushDown) narrow(start, end []byte) {
	if start != nil && (p.Start == nil || bytes.Compare(start, p.Start) > 0) {
		p.Start = start
	}
	if end != nil && (p.End == nil || bytes.Compare(end, p.End) < 0) {
		p.End = end
	}
}

// rowRange is the key range where "row OP v" holds (nil, nil: no bound).
func rowRange(op compareOp, v []byte) (start, end []byte) {
	next := append(bytes.Clone(v), 0)
	switch op {
	case opEqual:
		return v, next
	case opLess:
		return nil, v
	case opLessOrEqual:
		return nil, next
	case opGreater:
		return next, nil
	case opGreaterOrEqual:
		return v, nil
	}
	return nil, nil
}

// prefixEnd is the first key after every key with prefix p (nil: none).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
