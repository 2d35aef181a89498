package sqllite

import (
	"math"
	"math/big"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// expr is a compiled expression over one input row.
type expr interface {
	eval(row []Datum) (Datum, error)
}

type constExpr struct{ v Datum }

func (e constExpr) eval([]Datum) (Datum, error) { return e.v, nil }

type colRef struct{ idx int }

func (e colRef) eval(row []Datum) (Datum, error) { return row[e.idx], nil }

type funcExpr func(row []Datum) (Datum, error)

func (f funcExpr) eval(row []Datum) (Datum, error) { return f(row) }

// scopeCol is one column visible to expressions.
type scopeCol struct {
	table string // alias or table name, lower-case
	name  string // lower-case
	disp  string // display name
	tbl   *table
	ci    int // column index in tbl (-1: computed)
}

type scope struct{ cols []scopeCol }

// colType is the declared type of scope column i (the zero Type when it
// is computed).
func (s *scope) colType(i int) Type {
	if c := s.cols[i]; c.tbl != nil && c.ci >= 0 {
		return c.tbl.cols[c.ci].Type
	}
	return Type{}
}

func (s *scope) resolve(n *ast.ColumnName) (int, error) {
	tn, cn := n.Table.L, n.Name.L
	found := -1
	for i, c := range s.cols {
		if c.name == cn && (tn == "" || c.table == tn) {
			if found >= 0 {
				return 0, errf(CodeUnknownColumn, "column %s is ambiguous; qualify it with a table name", n.Name.O)
			}
			found = i
		}
	}
	if found < 0 {
		name := n.Name.O
		if tn != "" {
			name = n.Table.O + "." + name
		}
		return 0, errf(CodeUnknownColumn, "unknown column %s", name)
	}
	return found, nil
}

// exprText renders an expression as SQL (for column headers and matching
// GROUP BY items).
func exprText(n ast.Node) string {
	var sb strings.Builder
	if err := n.Restore(format.NewRestoreCtx(format.RestoreStringSingleQuotes|format.RestoreKeyWordUppercase|format.RestoreNameLowercase|format.RestoreStringWithoutCharset|format.RestoreSpacesAroundBinaryOperation, &sb)); err != nil {
		return "?"
	}
	return sb.String()
}

// compiler compiles AST expressions against a scope. In aggregate mode
// (agg != nil) the output row is the aggregation row (group values, then
// aggregate results) and bare columns must be GROUP BY items.
type compiler struct {
	sc  *scope
	agg *aggPlan
	// values resolves VALUES(col) in ON DUPLICATE KEY UPDATE.
	values func(name string) (expr, error)
	// aliases are select-list aliases usable in HAVING (MySQL).
	aliases map[string]ast.ExprNode
}

func (c *compiler) compile(n ast.ExprNode) (expr, error) {
	if cn, ok := n.(*ast.ColumnNameExpr); ok && c.aliases != nil && cn.Name.Table.L == "" {
		if a, ok := c.aliases[cn.Name.Name.L]; ok {
			if _, err := c.sc.resolve(cn.Name); err != nil {
				inner := *c
				inner.aliases = nil // no recursion through aliases
				return inner.compile(a)
			}
		}
	}
	if c.agg != nil {
		if i := c.agg.groupSlot(c.sc, n); i >= 0 {
			return colRef{i}, nil
		}
		if a, ok := n.(*ast.AggregateFuncExpr); ok {
			return c.agg.add(c.sc, a)
		}
		if cn, ok := n.(*ast.ColumnNameExpr); ok {
			if _, err := c.sc.resolve(cn.Name); err != nil {
				return nil, err
			}
			return nil, errf(CodeNotSupported, "column %s must appear in GROUP BY or be used in an aggregate function", cn.Name.Name.O)
		}
	}
	switch x := n.(type) {
	case *driver.ValueExpr:
		v, err := literal(x)
		return constExpr{v}, err
	case *driver.ParamMarkerExpr:
		// Stmt replaces the markers of prepared statements; these come
		// from Session.Exec text.
		return nil, notSupported("parameter marker ? outside a prepared statement (use Session.Prepare and Stmt.Exec)")
	case *ast.ColumnNameExpr:
		i, err := c.sc.resolve(x.Name)
		if err != nil {
			return nil, err
		}
		return colRef{i}, nil
	case *ast.ParenthesesExpr:
		return c.compile(x.Expr)
	case *ast.UnaryOperationExpr:
		return c.unary(x)
	case *ast.BinaryOperationExpr:
		return c.binary(x)
	case *ast.IsNullExpr:
		e, err := c.compile(x.Expr)
		if err != nil {
			return nil, err
		}
		not := x.Not
		return funcExpr(func(row []Datum) (Datum, error) {
			v, err := e.eval(row)
			if err != nil {
				return nullDatum, err
			}
			return boolDatum(v.IsNull() != not), nil
		}), nil
	case *ast.IsTruthExpr:
		e, err := c.compile(x.Expr)
		if err != nil {
			return nil, err
		}
		want := b2t(x.True != 0)
		not := x.Not
		return funcExpr(func(row []Datum) (Datum, error) {
			v, err := e.eval(row)
			if err != nil {
				return nullDatum, err
			}
			t, err := truthOf(v)
			if err != nil {
				return nullDatum, err
			}
			return boolDatum((t == want) != not), nil
		}), nil
	case *ast.BetweenExpr:
		return c.between(x)
	case *ast.PatternInExpr:
		return c.in(x)
	case *ast.PatternLikeOrIlikeExpr:
		return c.like(x)
	case *ast.CaseExpr:
		return c.caseExpr(x)
	case *ast.FuncCallExpr:
		return c.call(x)
	case *ast.FuncCastExpr:
		return c.cast(x)
	case *ast.AggregateFuncExpr:
		return nil, errf(CodeNotSupported, "aggregate function %s is not allowed here", strings.ToUpper(x.F))
	case *ast.ValuesExpr:
		if c.values == nil {
			return nil, notSupported("VALUES() outside ON DUPLICATE KEY UPDATE")
		}
		return c.values(x.Column.Name.Name.L)
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr, *ast.CompareSubqueryExpr:
		return nil, notSupported("subqueries")
	case *ast.RowExpr:
		return nil, notSupported("row constructors")
	case *ast.DefaultExpr:
		return nil, notSupported("DEFAULT in an expression")
	case *ast.VariableExpr:
		return nil, notSupported("variables")
	}
	return nil, notSupported("expression %s", exprText(n))
}

func literal(x *driver.ValueExpr) (Datum, error) {
	switch x.Kind() {
	case driver.KindNull:
		return nullDatum, nil
	case driver.KindInt64:
		return intDatum(x.GetInt64()), nil
	case driver.KindUint64:
		u := x.GetUint64()
		if u <= math.MaxInt64 {
			return intDatum(int64(u)), nil
		}
		return decDatum(new(big.Rat).SetInt(new(big.Int).SetUint64(u)), 0), nil
	case driver.KindFloat64:
		return floatDatum(x.GetFloat64()), nil
	case driver.KindFloat32:
		return floatDatum(float64(x.GetFloat32())), nil
	case driver.KindString:
		return strDatum(x.GetString()), nil
	case driver.KindBytes:
		return bytesDatum(x.GetBytes()), nil
	case driver.KindBinaryLiteral:
		return bytesDatum([]byte(x.GetBinaryLiteral())), nil
	case driver.KindMysqlDecimal:
		s := x.GetMysqlDecimal().String()
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nullDatum, typeErr("bad decimal literal %s", s)
		}
		scale := 0
		if i := strings.IndexByte(s, '.'); i >= 0 {
			scale = len(s) - i - 1
		}
		return decDatum(r, scale), nil
	}
	return nullDatum, notSupported("literal %s", exprText(x))
}

