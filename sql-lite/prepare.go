package sqllite

import (
	"context"
	"math"
	"math/big"
	"reflect"
	"sort"
	"sync/atomic"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// Stmt is a prepared statement: one statement parsed once, with ?
// parameter markers that each Exec binds to values. Running it skips the
// parser, which is most of the cost of a point SELECT after the storage
// read itself; a point SELECT also reuses its plan (see pointPlan).
//
// Exec means exactly what the statement means with each ? replaced by the
// literal its argument stands for (see bindValue): the markers are
// replaced in the parsed statement by literal nodes whose values change
// per Exec, so planning, type conversion and errors are those of the
// literal form. Tables are resolved per Exec through the session's
// catalog cache, as for Session.Exec, so schema changes made between
// Prepare and Exec are seen.
//
// A Stmt belongs to the Session that prepared it and, like the Session,
// is not safe for concurrent use; an Exec that overlaps another Exec of
// the same Stmt fails instead of racing.
type Stmt struct {
	s    *Session
	sql  string
	stmt ast.StmtNode
	// params are the literal nodes standing in the statement where its
	// markers were, in the order of the markers in the text.
	params []*driver.ValueExpr
	// point reuses the plan of a point SELECT between runs (nil for
	// other statements).
	point *pointPlan
	busy  atomic.Bool
}

// Prepare parses sql, which must hold exactly one statement, for repeated
// execution with Stmt.Exec. Parameter markers (?) may stand wherever a
// literal value may in SELECT, INSERT, REPLACE, UPDATE and DELETE (WHERE,
// VALUES, SET, ON DUPLICATE KEY UPDATE, the select list, HAVING,
// expressions in GROUP BY and ORDER BY, LIMIT and OFFSET); anywhere else
// (a whole ORDER BY or GROUP BY item, which a literal would make a
// column position; other statements) they are refused here with
// ErrNotSupported.
// Tables are not looked up until Exec.
func (s *Session) Prepare(ctx context.Context, sql string) (*Stmt, error) {
	stmts, _, err := s.parser.Parse(sql, "", "")
	if err != nil {
		return nil, parseErr(err)
	}
	if len(stmts) != 1 {
		return nil, notSupported("preparing %d statements at once (Prepare takes exactly one)", len(stmts))
	}
	st := stmts[0]
	f := &markerFinder{}
	st.Accept(f)
	if f.err != nil {
		return nil, f.err
	}
	if len(f.markers) > 0 {
		target := st
		if x, ok := st.(*ast.ExplainStmt); ok {
			target = x.Stmt
		}
		switch target.(type) {
		case *ast.SelectStmt, *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		default:
			return nil, notSupported("parameter markers (?) in %s", stmtName(target))
		}
	}
	// Markers are numbered by their place in the text (the tree may visit
	// them in another order).
	sort.Slice(f.markers, func(i, j int) bool { return f.markers[i].m.Offset < f.markers[j].m.Offset })
	p := &Stmt{s: s, sql: sql, stmt: st, params: make([]*driver.ValueExpr, len(f.markers))}
	for i, mk := range f.markers {
		mk.m.SetOrder(i)
		p.params[i] = mk.lit
	}
	p.point = newPointPlan(st, p.params)
	return p, nil
}

// NumParams returns the number of parameter markers, which is the number
// of arguments Exec takes.
func (st *Stmt) NumParams() int { return len(st.params) }

// SQL returns the statement's text as prepared.
func (st *Stmt) SQL() string { return st.sql }

// Exec binds args to the parameter markers, in order, and runs the
// statement in its session (inside the session's open transaction, if
// any). Arguments may be nil (NULL), any Go integer kind, float32 or
// float64, string, []byte, bool, time.Time, a Datum, or a pointer to one
// of these (a nil pointer is NULL); see docs/sql.md for the literal each
// stands for. A wrong number of arguments or an unsupported Go type is
// an ErrType error naming the parameter; nothing runs then.
func (st *Stmt) Exec(ctx context.Context, args ...any) (*Result, error) {
	if len(args) != len(st.params) {
		return nil, typeErr("the statement has %d parameter markers (?) but Exec got %d arguments", len(st.params), len(args))
	}
	if !st.busy.CompareAndSwap(false, true) {
		return nil, errf(CodeInternal, "prepared statement used by two goroutines at once (a Stmt, like its Session, is not safe for concurrent use)")
	}
	defer st.busy.Store(false)
	for i, a := range args {
		v, err := bindValue(a)
		if err != nil {
			err.Msg = "parameter " + itoa(i+1) + ": " + err.Msg
			return nil, err
		}
		// The whole node is replaced so that no flag of the previous
		// value's field type (TRUE's boolean flag, a string's charset)
		// survives.
		*st.params[i] = *ast.NewValueExpr(v, "", "").(*driver.ValueExpr)
	}
	if st.point != nil {
		st.s.point = st.point
		defer func() { st.s.point = nil }()
	}
	return st.s.runStmt(ctx, st.stmt)
}

// bindValue maps a Go argument to the value of the literal it stands for
// (a value ast.NewValueExpr accepts, so the parameter becomes exactly the
// node the parser makes for that literal):
//
//	nil, nil pointer, nil []byte  NULL
//	integers                      an integer literal (42); a uint64 past
//	                              MaxInt64 is a DECIMAL, as its literal is
//	float32, float64              a DOUBLE literal (1.5e0; NaN and ±Inf
//	                              have no literal and are refused)
//	string                        a string literal ('abc')
//	[]byte                        a binary literal (x'616263'); copied
//	bool                          TRUE or FALSE (the integers 1 and 0)
//	time.Time                     the string 'YYYY-MM-DD hh:mm:ss.ffffff'
//	                              in UTC, the form TIMESTAMP columns take
//	Datum                         the literal of its kind (a DECIMAL keeps
//	                              its digits; a TIMESTAMP as time.Time)
func bindValue(a any) (any, *Error) {
	switch x := a.(type) {
	case nil:
		return nil, nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case string:
		return x, nil
	case []byte:
		if x == nil {
			return nil, nil
		}
		return append([]byte{}, x...), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, typeErr("float64 %v has no SQL literal (only finite numbers can be bound)", x)
		}
		return x, nil
	case bool:
		return x, nil
	case time.Time:
		return x.UTC().Format(TimeFormat), nil
	case Datum:
		return bindDatum(x)
	}
	// Named types and pointers, by kind (as database/sql converts them).
	rv := reflect.ValueOf(a)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return bindValue(rv.Elem().Interface())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u > math.MaxInt64 {
			return u, nil
		}
		return int64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return bindValue(rv.Float())
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return bindValue(rv.Bytes())
		}
	}
	return nil, typeErr("cannot bind a Go %T (use nil, an integer, float64, string, []byte, bool, time.Time or a Datum)", a)
}

