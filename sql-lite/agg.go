package sqllite

import (
	"math/big"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// aggPlan describes GROUP BY and the aggregates of a query. The
// aggregation row is the group values followed by the aggregate results.
type aggPlan struct {
	groupText []string
	groupCol  []int // source scope index when the item is a plain column, else -1
	groups    []expr
	aggs      []aggSpec
}

type aggSpec struct {
	fn       string // count, sum, min, max, avg
	distinct bool
	arg      expr // nil: COUNT(*)
	text     string
}

func newAggPlan(sc *scope, items []ast.ExprNode) (*aggPlan, error) {
	p := &aggPlan{}
	c := &compiler{sc: sc}
	for _, it := range items {
		e, err := c.compile(it)
		if err != nil {
			return nil, err
		}
		col := -1
		if cr, ok := e.(colRef); ok {
			col = cr.idx
		}
		p.groups = append(p.groups, e)
		p.groupCol = append(p.groupCol, col)
		p.groupText = append(p.groupText, exprText(it))
	}
	return p, nil
}

func (p *aggPlan) groupSlot(sc *scope, n ast.ExprNode) int {
	if cn, ok := n.(*ast.ColumnNameExpr); ok {
		i, err := sc.resolve(cn.Name)
		if err != nil {
			return -1
		}
		for g, col := range p.groupCol {
			if col == i {
				return g
			}
		}
		return -1
	}
	if _, ok := n.(*ast.AggregateFuncExpr); ok {
		return -1
	}
	t := exprText(n)
	for g, gt := range p.groupText {
		if gt == t {
			return g
		}
	}
	return -1
}

func (p *aggPlan) add(sc *scope, a *ast.AggregateFuncExpr) (expr, error) {
	fn := strings.ToLower(a.F)
	switch fn {
	case "count", "sum", "min", "max", "avg":
	default:
		return nil, notSupported("aggregate function %s", strings.ToUpper(a.F))
	}
	text := exprText(a)
	for i, s := range p.aggs {
		if s.text == text {
			return colRef{len(p.groups) + i}, nil
		}
	}
	spec := aggSpec{fn: fn, distinct: a.Distinct, text: text}
	if len(a.Args) != 1 {
		return nil, typeErr("%s takes one argument", strings.ToUpper(fn))
	}
	star := false
	if fn == "count" {
		if v, ok := a.Args[0].(interface{ GetValue() any }); ok && !a.Distinct {
			// COUNT(*) parses as COUNT(1).
			star = v.GetValue() != nil
		}
	}
	if !star {
		e, err := (&compiler{sc: sc}).compile(a.Args[0])
		if err != nil {
			return nil, err
		}
		spec.arg = e
	}
	p.aggs = append(p.aggs, spec)
	return colRef{len(p.groups) + len(p.aggs) - 1}, nil
}

type accum struct {
	n      int64
	sum    Datum
	best   Datum
	seen   map[string]bool
	hasVal bool
}

type group struct {
	vals []Datum
	acc  []accum
}

// aggregator groups rows and accumulates the aggregates.
type aggregator struct {
	p      *aggPlan
	groups map[string]*group
	order  []*group
	limit  int
}

func newAggregator(p *aggPlan) *aggregator {
	return &aggregator{p: p, groups: map[string]*group{}}
}

const maxGroups = 1_000_000

func (a *aggregator) push(row []Datum) error {
	vals := make([]Datum, len(a.p.groups))
	var kb strings.Builder
	for i, g := range a.p.groups {
		v, err := g.eval(row)
		if err != nil {
			return err
		}
		vals[i] = v
		kb.WriteString(keyOf(v))
		kb.WriteByte(0)
	}
	k := kb.String()
	g := a.groups[k]
	if g == nil {
		if len(a.order) >= maxGroups {
			return errf(CodeResource, "GROUP BY produced more than %d groups", maxGroups)
		}
		g = &group{vals: vals, acc: make([]accum, len(a.p.aggs))}
		a.groups[k] = g
		a.order = append(a.order, g)
	}
	for i, s := range a.p.aggs {
		acc := &g.acc[i]
		if s.arg == nil {
			acc.n++
			continue
		}
		v, err := s.arg.eval(row)
		if err != nil {
			return err
		}
		if v.IsNull() {
			continue
		}
		if s.distinct {
			if acc.seen == nil {
				acc.seen = map[string]bool{}
			}
			k := keyOf(v)
			if acc.seen[k] {
				continue
			}
			acc.seen[k] = true
		}
		acc.n++
		switch s.fn {
		case "sum", "avg":
			if !acc.hasVal {
				if acc.sum, err = numArg(v); err != nil {
					return err
				}
				acc.hasVal = true
			} else if sum, err := arith(opcode.Plus, acc.sum, v); err == nil {
				acc.sum = sum
			} else if x, ok1 := toRat(acc.sum); ok1 && acc.sum.Kind == KindInt {
				// BIGINT overflow: continue exactly as DECIMAL (as MySQL).
				y, ok2 := toRat(v)
				if !ok2 {
					return err
				}
				acc.sum = decDatum(new(big.Rat).Add(x, y), 0)
			} else {
				return err
			}
		case "min", "max":
			if !acc.hasVal {
				acc.best, acc.hasVal = v, true
				continue
			}
			c, err := compare(v, acc.best)
			if err != nil {
				return err
			}
			if (s.fn == "min" && c < 0) || (s.fn == "max" && c > 0) {
				acc.best = v
			}
		}
	}
	return nil
}

// rows returns the aggregation rows; with no GROUP BY and no input, one
// row (COUNT 0, other aggregates NULL).
func (a *aggregator) rows() [][]Datum {
	if len(a.order) == 0 && len(a.p.groups) == 0 {
		a.order = append(a.order, &group{acc: make([]accum, len(a.p.aggs))})
	}
	out := make([][]Datum, 0, len(a.order))
	for _, g := range a.order {
		row := append([]Datum(nil), g.vals...)
		for i, s := range a.p.aggs {
			acc := g.acc[i]
			var v Datum
			switch s.fn {
			case "count":
				v = intDatum(acc.n)
			case "sum":
				if acc.hasVal {
					v = acc.sum
				}
			case "avg":
				if acc.hasVal {
					f, _ := toFloat(acc.sum)
					v = floatDatum(f / float64(acc.n))
				}
			case "min", "max":
				v = acc.best
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	return out
}

func hasAggregate(nodes ...ast.Node) bool {
	v := &aggFinder{}
	for _, n := range nodes {
		if n != nil {
			n.Accept(v)
		}
	}
	return v.found
}

type aggFinder struct{ found bool }

func (f *aggFinder) Enter(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*ast.AggregateFuncExpr); ok {
		f.found = true
		return n, true
	}
	return n, false
}

func (f *aggFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