func (c *compiler) unary(x *ast.UnaryOperationExpr) (expr, error) {
	e, err := c.compile(x.V)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case opcode.Not, opcode.Not2:
		return funcExpr(func(row []Datum) (Datum, error) {
			v, err := e.eval(row)
			if err != nil {
				return nullDatum, err
			}
			t, err := truthOf(v)
			if err != nil || t == tUnknown {
				return nullDatum, err
			}
			return boolDatum(t == tFalse), nil
		}), nil
	case opcode.Minus:
		return funcExpr(func(row []Datum) (Datum, error) {
			v, err := e.eval(row)
			if err != nil || v.IsNull() {
				return v, err
			}
			return arith(opcode.Minus, intDatum(0), v)
		}), nil
	case opcode.Plus:
		return e, nil
	}
	return nil, notSupported("operator %s", x.Op)
}

func (c *compiler) binary(x *ast.BinaryOperationExpr) (expr, error) {
	l, err := c.compile(x.L)
	if err != nil {
		return nil, err
	}
	r, err := c.compile(x.R)
	if err != nil {
		return nil, err
	}
	op := x.Op
	switch op {
	case opcode.LogicAnd, opcode.LogicOr, opcode.LogicXor:
		return funcExpr(func(row []Datum) (Datum, error) {
			lv, err := l.eval(row)
			if err != nil {
				return nullDatum, err
			}
			lt, err := truthOf(lv)
			if err != nil {
				return nullDatum, err
			}
			if op == opcode.LogicAnd && lt == tFalse {
				return boolDatum(false), nil
			}
			if op == opcode.LogicOr && lt == tTrue {
				return boolDatum(true), nil
			}
			rv, err := r.eval(row)
			if err != nil {
				return nullDatum, err
			}
			rt, err := truthOf(rv)
			if err != nil {
				return nullDatum, err
			}
			switch op {
			case opcode.LogicAnd:
				if rt == tFalse {
					return boolDatum(false), nil
				}
				if lt == tUnknown || rt == tUnknown {
					return nullDatum, nil
				}
				return boolDatum(true), nil
			case opcode.LogicOr:
				if rt == tTrue {
					return boolDatum(true), nil
				}
				if lt == tUnknown || rt == tUnknown {
					return nullDatum, nil
				}
				return boolDatum(false), nil
			}
			if lt == tUnknown || rt == tUnknown {
				return nullDatum, nil
			}
			return boolDatum(lt != rt), nil
		}), nil
	case opcode.EQ, opcode.NE, opcode.LT, opcode.LE, opcode.GT, opcode.GE, opcode.NullEQ:
		return funcExpr(func(row []Datum) (Datum, error) {
			lv, err := l.eval(row)
			if err != nil {
				return nullDatum, err
			}
			rv, err := r.eval(row)
			if err != nil {
				return nullDatum, err
			}
			if op == opcode.NullEQ && (lv.IsNull() || rv.IsNull()) {
				return boolDatum(lv.IsNull() && rv.IsNull()), nil
			}
			if lv.IsNull() || rv.IsNull() {
				return nullDatum, nil
			}
			cv, err := compare(lv, rv)
			if err != nil {
				return nullDatum, err
			}
			return boolDatum(cmpHolds(op, cv)), nil
		}), nil
	case opcode.Plus, opcode.Minus, opcode.Mul, opcode.Div, opcode.Mod, opcode.IntDiv:
		return funcExpr(func(row []Datum) (Datum, error) {
			lv, err := l.eval(row)
			if err != nil {
				return nullDatum, err
			}
			rv, err := r.eval(row)
			if err != nil {
				return nullDatum, err
			}
			if lv.IsNull() || rv.IsNull() {
				return nullDatum, nil
			}
			return arith(op, lv, rv)
		}), nil
	}
	return nil, notSupported("operator %s", op)
}

