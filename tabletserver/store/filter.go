package store

import (
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// Bounds on a pushed-down filter, so a request cannot make the server
// recurse or allocate without limit.
const (
	maxFilterDepth      = 16
	maxFilterConditions = 256
)

// truth is a value of SQL's three-valued logic.
type truth uint8

const (
	tFalse truth = iota
	tTrue
	tUnknown
)

// compiledFilter is a kvpb.RowFilter prepared for evaluation: its
// conditions indexed by the column they test, and per row the outcome of
// each condition on the newest visible version of its column.
type compiledFilter struct {
	root    *kvpb.RowFilter
	leaf    map[*kvpb.Condition]int
	byCol   map[string]map[string][]int // family -> qualifier -> leaf indexes
	conds   []*kvpb.Condition
	outcome []truth // per leaf for the current row; tUnknown until its cell is seen
	seen    []bool
}

func compileFilter(schema *metapb.TableSchema, root *kvpb.RowFilter) (*compiledFilter, error) {
	cf := &compiledFilter{root: root, leaf: map[*kvpb.Condition]int{}, byCol: map[string]map[string][]int{}}
	families := map[string]bool{}
	for _, f := range schema.Families {
		families[f.Name] = true
	}
	var walk func(f *kvpb.RowFilter, depth int) error
	walk = func(f *kvpb.RowFilter, depth int) error {
		if depth > maxFilterDepth {
			return errs.InvalidArgument("row filter is nested deeper than %d levels", maxFilterDepth)
		}
		switch x := f.GetFilter().(type) {
		case *kvpb.RowFilter_And:
			for _, k := range x.And.GetFilters() {
				if err := walk(k, depth+1); err != nil {
					return err
				}
			}
		case *kvpb.RowFilter_Or:
			for _, k := range x.Or.GetFilters() {
				if err := walk(k, depth+1); err != nil {
					return err
				}
			}
		case *kvpb.RowFilter_Not:
			if x.Not == nil {
				return errs.InvalidArgument("row filter NOT has no operand")
			}
			return walk(x.Not, depth+1)
		case *kvpb.RowFilter_Column:
			c := x.Column
			if c == nil {
				return errs.InvalidArgument("row filter condition is empty")
			}
			if !families[c.Family] {
				return errs.InvalidArgument("row filter names column family %q, which table %d does not have", c.Family, schema.TableId)
			}
			if _, ok := kvpb.Condition_Op_name[int32(c.Op)]; !ok {
				return errs.InvalidArgument("row filter has unknown comparison %d", c.Op)
			}
			if _, dup := cf.leaf[c]; dup {
				return nil // one message used twice (possible in-process): one leaf
			}
			if len(cf.conds) >= maxFilterConditions {
				return errs.InvalidArgument("row filter has more than %d conditions", maxFilterConditions)
			}
			i := len(cf.conds)
			cf.leaf[c] = i
			cf.conds = append(cf.conds, c)
			if cf.byCol[c.Family] == nil {
				cf.byCol[c.Family] = map[string][]int{}
			}
			cf.byCol[c.Family][string(c.Qualifier)] = append(cf.byCol[c.Family][string(c.Qualifier)], i)
		default:
			return errs.InvalidArgument("row filter node is empty")
		}
		return nil
	}
	if err := walk(root, 1); err != nil {
		return nil, err
	}
	cf.outcome = make([]truth, len(cf.conds))
	cf.seen = make([]bool, len(cf.conds))
	return cf, nil
}

// startRow forgets the previous row's outcomes.
func (cf *compiledFilter) startRow() { clear(cf.seen) }

// observe records the newest visible version of a column.
func (cf *compiledFilter) observe(family string, qualifier, value []byte) {
	for _, i := range cf.byCol[family][string(qualifier)] {
		if cf.seen[i] {
			continue
		}
		cf.seen[i] = true
		if conditionHolds(cf.conds[i], value, true) {
			cf.outcome[i] = tTrue
		} else {
			cf.outcome[i] = tFalse
		}
	}
}

// matches evaluates the filter on the current row.
func (cf *compiledFilter) matches() bool { return cf.eval(cf.root) == tTrue }

func (cf *compiledFilter) eval(f *kvpb.RowFilter) truth {
	switch x := f.GetFilter().(type) {
	case *kvpb.RowFilter_And:
		res := tTrue
		for _, k := range x.And.GetFilters() {
			switch cf.eval(k) {
			case tFalse:
				return tFalse
			case tUnknown:
				res = tUnknown
			}
		}
		return res
	case *kvpb.RowFilter_Or:
		res := tFalse
		for _, k := range x.Or.GetFilters() {
			switch cf.eval(k) {
			case tTrue:
				return tTrue
			case tUnknown:
				res = tUnknown
			}
		}
		return res
	case *kvpb.RowFilter_Not:
		switch cf.eval(x.Not) {
		case tTrue:
			return tFalse
		case tFalse:
			return tTrue
		}
		return tUnknown
	case *kvpb.RowFilter_Column:
		i := cf.leaf[x.Column]
		if cf.seen[i] {
			return cf.outcome[i]
		}
		switch x.Column.Op {
		case kvpb.Condition_EXISTS:
			return tFalse
		case kvpb.Condition_NOT_EXISTS:
			return tTrue
		}
		return tUnknown
	}
	return tUnknown
}
