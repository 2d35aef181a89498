package filterlang

import "math"

// builders make each filter from its arguments, as HBase's
// createFilterFromArguments.
var builders = map[string]func(a *args_) (node, error){
	"PrefixFilter": func(a *args_) (node, error) {
		if err := a.count(1, 1); err != nil {
			return nil, err
		}
		p, err := a.str("prefix")
		return &prefixFilter{prefix: p}, err
	},
	"ColumnPrefixFilter": func(a *args_) (node, error) {
		if err := a.count(1, 1); err != nil {
			return nil, err
		}
		p, err := a.str("prefix")
		return &columnPrefixFilter{prefixes: [][]byte{p}}, err
	},
	"MultipleColumnPrefixFilter": func(a *args_) (node, error) {
		if err := a.count(1, manyArgs); err != nil {
			return nil, err
		}
		f := &columnPrefixFilter{}
		for range a.list {
			p, err := a.str("prefix")
			if err != nil {
				return nil, err
			}
			f.prefixes = append(f.prefixes, p)
		}
		return f, nil
	},
	"InclusiveStopFilter": func(a *args_) (node, error) {
		if err := a.count(1, 1); err != nil {
			return nil, err
		}
		s, err := a.str("stop row")
		return &inclusiveStopFilter{stop: s}, err
	},
	"PageFilter": func(a *args_) (node, error) {
		if err := a.count(1, 1); err != nil {
			return nil, err
		}
		n, err := a.nonNegInt("page size")
		return &pageFilter{n: n}, err
	},
	"RowFilter":   compareFilter(func(op compareOp, c comparator) node { return &rowFilter{op: op, cmp: c} }),
	"ValueFilter": compareFilter(func(op compareOp, c comparator) node { return &valueFilter{op: op, cmp: c} }),
	"QualifierFilter": compareFilter(func(op compareOp, c comparator) node {
		return &qualifierFilter{op: op, cmp: c}
	}),
	"FamilyFilter":                   compareFilter(func(op compareOp, c comparator) node { return &familyFilter{op: op, cmp: c} }),
	"SingleColumnValueFilter":        singleColumnValue(false),
	"SingleColumnValueExcludeFilter": singleColumnValue(true),
	"KeyOnlyFilter": func(a *args_) (node, error) {
		if err := a.count(0, 1); err != nil {
			return nil, err
		}
		f := &keyOnlyFilter{}
		if len(a.list) == 1 {
			var err error
			if f.lenAsValue, err = a.bool("lenAsVal"); err != nil {
				return nil, err
			}
		}
		return f, nil
	},
	"FirstKeyOnlyFilter": func(a *args_) (node, error) {
		return &firstKeyOnlyFilter{}, a.count(0, 0)
	},
	"ColumnRangeFilter": func(a *args_) (node, error) {
		if err := a.count(4, 4); err != nil {
			return nil, err
		}
		f := &columnRangeFilter{}
		var err error
		if f.min, err = a.str("minColumn"); err != nil {
			return nil, err
		}
		if f.minIncl, err = a.bool("minColumnInclusive"); err != nil {
			return nil, err
		}
		if f.max, err = a.str("maxColumn"); err != nil {
			return nil, err
		}
		if f.maxIncl, err = a.bool("maxColumnInclusive"); err != nil {
			return nil, err
		}
		// An empty bound is no bound (HBase: null).
		f.hasMin, f.hasMax = len(f.min) > 0, len(f.max) > 0
		return f, nil
	},
	"TimestampsFilter": func(a *args_) (node, error) {
		f := &timestampsFilter{ms: map[int64]bool{}}
		for range a.list {
			ts, err := a.nonNegInt("timestamp")
			if err != nil {
				return nil, err
			}
			f.ms[ts] = true
		}
		return f, nil
	},
	"ColumnCountGetFilter": func(a *args_) (node, error) {
		if err := a.count(1, 1); err != nil {
			return nil, err
		}
		n, err := a.nonNegInt("limit")
		return &columnWindow{from: 0, to: n}, err
	},
	"ColumnPaginationFilter": func(a *args_) (node, error) {
		if err := a.count(2, 2); err != nil {
			return nil, err
		}
		limit, err := a.nonNegInt("limit")
		if err != nil {
			return nil, err
		}
		offset, err := a.nonNegInt("offset")
		if err != nil {
			return nil, err
		}
		to := int64(math.MaxInt64)
		if limit <= math.MaxInt64-offset {
			to = offset + limit
		}
		return &columnWindow{from: offset, to: to}, nil
	},
}

// compareFilter builds a filter taking (op, 'comparator').
func compareFilter(mk func(compareOp, comparator) node) func(a *args_) (node, error) {
	return func(a *args_) (node, error) {
		if err := a.count(2, 2); err != nil {
			return nil, err
		}
		op, err := a.op()
		if err != nil {
			return nil, err
		}
		c, err := a.comparator(op)
		if err != nil {
			return nil, err
		}
		return mk(op, c), nil
	}
}

// singleColumnValue builds SingleColumnValue(Exclude)Filter('f', 'q', op,
// 'cmp'[, filterIfMissing, latestVersionOnly]).
func singleColumnValue(exclude bool) func(a *args_) (node, error) {
	return func(a *args_) (node, error) {
		if len(a.list) != 4 && len(a.list) != 6 {
			return nil, errAt(a.name.pos, "%s takes 4 or 6 arguments, got %d", a.name.text, len(a.list))
		}
		f := &singleColumnValueFilter{latestOnly: true, exclude: exclude}
		var err error
		if f.family, err = a.str("family"); err != nil {
			return nil, err
		}
		if f.qualifier, err = a.str("qualifier"); err != nil {
			return nil, err
		}
		if f.op, err = a.op(); err != nil {
			return nil, err
		}
		if f.cmp, err = a.comparator(f.op); err != nil {
			return nil, err
		}
		if len(a.list) == 6 {
			if f.filterIfMissing, err = a.bool("filterIfColumnMissing"); err != nil {
				return nil, err
			}
			if f.latestOnly, err = a.bool("setLatestVersionOnly"); err != nil {
				return nil, err
			}
		}
		return f, nil
	}
}