func cmpHolds(op opcode.Op, c int) bool {
	switch op {
	case opcode.EQ, opcode.NullEQ:
		return c == 0
	case opcode.NE:
		return c != 0
	case opcode.LT:
		return c < 0
	case opcode.LE:
		return c <= 0
	case opcode.GT:
		return c > 0
	case opcode.GE:
		return c >= 0
	}
	return false
}

func numArg(d Datum) (Datum, error) {
	switch d.Kind {
	case KindInt, KindFloat, KindDecimal:
		return d, nil
	case KindBool:
		if d.Value.(bool) {
			return intDatum(1), nil
		}
		return intDatum(0), nil
	case KindString:
		s := strings.TrimSpace(d.Value.(string))
		if r, ok := new(big.Rat).SetString(s); ok && !strings.Contains(s, "/") {
			if r.IsInt() && r.Num().IsInt64() {
				return intDatum(r.Num().Int64()), nil
			}
			f, _ := r.Float64()
			return floatDatum(f), nil
		}
	}
	return nullDatum, typeErr("%s value %s is not a number", d.Kind, quoteVal(d))
}

// arith applies an arithmetic operator to two non-NULL values. Integer
// overflow is an error; division by zero yields NULL (as MySQL); / on
// integers and decimals is exact (DECIMAL, scale +4 as MySQL); any DOUBLE
// operand makes the result DOUBLE.
func arith(op opcode.Op, a, b Datum) (Datum, error) {
	a, err := numArg(a)
	if err != nil {
		return nullDatum, err
	}
	if b, err = numArg(b); err != nil {
		return nullDatum, err
	}
	if a.Kind == KindFloat || b.Kind == KindFloat {
		x, _ := toFloat(a)
		y, _ := toFloat(b)
		var z float64
		switch op {
		case opcode.Plus:
			z = x + y
		case opcode.Minus:
			z = x - y
		case opcode.Mul:
			z = x * y
		case opcode.Div:
			if y == 0 {
				return nullDatum, nil
			}
			z = x / y
		case opcode.Mod:
			if y == 0 {
				return nullDatum, nil
			}
			z = math.Mod(x, y)
		case opcode.IntDiv:
			if y == 0 {
				return nullDatum, nil
			}
			q := math.Trunc(x / y)
			if q > math.MaxInt64 || q < math.MinInt64 {
				return nullDatum, typeErr("integer division result out of range")
			}
			return intDatum(int64(q)), nil
		}
		return floatDatum(z), nil
	}
	if a.Kind == KindInt && b.Kind == KindInt {
		x, y := a.Value.(int64), b.Value.(int64)
		switch op {
		case opcode.Plus:
			z := x + y
			if (z > x) != (y > 0) {
				return nullDatum, typeErr("BIGINT value is out of range in %d + %d", x, y)
			}
			return intDatum(z), nil
		case opcode.Minus:
			z := x - y
			if (z < x) != (y > 0) {
				return nullDatum, typeErr("BIGINT value is out of range in %d - %d", x, y)
			}
			return intDatum(z), nil
		case opcode.Mul:
			if x != 0 && y != 0 {
				z := x * y
				if z/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
					return nullDatum, typeErr("BIGINT value is out of range in %d * %d", x, y)
				}
				return intDatum(z), nil
			}
			return intDatum(0), nil
		case opcode.Mod:
			if y == 0 {
				return nullDatum, nil
			}
			if y == -1 {
				return intDatum(0), nil
			}
			return intDatum(x % y), nil
		case opcode.IntDiv:
			if y == 0 {
				return nullDatum, nil
			}
			if x == math.MinInt64 && y == -1 {
				return nullDatum, typeErr("BIGINT value is out of range in %d DIV %d", x, y)
			}
			return intDatum(x / y), nil
		}
	}
	x, _ := toRat(a)
	y, _ := toRat(b)
	sa, sb := a.Scale, b.Scale
	z := new(big.Rat)
	scale := max(sa, sb)
	switch op {
	case opcode.Plus:
		z.Add(x, y)
	case opcode.Minus:
		z.Sub(x, y)
	case opcode.Mul:
		z.Mul(x, y)
		scale = sa + sb
	case opcode.Div:
		if y.Sign() == 0 {
			return nullDatum, nil
		}
		z.Quo(x, y)
		scale = sa + 4
		u, ok := scaleRat(z, min(scale, 18))
		if !ok {
			f, _ := z.Float64()
			return floatDatum(f), nil
		}
		z.SetFrac64(u, pow10[min(scale, 18)])
	case opcode.Mod:
		if y.Sign() == 0 {
			return nullDatum, nil
		}
		q := new(big.Rat).Quo(x, y)
		t := new(big.Int).Quo(q.Num(), q.Denom()) // truncated toward zero
		z.Sub(x, new(big.Rat).Mul(y, new(big.Rat).SetInt(t)))
	case opcode.IntDiv:
		if y.Sign() == 0 {
			return nullDatum, nil
		}
		q := new(big.Rat).Quo(x, y)
		t := new(big.Int).Quo(q.Num(), q.Denom())
		if !t.IsInt64() {
			return nullDatum, typeErr("integer division result out of range")
		}
		return intDatum(t.Int64()), nil
	}
	return decDatum(z, scale), nil
}