func bindDatum(d Datum) (any, *Error) {
	switch d.Kind {
	case KindNull:
		return nil, nil
	case KindInt, KindFloat, KindString, KindBytes, KindBool, KindTime:
		return bindValue(d.Value)
	case KindDecimal:
		s := d.Value.(*big.Rat).FloatString(d.Scale)
		dec, err := ast.NewDecimal(s)
		if err != nil {
			return nil, typeErr("DECIMAL %s cannot be bound: %v", s, err)
		}
		return dec, nil
	}
	return nil, typeErr("cannot bind a Datum of kind %s", d.Kind)
}

// markerFinder replaces every parameter marker with a literal node (kept
// by the Stmt, which sets its value per Exec) and refuses markers where
// no literal value can stand.
type markerFinder struct {
	markers []foundMarker
	parent  []ast.Node
	err     *Error
}

type foundMarker struct {
	m   *driver.ParamMarkerExpr
	lit *driver.ValueExpr
}

func (f *markerFinder) Enter(n ast.Node) (ast.Node, bool) {
	if m, ok := n.(*driver.ParamMarkerExpr); ok {
		if len(f.parent) > 0 {
			switch f.parent[len(f.parent)-1].(type) {
			case *ast.ByItem, *ast.PositionExpr:
				// ORDER BY ? / GROUP BY ?: the literal there (ORDER BY 2)
				// is a position in the select list, which a value
				// standing in for it would not be.
				if f.err == nil {
					f.err = notSupported("parameter marker (?) as a whole ORDER BY or GROUP BY item (a literal there is a column position)")
				}
			}
		}
		lit := ast.NewValueExpr(nil, "", "").(*driver.ValueExpr)
		f.markers = append(f.markers, foundMarker{m, lit})
		return n, true
	}
	f.parent = append(f.parent, n)
	return n, false
}

