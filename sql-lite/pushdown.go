package sqllite

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shaledb/shale/kvclient"
)

// pushdown is the part of a WHERE clause the tablet servers evaluate
// (kvclient.WithFilter), so rows failing it never cross the network.
//
// A conjunct is pushed only when its translation is exactly equivalent
// under SQL's three-valued logic: comparisons of a non-key column with a
// constant that converts to the column's type without loss (cells are
// encoded order-preservingly, so the server's bytewise comparison is the
// SQL comparison; a missing cell is NULL, which the server treats as
// UNKNOWN), IS [NOT] NULL, BETWEEN, IN lists without NULL, LIKE 'prefix%',
// and AND/OR/NOT of those. The client still evaluates the whole WHERE.
type pushdown struct {
	desc    []string
	filters []kvclient.RowFilter
}

func (p *pushdown) readOption() kvclient.ReadOption {
	if len(p.filters) == 1 {
		return kvclient.WithFilter(p.filters[0])
	}
	return kvclient.WithFilter(kvclient.And(p.filters...))
}

// planPushdown pushes the translatable conjuncts of WHERE into the scan of
// a and returns the indexes of the conjuncts that were pushed.
func planPushdown(sc *scope, a *access, conj []ast.ExprNode) map[int]bool {
	pushed := map[int]bool{}
	if !pushdownEnabled {
		return pushed
	}
	for i, e := range conj {
		f, ok := toFilter(sc, a, e)
		if !ok {
			continue
		}
		if a.pushed == nil {
			a.pushed = &pushdown{}
		}
		a.pushed.filters = append(a.pushed.filters, f)
		a.pushed.desc = append(a.pushed.desc, exprText(e))
		pushed[i] = true
	}
	return pushed
}

// pushdownEnabled lets tests compare pushed-down and client-only results.
var pushdownEnabled = true

var filterOps = map[opcode.Op]kvclient.CompareOp{
	opcode.EQ: kvclient.Equal, opcode.NE: kvclient.NotEqual, opcode.LT: kvclient.Less,
	opcode.LE: kvclient.LessOrEqual, opcode.GT: kvclient.Greater, opcode.GE: kvclient.GreaterOrEqual,
}

// cellCol resolves a column expression to a non-key column of a's table.
func cellCol(sc *scope, a *access, n ast.ExprNode) (int, bool) {
	cn, ok := unparen(n).(*ast.ColumnNameExpr)
	if !ok {
		return 0, false
	}
	i, err := sc.resolve(cn.Name)
	if err != nil || sc.cols[i].table != a.alias || sc.cols[i].ci < 0 || a.t.isPK[sc.cols[i].ci] {
		return 0, false
	}
	if a.t.cols[sc.cols[i].ci].Backfill {
		return 0, false // a missing cell may mean the default, which the server cannot know
	}
	return sc.cols[i].ci, true
}

func (a *access) cmpFilter(ci int, op kvclient.CompareOp, v Datum) kvclient.RowFilter {
	return kvclient.Compare(family, a.t.quals[ci], op, encodeValue(nil, v, a.t.cols[ci].Type, false))
}