func (c *compiler) between(x *ast.BetweenExpr) (expr, error) {
	e, err := c.compile(x.Expr)
	if err != nil {
		return nil, err
	}
	lo, err := c.compile(x.Left)
	if err != nil {
		return nil, err
	}
	hi, err := c.compile(x.Right)
	if err != nil {
		return nil, err
	}
	not := x.Not
	return funcExpr(func(row []Datum) (Datum, error) {
		v, err := e.eval(row)
		if err != nil {
			return nullDatum, err
		}
		l, err := lo.eval(row)
		if err != nil {
			return nullDatum, err
		}
		h, err := hi.eval(row)
		if err != nil {
			return nullDatum, err
		}
		// v >= l AND v <= h, three-valued.
		t1, t2 := tUnknown, tUnknown
		if !v.IsNull() && !l.IsNull() {
			c, err := compare(v, l)
			if err != nil {
				return nullDatum, err
			}
			t1 = b2t(c >= 0)
		}
		if !v.IsNull() && !h.IsNull() {
			c, err := compare(v, h)
			if err != nil {
				return nullDatum, err
			}
			t2 = b2t(c <= 0)
		}
		t := and3(t1, t2)
		if not {
			t = not3(t)
		}
		return truthDatum(t), nil
	}), nil
}

func and3(a, b truth) truth {
	if a == tFalse || b == tFalse {
		return tFalse
	}
	if a == tUnknown || b == tUnknown {
		return tUnknown
	}
	return tTrue
}