func (f *markerFinder) Leave(n ast.Node) (ast.Node, bool) {
	if _, ok := n.(*driver.ParamMarkerExpr); ok {
		// Enter skipped the marker's (absent) children: this is its Leave.
		return f.markers[len(f.markers)-1].lit, true
	}
	f.parent = f.parent[:len(f.parent)-1]
	return n, true
}

// pointPlan reuses a prepared point SELECT's plan between runs. The
// statement must be `SELECT <items without ?> FROM t WHERE k1 = ? AND ...`
// with one equality per primary-key column and nothing else (no GROUP
// BY, ORDER BY, LIMIT, DISTINCT, aggregates). For such a statement the
// planner's output depends on the bound values only through the key it
// reads and the compiled WHERE, as long as every value converts exactly
// to its key column's type (otherwise the planner would not choose a
// point get): so a run with the same table (the same *table, i.e. the
// same table ID and schema version in the session's catalog cache)
// copies the plan, encodes the new key and compiles WHERE again.
// Anything else plans from scratch: a new schema, a value that does not
// convert exactly, a transaction, EXPLAIN, or execSelect's retry with a
// fresh catalog.
type pointPlan struct {
	stmt   *ast.SelectStmt
	params map[*driver.ValueExpr]bool
	// Filled by the last full planning that chose a point get.
	last  *selectPlan
	t     *table
	byKey []*driver.ValueExpr // the parameter feeding each key column, in key order
	// reused counts the runs that reused the plan (for tests).
	reused int
}

// newPointPlan returns a pointPlan when the statement has the shape it
// needs (as far as it can be told without the table), else nil.
func newPointPlan(st ast.StmtNode, params []*driver.ValueExpr) *pointPlan {
	sel, ok := st.(*ast.SelectStmt)
	if !ok || len(params) == 0 || sel.Where == nil || sel.With != nil || sel.Kind != ast.SelectStmtKindSelect ||
		sel.AfterSetOperator != nil || sel.Distinct || sel.GroupBy != nil || sel.Having != nil || sel.OrderBy != nil ||
		sel.Limit != nil || sel.SelectIntoOpt != nil || len(sel.WindowSpecs) > 0 || sel.From == nil ||
		(sel.LockInfo != nil && sel.LockInfo.LockType != ast.SelectLockNone) {
		return nil
	}
	if items, err := flattenFrom(sel.From.TableRefs); err != nil || len(items) != 1 {
		return nil
	}
	pp := &pointPlan{stmt: sel, params: map[*driver.ValueExpr]bool{}}
	for _, p := range params {
		pp.params[p] = true
	}
	var fields []ast.Node
	for _, f := range sel.Fields.Fields {
		if f.Expr != nil {
			fields = append(fields, f.Expr)
		}
	}
	if hasAggregate(fields...) {
		return nil
	}
	pf := &paramFinder{params: pp.params}
	for _, f := range fields {
		f.Accept(pf)
	}
	if pf.found {
		return nil
	}
	for _, e := range splitAnd(sel.Where) {
		if _, _, ok := pp.keyEquality(e); !ok {
			return nil
		}
	}
	return pp
}