func toFilter(sc *scope, a *access, e ast.ExprNode) (kvclient.RowFilter, bool) {
	e = unparen(e)
	switch x := e.(type) {
	case *ast.BinaryOperationExpr:
		switch x.Op {
		case opcode.LogicAnd, opcode.LogicOr:
			l, ok1 := toFilter(sc, a, x.L)
			r, ok2 := toFilter(sc, a, x.R)
			if !ok1 || !ok2 {
				return kvclient.RowFilter{}, false
			}
			if x.Op == opcode.LogicAnd {
				return kvclient.And(l, r), true
			}
			return kvclient.Or(l, r), true
		}
		op, ok := filterOps[x.Op]
		if !ok {
			return kvclient.RowFilter{}, false
		}
		colSide, constSide := x.L, x.R
		if _, isCol := cellCol(sc, a, colSide); !isCol {
			colSide, constSide = x.R, x.L
			op = map[kvclient.CompareOp]kvclient.CompareOp{kvclient.Equal: kvclient.Equal, kvclient.NotEqual: kvclient.NotEqual,
				kvclient.Less: kvclient.Greater, kvclient.LessOrEqual: kvclient.GreaterOrEqual,
				kvclient.Greater: kvclient.Less, kvclient.GreaterOrEqual: kvclient.LessOrEqual}[op]
		}
		ci, ok := cellCol(sc, a, colSide)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		v, ok := constValue(constSide)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		c, ok := exactConvert(v, a.t.cols[ci].Type)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		return a.cmpFilter(ci, op, c), true
	case *ast.UnaryOperationExpr:
		if x.Op != opcode.Not && x.Op != opcode.Not2 {
			return kvclient.RowFilter{}, false
		}
		f, ok := toFilter(sc, a, x.V)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		return kvclient.Not(f), true
	case *ast.IsNullExpr:
		ci, ok := cellCol(sc, a, x.Expr)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		op := kvclient.NotExists
		if x.Not {
			op = kvclient.Exists
		}
		return kvclient.Compare(family, a.t.quals[ci], op, nil), true
	case *ast.BetweenExpr:
		ci, ok := cellCol(sc, a, x.Expr)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		lo, ok1 := constValue(x.Left)
		hi, ok2 := constValue(x.Right)
		if !ok1 || !ok2 {
			return kvclient.RowFilter{}, false
		}
		l, ok1 := exactConvert(lo, a.t.cols[ci].Type)
		h, ok2 := exactConvert(hi, a.t.cols[ci].Type)
		if !ok1 || !ok2 {
			return kvclient.RowFilter{}, false
		}
		f := kvclient.And(a.cmpFilter(ci, kvclient.GreaterOrEqual, l), a.cmpFilter(ci, kvclient.LessOrEqual, h))
		if x.Not {
			f = kvclient.Not(f)
		}
		return f, true
	case *ast.PatternInExpr:
		if x.Sel != nil {
			return kvclient.RowFilter{}, false
		}
		ci, ok := cellCol(sc, a, x.Expr)
		if !ok || len(x.List) == 0 || len(x.List) > 1000 {
			return kvclient.RowFilter{}, false
		}
		var fs []kvclient.RowFilter
		for _, le := range x.List {
			v, ok := constValue(le)
			if !ok || v.IsNull() {
				return kvclient.RowFilter{}, false
			}
			c, ok := exactConvert(v, a.t.cols[ci].Type)
			if !ok {
				// A constant of another type could still compare equal
				// (e.g. 1.5 never equals an INT, but keep it simple).
				return kvclient.RowFilter{}, false
			}
			fs = append(fs, a.cmpFilter(ci, kvclient.Equal, c))
		}
		f := kvclient.Or(fs...)
		if x.Not {
			f = kvclient.Not(f)
		}
		return f, true
	case *ast.PatternLikeOrIlikeExpr:
		if !x.IsLike {
			return kvclient.RowFilter{}, false
		}
		ci, ok := cellCol(sc, a, x.Expr)
		if !ok || a.t.cols[ci].Type.Kind != KindString {
			return kvclient.RowFilter{}, false
		}
		pv, ok := unparen(x.Pattern).(*driver.ValueExpr)
		if !ok {
			return kvclient.RowFilter{}, false
		}
		p, err := literal(pv)
		if err != nil || p.Kind != KindString {
			return kvclient.RowFilter{}, false
		}
		pat := p.Value.(string)
		if !strings.HasSuffix(pat, "%") {
			return kvclient.RowFilter{}, false
		}
		prefix := pat[:len(pat)-1]
		if prefix == "" || strings.ContainsAny(prefix, "%_\\") || (x.Escape != 0 && x.Escape != '\\' && strings.IndexByte(prefix, x.Escape) >= 0) {
			return kvclient.RowFilter{}, false
		}
		lo := kvclient.Compare(family, a.t.quals[ci], kvclient.GreaterOrEqual, []byte(prefix))
		var f kvclient.RowFilter
		if end := prefixEnd([]byte(prefix)); end != nil {
			f = kvclient.And(lo, kvclient.Compare(family, a.t.quals[ci], kvclient.Less, end))
		} else {
			f = lo
		}
		if x.Not {
			f = kvclient.Not(f)
		}
		return f, true
	}
	return kvclient.RowFilter{}, false
}