func not3(a truth) truth {
	if a == tUnknown {
		return a
	}
	return 1 - a
}

func (c *compiler) in(x *ast.PatternInExpr) (expr, error) {
	if x.Sel != nil {
		return nil, notSupported("IN (subquery)")
	}
	e, err := c.compile(x.Expr)
	if err != nil {
		return nil, err
	}
	list := make([]expr, len(x.List))
	for i, le := range x.List {
		if list[i], err = c.compile(le); err != nil {
			return nil, err
		}
	}
	not := x.Not
	return funcExpr(func(row []Datum) (Datum, error) {
		v, err := e.eval(row)
		if err != nil {
			return nullDatum, err
		}
		t := tFalse
		if v.IsNull() {
			t = tUnknown
		} else {
			for _, le := range list {
				w, err := le.eval(row)
				if err != nil {
					return nullDatum, err
				}
				if w.IsNull() {
					t = tUnknown
					continue
				}
				c, err := compare(v, w)
				if err != nil {
					return nullDatum, err
				}
				if c == 0 {
					t = tTrue
					break
				}
			}
		}
		if not {
			t = not3(t)
		}
		return truthDatum(t), nil
	}), nil
}

func (c *compiler) like(x *ast.PatternLikeOrIlikeExpr) (expr, error) {
	e, err := c.compile(x.Expr)
	if err != nil {
		return nil, err
	}
	p, err := c.compile(x.Pattern)
	if err != nil {
		return nil, err
	}
	esc := rune(x.Escape)
	if esc == 0 {
		esc = '\\'
	}
	fold := !x.IsLike
	not := x.Not
	return funcExpr(func(row []Datum) (Datum, error) {
		v, err := e.eval(row)
		if err != nil {
			return nullDatum, err
		}
		pv, err := p.eval(row)
		if err != nil {
			return nullDatum, err
		}
		if v.IsNull() || pv.IsNull() {
			return nullDatum, nil
		}
		s, pat := v.String(), pv.String()
		if fold {
			s, pat = strings.ToLower(s), strings.ToLower(pat)
		}
		return boolDatum(likeMatch(s, pat, esc) != not), nil
	}), nil
}