// keyEquality matches `col = ?` or `? = col`.
func (pp *pointPlan) keyEquality(e ast.ExprNode) (*ast.ColumnName, *driver.ValueExpr, bool) {
	b, ok := unparen(e).(*ast.BinaryOperationExpr)
	if !ok || b.Op != opcode.EQ {
		return nil, nil, false
	}
	l, r := unparen(b.L), unparen(b.R)
	if _, ok := l.(*ast.ColumnNameExpr); !ok {
		l, r = r, l
	}
	cn, ok1 := l.(*ast.ColumnNameExpr)
	v, ok2 := r.(*driver.ValueExpr)
	if !ok1 || !ok2 || !pp.params[v] {
		return nil, nil, false
	}
	return cn.Name, v, true
}

// plan returns the plan of the statement with the current values.
func (pp *pointPlan) plan(ctx context.Context, s *Session) (*selectPlan, error) {
	if s.txn != nil || s.explaining {
		return s.planSelect(ctx, pp.stmt, false)
	}
	if pp.last != nil {
		t, err := s.lookup(ctx, pp.t.name)
		if err == nil && t == pp.t {
			if p, ok := pp.reuse(); ok {
				pp.reused++
				return p, nil
			}
			// A value the planner would not make a point get of: plan
			// this run, keeping the remembered plan for the next.
			return s.planSelect(ctx, pp.stmt, false)
		}
	}
	p, err := s.planSelect(ctx, pp.stmt, false)
	if err != nil {
		return nil, err
	}
	pp.remember(p)
	return p, nil
}

// remember keeps p for reuse if it is a point get over the key
// equalities alone. (A plan it keeps for a table that then changes is
// never reused: plan compares the *table.)
func (pp *pointPlan) remember(p *selectPlan) {
	a := p.driving
	if a == nil || len(p.joins) > 0 || p.agg != nil || len(p.residual) > 0 || len(a.points) != 1 || a.pushed != nil || a.limit != 0 || a.reverse {
		return
	}
	t := a.t
	byKey := make([]*driver.ValueExpr, len(t.pk))
	conj := splitAnd(pp.stmt.Where)
	if len(conj) != len(t.pk) {
		return
	}
	for _, e := range conj {
		name, v, ok := pp.keyEquality(e)
		if !ok {
			return
		}
		i, err := p.sc.resolve(name)
		if err != nil || p.sc.cols[i].table != a.alias || p.sc.cols[i].ci < 0 {
			return
		}
		pos := -1
		for k, ci := range t.pk {
			if ci == p.sc.cols[i].ci {
				pos = k
			}
		}
		if pos < 0 || byKey[pos] != nil {
			return
		}
		byKey[pos] = v
	}
	pp.last, pp.t, pp.byKey = p, t, byKey
}

// reuse copies the remembered plan for the current values; false when a
// value does not convert exactly to its key column (the planner would not
// choose a point get then).
func (pp *pointPlan) reuse() (*selectPlan, bool) {
	var key []byte
	for k, ci := range pp.t.pk {
		v, err := literal(pp.byKey[k])
		if err != nil {
			return nil, false
		}
		typ := pp.t.cols[ci].Type
		c, ok := exactConvert(v, typ)
		if !ok {
			return nil, false
		}
		key = encodeValue(key, c, typ, true)
	}
	where, err := (&compiler{sc: pp.last.sc}).compile(pp.stmt.Where)
	if err != nil {
		return nil, false
	}
	p := *pp.last
	a := *p.driving
	a.points = [][]byte{key}
	p.driving, p.where = &a, where
	p.names = append([]string(nil), p.names...) // the Result's, which callers may change
	return &p, true
}

// paramFinder reports whether a tree holds one of the parameter nodes.
type paramFinder struct {
	params map[*driver.ValueExpr]bool
	found  bool
}

func (f *paramFinder) Enter(n ast.Node) (ast.Node, bool) {
	if v, ok := n.(*driver.ValueExpr); ok && f.params[v] {
		f.found = true
	}
	return n, f.found
}

func (f *paramFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