// likeMatch matches s against a LIKE pattern (% any run, _ one character).
// It is the greedy wildcard match that backtracks only to the last %:
// O(len(s)*len(p)) at worst, never exponential (a pattern like
// '%a%a%a%b' against a long run of a's must not blow up).
func likeMatch(s, p string, esc rune) bool {
	pat, str := likeTokens(p, esc), []rune(s)
	si, pi := 0, 0
	star, mark := -1, 0 // the last % seen, and where its run ends in str
	for si < len(str) {
		switch {
		case pi < len(pat) && pat[pi] == likeAnyRun:
			star, mark = pi, si
			pi++
		case pi < len(pat) && (pat[pi] == likeAnyOne || pat[pi] == str[si]):
			si++
			pi++
		case star >= 0:
			// Let the last % swallow one more character and retry.
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == likeAnyRun {
		pi++
	}
	return pi == len(pat)
}

// LIKE pattern tokens: a literal rune, or one of these (negative, so no
// rune collides with them).
const (
	likeAnyRun rune = -1 // %
	likeAnyOne rune = -2 // _
)

// likeTokens splits a LIKE pattern into tokens. An escape makes the next
// rune literal; an escape at the end is itself literal.
func likeTokens(p string, esc rune) []rune {
	in := []rune(p)
	out := make([]rune, 0, len(in))
	for i := 0; i < len(in); i++ {
		switch r := in[i]; {
		case r == esc && i+1 < len(in):
			i++
			out = append(out, in[i])
		case r == '%':
			if len(out) == 0 || out[len(out)-1] != likeAnyRun {
				out = append(out, likeAnyRun)
			}
		case r == '_':
			out = append(out, likeAnyOne)
		default:
			out = append(out, r)
		}
	}
	return out
}

func (c *compiler) caseExpr(x *ast.CaseExpr) (expr, error) {
	var val expr
	var err error
	if x.Value != nil {
		if val, err = c.compile(x.Value); err != nil {
			return nil, err
		}
	}
	type when struct{ cond, res expr }
	var whens []when
	for _, w := range x.WhenClauses {
		ce, err := c.compile(w.Expr)
		if err != nil {
			return nil, err
		}
		re, err := c.compile(w.Result)
		if err != nil {
			return nil, err
		}
		whens = append(whens, when{ce, re})
	}
	var els expr = constExpr{nullDatum}
	if x.ElseClause != nil {
		if els, err = c.compile(x.ElseClause); err != nil {
			return nil, err
		}
	}
	return funcExpr(func(row []Datum) (Datum, error) {
		var v Datum
		var err error
		if val != nil {
			if v, err = val.eval(row); err != nil {
				return nullDatum, err
			}
		}
		for _, w := range whens {
			cv, err := w.cond.eval(row)
			if err != nil {
				return nullDatum, err
			}
			hit := false
			if val != nil {
				if !v.IsNull() && !cv.IsNull() {
					c, err := compare(v, cv)
					if err != nil {
						return nullDatum, err
					}
					hit = c == 0
				}
			} else {
				t, err := truthOf(cv)
				if err != nil {
					return nullDatum, err
				}
				hit = t == tTrue
			}
			if hit {
				return w.res.eval(row)
			}
		}
		return els.eval(row)
	}), nil
}

// cast implements CAST(x AS type) / CONVERT: like storing into a column of
// that type, except that numbers round to integers (as MySQL).
func (c *compiler) cast(x *ast.FuncCastExpr) (expr, error) {
	e, err := c.compile(x.Expr)
	if err != nil {
		return nil, err
	}
	t, err := castTarget(x)
	if err != nil {
		return nil, err
	}
	return funcExpr(func(row []Datum) (Datum, error) {
		v, err := e.eval(row)
		if err != nil || v.IsNull() {
			return v, err
		}
		if t.Kind == KindInt && (v.Kind == KindFloat || v.Kind == KindDecimal) {
			r, ok := toRat(v)
			if !ok {
				return nullDatum, typeErr("cannot CAST %s to an integer", quoteVal(v))
			}
			u, ok := scaleRat(r, 0)
			if !ok {
				return nullDatum, typeErr("value %s is out of range for CAST AS SIGNED", quoteVal(v))
			}
			return intDatum(u), nil
		}
		return convert(v, t, "CAST")
	}), nil
}

// castTarget is the type CAST converts to.
func castTarget(x *ast.FuncCastExpr) (Type, error) {
	if x.Tp.GetType() == mysql.TypeLonglong {
		if mysql.HasUnsignedFlag(x.Tp.GetFlag()) {
			return Type{}, notSupported("CAST AS UNSIGNED")
		}
		return Type{Kind: KindInt, Name: "BIGINT"}, nil
	}
	ft := x.Tp.Clone()
	ft.SetFlag(ft.GetFlag() &^ mysql.UnsignedFlag)
	t, err := columnType("CAST", ft)
	if err != nil {
		return Type{}, err
	}
	if t.Kind == KindString {
		t.Len = 0
	}
	if t.Kind == KindDecimal && x.Tp.GetFlen() <= 0 {
		t.Prec, t.Scale = 18, 0
	}
	return t, nil
}

func rounding(name string, vs []Datum) (Datum, error) {
	v, err := numArg(vs[0])
	if err != nil {
		return nullDatum, err
	}
	digits := int64(0)
	if len(vs) == 2 {
		d, err := convert(vs[1], Type{Kind: KindInt, Name: "INT"}, "digits")
		if err != nil {
			return nullDatum, err
		}
		digits = min(max(d.Value.(int64), 0), 18)
	}
	switch v.Kind {
	case KindInt:
		return v, nil
	case KindFloat:
		f := v.Value.(float64)
		p := math.Pow(10, float64(digits))
		switch name {
		case "floor":
			return floatDatum(math.Floor(f)), nil
		case "ceil", "ceiling":
			return floatDatum(math.Ceil(f)), nil
		}
		return floatDatum(math.Round(f*p) / p), nil
	}
	r := v.Value.(*big.Rat)
	fl := new(big.Int).Quo(r.Num(), r.Denom())
	if r.Sign() < 0 && !r.IsInt() && name == "floor" {
		fl.Sub(fl, big.NewInt(1))
	}
	if r.Sign() > 0 && !r.IsInt() && (name == "ceil" || name == "ceiling") {
		fl.Add(fl, big.NewInt(1))
	}
	if name != "round" {
		if fl.IsInt64() {
			return intDatum(fl.Int64()), nil
		}
		return decDatum(new(big.Rat).SetInt(fl), 0), nil
	}
	u, ok := scaleRat(r, int(digits))
	if !ok {
		return nullDatum, typeErr("value out of range in ROUND")
	}
	return decDatum(new(big.Rat).SetFrac64(u, pow10[digits]), int(digits)), nil
}

// evalTruth evaluates a condition to a truth value.
func evalTruth(e expr, row []Datum) (truth, error) {
	v, err := e.eval(row)
	if err != nil {
		return tFalse, err
	}
	return truthOf(v)
}
