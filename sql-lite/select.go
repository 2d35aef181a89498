package sqllite

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"

	"github.com/shaledb/shale/kvclient"
)

// HashJoinMaxRows and HashJoinMaxBytes bound the build side of a hash
// join (rows kept in memory, and their approximate size); past either the
// query fails with ErrResource.
var (
	HashJoinMaxRows  = 1_000_000
	HashJoinMaxBytes = 256 << 20
)

// datumSize approximates the memory a row's values take.
func datumSize(vals []Datum) int {
	n := 24 + 40*len(vals)
	for _, v := range vals {
		switch v.Kind {
		case KindString:
			n += len(v.Value.(string))
		case KindBytes:
			n += len(v.Value.([]byte))
		case KindDecimal:
			n += 64
		}
	}
	return n
}

const lookupBatch = 256

// joinStep joins one more table onto the rows so far.
type joinStep struct {
	acc    *access
	left   bool // LEFT JOIN
	on     expr // full ON condition over the combined row (nil: none)
	lookup bool
	// prefix: the equalities cover only a key prefix (range lookup join).
	prefix bool
	// lookup join: scope index (in the left part) feeding each pk column.
	keySrc []int
	// hash join: left scope indexes and right column indexes of the equalities.
	hashL, hashR []int
	width        int // columns of the left part
	build        map[string][][]Datum
	flush        func() (bool, error)
	onText       string
}

type selectPlan struct {
	sc      *scope
	driving *access
	joins   []*joinStep
	where   expr
	// residual are the WHERE conjuncts neither the key access nor the
	// pushed-down filter enforce.
	residual []string
	// output
	agg      *aggPlan
	having   expr
	fields   []expr
	names    []string
	types    []Type // see Result.Types
	order    []orderItem
	distinct bool
	offset   int
	limit    int // -1: none
	sorted   bool
	// describe asks for EXPLAIN's lines in explain (Session.explain sets
	// it). Other runs skip them: formatting them was a tenth of a point
	// SELECT's planning.
	describe bool
	explain  []string
}

type orderItem struct {
	e    expr
	out  int // >= 0: output column index
	desc bool
}

// flattenFrom turns a left-deep join tree into table sources and joins.
type fromItem struct {
	ts   *ast.TableSource
	name *ast.TableName
	tp   ast.JoinType
	on   ast.ExprNode
}

func flattenFrom(n ast.ResultSetNode) ([]fromItem, error) {
	switch x := n.(type) {
	case *ast.TableSource:
		tn, ok := x.Source.(*ast.TableName)
		if !ok {
			return nil, notSupported("subqueries in FROM")
		}
		return []fromItem{{ts: x, name: tn}}, nil
	case *ast.Join:
		left, err := flattenFrom(x.Left)
		if err != nil {
			return nil, err
		}
		if x.Right == nil {
			return left, nil
		}
		right, err := flattenFrom(x.Right)
		if err != nil {
			return nil, err
		}
		if len(right) != 1 {
			return nil, notSupported("nested joins on the right side")
		}
		if x.NaturalJoin || x.Using != nil {
			return nil, notSupported("NATURAL JOIN and JOIN ... USING (write ON a.x = b.x)")
		}
		if x.StraightJoin {
			return nil, notSupported("STRAIGHT_JOIN")
		}
		if x.Tp == ast.RightJoin {
			return nil, notSupported("RIGHT JOIN (swap the tables and use LEFT JOIN)")
		}
		r := right[0]
		r.tp = x.Tp
		if x.On != nil {
			r.on = x.On.Expr
		}
		return append(left, r), nil
	}
	return nil, notSupported("FROM %T", n)
}

func (s *Session) planSelect(ctx context.Context, st *ast.SelectStmt, forWrite bool) (*selectPlan, error) {
	if st.With != nil {
		return nil, notSupported("WITH (common table expressions)")
	}
	if st.AfterSetOperator != nil || st.Kind != ast.SelectStmtKindSelect {
		return nil, notSupported("UNION / VALUES / TABLE statements")
	}
	if st.LockInfo != nil && st.LockInfo.LockType != ast.SelectLockNone {
		return nil, notSupported("SELECT ... FOR UPDATE")
	}
	if st.SelectIntoOpt != nil {
		return nil, notSupported("SELECT ... INTO")
	}
	if len(st.WindowSpecs) > 0 {
		return nil, notSupported("window functions")
	}
	p := &selectPlan{sc: &scope{}, limit: -1, distinct: st.Distinct, describe: s.explaining}
	var items []fromItem
	if st.From != nil {
		var err error
		if items, err = flattenFrom(st.From.TableRefs); err != nil {
			return nil, err
		}
	}
	tables := make([]*table, len(items))
	aliases := make([]string, len(items))
	for i, it := range items {
		if it.name.Schema.L != "" {
			return nil, notSupported("schema-qualified table names")
		}
		t, err := s.lookup(ctx, it.name.Name.L)
		if err != nil {
			return nil, err
		}
		tables[i] = t
		aliases[i] = it.name.Name.L
		if it.ts.AsName.L != "" {
			aliases[i] = it.ts.AsName.L
		}
		for j := 0; j < i; j++ {
			if aliases[j] == aliases[i] {
				return nil, notSupported("table %s appears twice; give it an alias", aliases[i])
			}
		}
		p.sc.cols = append(p.sc.cols, tableScope(t, aliases[i])...)
	}
	wildcard := false
	for _, f := range st.Fields.Fields {
		if f.WildCard != nil {
			wildcard = true
		}
	}
	var allNodes []ast.Node
	for _, f := range st.Fields.Fields {
		if f.Expr != nil {
			allNodes = append(allNodes, f.Expr)
		}
	}
	if st.Where != nil {
		allNodes = append(allNodes, st.Where)
	}
	if st.GroupBy != nil {
		allNodes = append(allNodes, st.GroupBy)
	}
	if st.Having != nil {
		allNodes = append(allNodes, st.Having.Expr)
	}
	if st.OrderBy != nil {
		allNodes = append(allNodes, st.OrderBy)
	}
	for _, it := range items {
		if it.on != nil {
			allNodes = append(allNodes, it.on)
		}
	}
	conj := splitAnd(st.Where)

	// Access paths: the driving table from WHERE; joined tables by lookup
	// or hash.
	width := 0
	for i, t := range tables {
		a := &access{t: t, alias: aliases[i]}
		a.needed = usedColumns(p.sc, aliases[i], t, wildcard || forWrite, allNodes...)
		if i == 0 {
			exact := chooseAccess(p.sc, a, conj)
			pushed := planPushdown(p.sc, a, conj)
			p.driving = a
			if p.describe { // (formatting the arguments costs, even unused)
				p.note("%s: %s, reads %s", describeTable(a), a.keyDesc, a.columnsDesc())
				if a.pushed != nil {
					p.note("pushed down to tablet servers: %s", strings.Join(a.pushed.desc, " AND "))
				}
			}
			var rest []string
			for ci, e := range conj {
				if !exact[ci] && !pushed[ci] {
					rest = append(rest, exprText(e))
				}
			}
			p.residual = rest
		} else {
			js, err := s.planJoin(p, a, items[i], width, conj)
			if err != nil {
				return nil, err
			}
			p.joins = append(p.joins, js)
		}
		width += len(t.cols)
	}
	c := &compiler{sc: p.sc}
	if st.Where != nil {
		if hasAggregate(st.Where) {
			return nil, errf(CodeNotSupported, "aggregate functions are not allowed in WHERE (use HAVING)")
		}
		w, err := c.compile(st.Where)
		if err != nil {
			return nil, err
		}
		p.where = w
	}
	if forWrite {
		return p, nil
	}
	// Aggregation.
	var having ast.ExprNode
	if st.Having != nil {
		having = st.Having.Expr
	}
	var fieldNodes []ast.Node
	for _, f := range st.Fields.Fields {
		if f.Expr != nil {
			fieldNodes = append(fieldNodes, f.Expr)
		}
	}
	var orderNodes []ast.Node
	if st.OrderBy != nil {
		for _, it := range st.OrderBy.Items {
			orderNodes = append(orderNodes, it.Expr)
		}
	}
	if st.GroupBy != nil || hasAggregate(append(append(fieldNodes, orderNodes...), nodeOrNil(having)...)...) {
		if st.GroupBy != nil && st.GroupBy.Rollup {
			return nil, notSupported("WITH ROLLUP")
		}
		var gitems []ast.ExprNode
		if st.GroupBy != nil {
			for _, it := range st.GroupBy.Items {
				g, err := groupItem(p.sc, st, it.Expr)
				if err != nil {
					return nil, err
				}
				gitems = append(gitems, g)
			}
		}
		ap, err := newAggPlan(p.sc, gitems)
		if err != nil {
			return nil, err
		}
		p.agg = ap
		c = &compiler{sc: p.sc, agg: ap}
		if wildcard {
			return nil, notSupported("SELECT * with GROUP BY or aggregates")
		}
	} else if having != nil {
		return nil, notSupported("HAVING without GROUP BY or aggregates")
	}
	// Output columns.
	for _, f := range st.Fields.Fields {
		if f.WildCard != nil {
			tn := f.WildCard.Table.L
			matched := false
			for i, col := range p.sc.cols {
				if tn == "" || col.table == tn {
					p.fields = append(p.fields, colRef{i})
					p.names = append(p.names, col.disp)
					p.types = append(p.types, p.sc.colType(i))
					matched = true
				}
			}
			if !matched {
				return nil, errf(CodeUnknownTable, "unknown table %s in %s.*", f.WildCard.Table.O, f.WildCard.Table.O)
			}
			continue
		}
		e, err := c.compile(f.Expr)
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, e)
		p.types = append(p.types, s.exprType(p.sc, f.Expr))
		name := f.AsName.O
		if name == "" {
			if cn, ok := f.Expr.(*ast.ColumnNameExpr); ok {
				name = cn.Name.Name.O
			} else if t := f.Text(); t != "" {
				name = t
			} else {
				name = exprText(f.Expr)
			}
		}
		p.names = append(p.names, name)
	}
	if having != nil {
		c.aliases = selectAliases(st)
		h, err := c.compile(having)
		if err != nil {
			return nil, err
		}
		p.having = h
	}
	if st.OrderBy != nil {
		for _, it := range st.OrderBy.Items {
			oi := orderItem{desc: it.Desc, out: -1}
			if pe, ok := it.Expr.(*ast.PositionExpr); ok {
				if pe.P != nil {
					return nil, notSupported("parameterized ORDER BY position")
				}
				n := pe.N
				if n < 1 || n > len(p.fields) {
					return nil, errf(CodeUnknownColumn, "ORDER BY position %d is not in the select list", n)
				}
				oi.out = n - 1
			} else if cn, ok := it.Expr.(*ast.ColumnNameExpr); ok && cn.Name.Table.L == "" && aliasIndex(st, cn.Name.Name.L) >= 0 {
				oi.out = aliasIndex(st, cn.Name.Name.L)
			} else {
				e, err := c.compile(it.Expr)
				if err != nil {
					return nil, err
				}
				oi.e = e
			}
			p.order = append(p.order, oi)
		}
	}
	if st.Limit != nil {
		if st.Limit.Count != nil {
			v, ok := constValue(st.Limit.Count)
			if !ok || v.Kind != KindInt || v.Value.(int64) < 0 {
				return nil, notSupported("LIMIT that is not a non-negative integer literal")
			}
			p.limit = int(v.Value.(int64))
		}
		if st.Limit.Offset != nil {
			v, ok := constValue(st.Limit.Offset)
			if !ok || v.Kind != KindInt || v.Value.(int64) < 0 {
				return nil, notSupported("OFFSET that is not a non-negative integer literal")
			}
			p.offset = int(v.Value.(int64))
		}
	}
	// ORDER BY the key of a single table: use the scan order.
	if p.agg == nil && len(p.order) > 0 && p.orderIsKey(st) {
		p.sorted = true
		p.driving.reverse = p.order[0].desc
		p.note("order: by primary key, %s scan (no sort)", map[bool]string{true: "reverse", false: "forward"}[p.driving.reverse])
	} else if len(p.order) > 0 {
		p.note("order: sort in client")
	}
	if p.agg != nil {
		p.note("aggregate: %d group expressions, %d aggregates (client)", len(p.agg.groups), len(p.agg.aggs))
	}
	if len(p.residual) > 0 {
		p.note("filter (client): %s", strings.Join(p.residual, " AND "))
	}
	// A scan limit is safe only when nothing after the scan drops rows.
	if p.agg == nil && len(p.joins) == 0 && len(p.residual) == 0 && !p.distinct && (len(p.order) == 0 || p.sorted) && p.limit >= 0 && s.txn == nil {
		p.driving.limit = p.limit + p.offset
		if p.driving.limit == 0 {
			p.driving.points = [][]byte{}
		}
	}
	if p.limit >= 0 || p.offset > 0 {
		p.note("limit %d offset %d", p.limit, p.offset)
	}
	return p, nil
}

// note adds a line to EXPLAIN's output when it is wanted.
func (p *selectPlan) note(format string, args ...any) {
	if p.describe {
		p.explain = append(p.explain, fmt.Sprintf(format, args...))
	}
}

// groupItem resolves GROUP BY positions and select-list aliases (as
// MySQL does) to expressions.
func groupItem(sc *scope, st *ast.SelectStmt, e ast.ExprNode) (ast.ExprNode, error) {
	if pe, ok := e.(*ast.PositionExpr); ok {
		if pe.P != nil || pe.N < 1 || pe.N > len(st.Fields.Fields) || st.Fields.Fields[pe.N-1].Expr == nil {
			return nil, errf(CodeUnknownColumn, "GROUP BY position %d is not in the select list", pe.N)
		}
		return st.Fields.Fields[pe.N-1].Expr, nil
	}
	if cn, ok := e.(*ast.ColumnNameExpr); ok && cn.Name.Table.L == "" {
		if _, err := sc.resolve(cn.Name); err != nil {
			if a, ok := selectAliases(st)[cn.Name.Name.L]; ok {
				return a, nil
			}
		}
	}
	return e, nil
}

func selectAliases(st *ast.SelectStmt) map[string]ast.ExprNode {
	m := map[string]ast.ExprNode{}
	for _, f := range st.Fields.Fields {
		if f.AsName.L != "" && f.Expr != nil {
			m[f.AsName.L] = f.Expr
		}
	}
	return m
}

func nodeOrNil(e ast.ExprNode) []ast.Node {
	if e == nil {
		return nil
	}
	return []ast.Node{e}
}

func aliasIndex(st *ast.SelectStmt, name string) int {
	for i, f := range st.Fields.Fields {
		if f.AsName.L == name {
			return i
		}
	}
	return -1
}

func describeTable(a *access) string {
	if a.alias != a.t.name {
		return a.t.name + " AS " + a.alias
	}
	return a.t.name
}

// orderIsKey reports whether ORDER BY lists primary-key columns in key
// order (after any columns fixed by equality), all in one direction.
func (p *selectPlan) orderIsKey(st *ast.SelectStmt) bool {
	t := p.driving.t
	start := -1
	for i, it := range st.OrderBy.Items {
		if it.Desc != st.OrderBy.Items[0].Desc || p.order[i].e == nil {
			return false
		}
		cr, ok := p.order[i].e.(colRef)
		if !ok || p.sc.cols[cr.idx].tbl != t || p.sc.cols[cr.idx].table != p.driving.alias {
			return false
		}
		ci := p.sc.cols[cr.idx].ci
		pos := -1
		for k, pk := range t.pk {
			if pk == ci {
				pos = k
			}
		}
		if pos < 0 {
			return false
		}
		if i == 0 {
			// Key columns before the first ORDER BY column must be fixed
			// by equality.
			if pos > p.driving.eqPrefix {
				return false
			}
			start = pos
		} else if pos != start+i {
			return false
		}
	}
	return true
}

// planJoin chooses a lookup join (the ON equalities cover the right
// table's primary key) or a hash join.
func (s *Session) planJoin(p *selectPlan, a *access, it fromItem, width int, where []ast.ExprNode) (*joinStep, error) {
	js := &joinStep{acc: a, left: it.tp == ast.LeftJoin, width: width}
	if it.on == nil {
		return nil, notSupported("joins without ON (cross joins)")
	}
	c := &compiler{sc: p.sc}
	on, err := c.compile(it.on)
	if err != nil {
		return nil, err
	}
	js.on = on
	js.onText = exprText(it.on)
	t := a.t
	// Equalities left.col = right.col.
	src := map[int]int{} // right column index -> left scope index
	for _, e := range splitAnd(it.on) {
		b, ok := unparen(e).(*ast.BinaryOperationExpr)
		if !ok || b.Op != opcode.EQ {
			continue
		}
		l, ok1 := unparen(b.L).(*ast.ColumnNameExpr)
		r, ok2 := unparen(b.R).(*ast.ColumnNameExpr)
		if !ok1 || !ok2 {
			continue
		}
		li, err1 := p.sc.resolve(l.Name)
		ri, err2 := p.sc.resolve(r.Name)
		if err1 != nil || err2 != nil {
			continue
		}
		if li >= width && ri < width {
			li, ri = ri, li
		}
		if li < width && ri >= width && ri < width+len(t.cols) {
			rc := ri - width
			src[rc] = li
			js.hashL = append(js.hashL, li)
			js.hashR = append(js.hashR, rc)
		}
	}
	if len(js.hashL) == 0 {
		return nil, notSupported("joins without an equality between the tables in ON")
	}
	// Equalities on the whole key: point lookups; on a key prefix: one
	// prefix scan per left row; otherwise a hash join.
	for _, ci := range t.pk {
		li, ok := src[ci]
		if !ok {
			break
		}
		js.keySrc = append(js.keySrc, li)
	}
	js.lookup = len(js.keySrc) > 0
	js.prefix = js.lookup && len(js.keySrc) < len(t.pk)
	// Conditions on the joined table alone filter its rows at the source:
	// ON conjuncts always, WHERE conjuncts only for inner joins (a LEFT
	// join's WHERE sees NULL-extended rows).
	cands := splitAnd(it.on)
	if !js.left && s.txn == nil {
		cands = append(cands, where...)
	}
	if s.txn == nil {
		planPushdown(p.sc, a, cands)
	}
	kind := map[bool]string{true: "LEFT", false: "INNER"}[js.left]
	if js.prefix {
		var cols []string
		for _, ci := range t.pk[:len(js.keySrc)] {
			cols = append(cols, t.cols[ci].Name)
		}
		p.note("%s range lookup join %s: one key-prefix scan (%s) per row, %d at a time (ON %s)", kind, describeTable(a), strings.Join(cols, ", "), prefixScans, js.onText)
	} else if js.lookup {
		p.note("%s lookup join %s: batched point gets on its primary key (ON %s)", kind, describeTable(a), js.onText)
	} else {
		chooseAccess(p.sc, a, cands)
		p.note("%s hash join %s: %s builds a hash table (at most %d rows) (ON %s)", kind, describeTable(a), a.keyDesc, HashJoinMaxRows, js.onText)
	}
	p.note("  %s: reads %s", a.alias, a.columnsDesc())
	if a.pushed != nil {
		p.note("  %s: pushed down to tablet servers: %s", a.alias, strings.Join(a.pushed.desc, " AND "))
	}
	return js, nil
}

// run executes the plan's FROM/JOIN/WHERE part, calling h with every
// qualifying combined row. h returns false to stop.
func (s *Session) run(ctx context.Context, p *selectPlan, h func(row []Datum) (bool, error)) error {
	if p.driving == nil {
		more, err := s.filterEmit(p, nil, h)
		_ = more
		return err
	}
	// Build the hash tables first.
	for _, js := range p.joins {
		if !js.lookup {
			if err := s.buildHash(ctx, js); err != nil {
				return err
			}
		}
	}
	stage := func(row []Datum) (bool, error) { return s.filterEmit(p, row, h) }
	for i := len(p.joins) - 1; i >= 0; i-- {
		stage = s.joinStage(ctx, p.joins[i], stage)
	}
	flushers := p.joins
	err := s.read(ctx, p.driving, func(vals []Datum, _ []byte, _ uint64) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return stage(vals)
	})
	if err != nil {
		if err == errStop {
			return nil
		}
		return err
	}
	// Flush buffered lookup batches, in join order.
	for _, js := range flushers {
		if js.flush != nil {
			if _, err := js.flush(); err != nil {
				if err == errStop {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

var errStop = fmt.Errorf("stop")

func (s *Session) filterEmit(p *selectPlan, row []Datum, h func(row []Datum) (bool, error)) (bool, error) {
	if p.where != nil {
		t, err := evalTruth(p.where, row)
		if err != nil {
			return false, err
		}
		if t != tTrue {
			return true, nil
		}
	}
	return h(row)
}

func (s *Session) buildHash(ctx context.Context, js *joinStep) error {
	js.build = map[string][][]Datum{}
	n, size := 0, 0
	a := *js.acc
	return s.readAll(ctx, &a, func(vals []Datum) error {
		var kb strings.Builder
		for _, rc := range js.hashR {
			if vals[rc].IsNull() {
				return nil
			}
			kb.WriteString(keyOf(vals[rc]))
			kb.WriteByte(0)
		}
		n++
		size += datumSize(vals)
		if n > HashJoinMaxRows || size > HashJoinMaxBytes {
			return errf(CodeResource, "hash join: table %s has more rows than fit the hash join's memory bound (%d rows, %d MiB); join on its full primary key to use a lookup join, or filter it", js.acc.t.name, HashJoinMaxRows, HashJoinMaxBytes>>20)
		}
		js.build[kb.String()] = append(js.build[kb.String()], vals)
		return nil
	})
}

func (s *Session) readAll(ctx context.Context, a *access, f func(vals []Datum) error) error {
	if s.txn != nil && s.txn.touched {
		return errf(CodeTransaction, "joins are not supported inside a transaction once it wrote a row (it may touch one row)")
	}
	return s.read(ctx, a, func(vals []Datum, _ []byte, _ uint64) (bool, error) {
		return true, f(vals)
	})
}

// joinStage returns the function that joins one left row (or a batch of
// them, for lookups) and passes combined rows to next.
func (s *Session) joinStage(ctx context.Context, js *joinStep, next func([]Datum) (bool, error)) func([]Datum) (bool, error) {
	rwidth := len(js.acc.t.cols)
	emit := func(left []Datum, matches [][]Datum) (bool, error) {
		found := false
		for _, r := range matches {
			row := make([]Datum, 0, len(left)+rwidth)
			row = append(append(row, left...), r...)
			if js.on != nil {
				t, err := evalTruth(js.on, row)
				if err != nil {
					return false, err
				}
				if t != tTrue {
					continue
				}
			}
			found = true
			if more, err := next(row); err != nil || !more {
				return more, err
			}
		}
		if !found && js.left {
			row := make([]Datum, len(left)+rwidth)
			copy(row, left)
			return next(row)
		}
		return true, nil
	}
	if !js.lookup {
		return func(left []Datum) (bool, error) {
			var kb strings.Builder
			for _, li := range js.hashL {
				if left[li].IsNull() {
					return emit(left, nil)
				}
				kb.WriteString(keyOf(left[li]))
				kb.WriteByte(0)
			}
			return emit(left, js.build[kb.String()])
		}
	}
	t := js.acc.t
	// Batches of left rows are looked up with one BatchGet each; up to
	// lookupInFlight of them run at once and are emitted in order.
	type pending struct {
		batch   [][]Datum
		idx     []int // batch row -> index in keys, -1: cannot match
		matches [][][]Datum
		err     error
		done    chan struct{}
	}
	var batch [][]Datum
	var queue []*pending
	launch := func() {
		p := &pending{batch: batch, idx: make([]int, len(batch)), done: make(chan struct{})}
		batch = nil
		var keys [][]byte
		for i, left := range p.batch {
			p.idx[i] = -1
			var k []byte
			ok := true
			for j, li := range js.keySrc {
				col := t.cols[t.pk[j]]
				v, exact := exactConvert(left[li], col.Type)
				if !exact {
					ok = false
					break
				}
				k = encodeValue(k, v, col.Type, true)
			}
			if !ok {
				continue
			}
			p.idx[i] = len(keys)
			keys = append(keys, k)
		}
		queue = append(queue, p)
		if len(keys) == 0 {
			close(p.done)
			return
		}
		opts := s.readOpts(js.acc)
		go func() {
			defer close(p.done)
			p.matches = make([][][]Datum, len(keys))
			if !js.prefix {
				got, err := t.kv.BatchGet(ctx, keys, opts...)
				if err != nil {
					p.err = storageErr(err, "lookup join "+t.name)
					return
				}
				for i, r := range got {
					vals, _, ok, err := t.decodeRow(r)
					if err != nil {
						p.err = err
						return
					}
					if ok {
						p.matches[i] = [][]Datum{vals}
					}
				}
				return
			}
			// Range lookups: prefixScans scans at a time.
			var mu sync.Mutex
			var total int
			sem := make(chan struct{}, prefixScans)
			var wg sync.WaitGroup
			for i, k := range keys {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					sc := t.kv.Scan(ctx, kvclient.ScanOptions{Start: k, End: prefixEnd(k), Read: opts})
					defer sc.Close()
					var rows [][]Datum
					for sc.Next() {
						vals, _, ok, err := t.decodeRow(sc.Row())
						if err == nil && ok {
							rows = append(rows, vals)
						}
						if err != nil {
							mu.Lock()
							p.err = err
							mu.Unlock()
							return
						}
					}
					mu.Lock()
					defer mu.Unlock()
					if err := sc.Err(); err != nil && p.err == nil {
						p.err = storageErr(err, "range lookup join "+t.name)
					}
					p.matches[i] = rows
					total += len(rows)
					if total > HashJoinMaxRows && p.err == nil {
						p.err = errf(CodeResource, "range lookup join: more than %d rows of %s match one batch of %d rows", HashJoinMaxRows, t.name, lookupBatch)
					}
				}()
			}
			wg.Wait()
		}()
	}
	drain := func(all bool) (bool, error) {
		for len(queue) > 0 && (all || len(queue) >= lookupInFlight) {
			p := queue[0]
			queue = queue[1:]
			<-p.done
			if p.err != nil {
				return false, p.err
			}
			for i, left := range p.batch {
				var m [][]Datum
				if p.idx[i] >= 0 {
					m = p.matches[p.idx[i]]
				}
				more, err := emit(left, m)
				if err != nil {
					return false, err
				}
				if !more {
					return false, errStop
				}
			}
		}
		return true, nil
	}
	js.flush = func() (bool, error) {
		if len(batch) > 0 {
			launch()
		}
		return drain(true)
	}
	return func(left []Datum) (bool, error) {
		batch = append(batch, left)
		if len(batch) >= lookupBatch {
			launch()
			return drain(false)
		}
		return true, nil
	}
}

// lookupInFlight bounds the concurrent batches of one lookup join, and
// prefixScans the concurrent scans of one range-lookup batch.
const (
	lookupInFlight = 4
	prefixScans    = 8
)

// execSelectOnce runs a SELECT at s.readTS. Unless the statement already
// checked the catalog, the cached schemas are checked while the query
// runs; if one was stale the query runs again with the current schemas.
func (s *Session) execSelectOnce(ctx context.Context, st *ast.SelectStmt) (*Result, error) {
	var p *selectPlan
	var err error
	if pp := s.point; pp != nil && pp.stmt == st && !s.fresh {
		p, err = pp.plan(ctx, s) // a prepared point SELECT
	} else {
		p, err = s.planSelect(ctx, st, false)
	}
	if err != nil || s.fresh {
		if err != nil && !s.fresh {
			// An unknown column may come from a stale cache: retry fresh.
			s.fresh = true
			return s.execSelect(ctx, st)
		}
		if err != nil {
			return nil, err
		}
		return s.runSelect(ctx, p)
	}
	var ts []*table
	recent := true
	if p.driving != nil {
		ts = append(ts, p.driving.t)
	}
	for _, js := range p.joins {
		ts = append(ts, js.acc.t)
	}
	for _, t := range ts {
		if cur, checked := s.cache.get(t.name); cur != t || time.Since(checked) > recheckAfter {
			recent = false
		}
	}
	if recent {
		res, err := s.runSelect(ctx, p)
		if errors.Is(err, ErrUnknownTable) {
			// Dropped (and maybe re-created) through another client.
			for _, t := range ts {
				s.cache.drop(t.name)
			}
			s.fresh = true
			return s.execSelect(ctx, st)
		}
		return res, err
	}
	type check struct {
		stale []string
		err   error
	}
	done := make(chan check, 1)
	go func() {
		stale, err := s.staleTables(ctx, ts)
		done <- check{stale, err}
	}()
	res, err := s.runSelect(ctx, p)
	c := <-done
	if c.err != nil {
		return nil, storageErr(c.err, "check catalog")
	}
	if len(c.stale) == 0 {
		for _, t := range ts {
			s.cache.confirm(t)
		}
		return res, err
	}
	for _, name := range c.stale {
		s.cache.drop(name)
	}
	s.fresh = true
	return s.execSelect(ctx, st)
}

func (s *Session) runSelect(ctx context.Context, p *selectPlan) (*Result, error) {
	if s.readImplicit && len(p.joins) == 0 && p.driving != nil && len(p.driving.points) == 1 {
		// One row of one tablet: its latest version, read under the
		// leader's lease, is a snapshot at the read's own moment, and
		// costs no raft round to close a timestamp.
		defer func(ts int64) { s.readTS = ts }(s.readTS)
		s.readTS = 0
	}
	res := &Result{Columns: p.names, Types: p.types}
	project := func(row []Datum) ([]Datum, error) {
		out := make([]Datum, len(p.fields))
		for i, f := range p.fields {
			v, err := f.eval(row)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	streaming := len(p.order) == 0 || p.sorted
	streaming = streaming && !p.distinct && p.agg == nil
	type sortRow struct {
		out  []Datum
		keys []Datum
	}
	var collected []sortRow
	skipped := 0
	post := func(row []Datum) (bool, error) {
		if p.having != nil {
			t, err := evalTruth(p.having, row)
			if err != nil {
				return false, err
			}
			if t != tTrue {
				return true, nil
			}
		}
		out, err := project(row)
		if err != nil {
			return false, err
		}
		if streaming {
			if skipped < p.offset {
				skipped++
				return true, nil
			}
			if p.limit >= 0 && len(res.Rows) >= p.limit {
				return false, nil
			}
			res.Rows = append(res.Rows, out)
			return p.limit < 0 || len(res.Rows) < p.limit, nil
		}
		sr := sortRow{out: out}
		for _, o := range p.order {
			if o.out >= 0 {
				sr.keys = append(sr.keys, out[o.out])
				continue
			}
			v, err := o.e.eval(row)
			if err != nil {
				return false, err
			}
			sr.keys = append(sr.keys, v)
		}
		collected = append(collected, sr)
		if len(collected) > maxSortRows {
			return false, errf(CodeResource, "query needs more than %d rows in memory to sort, group or deduplicate; add a LIMIT on the key order or a narrower WHERE", maxSortRows)
		}
		return true, nil
	}
	if p.agg != nil {
		ag := newAggregator(p.agg)
		if err := s.run(ctx, p, func(row []Datum) (bool, error) { return true, ag.push(row) }); err != nil {
			return nil, err
		}
		for _, r := range ag.rows() {
			if _, err := post(r); err != nil {
				return nil, err
			}
		}
	} else if p.limit == 0 {
		return res, nil
	} else if err := s.run(ctx, p, post); err != nil {
		return nil, err
	}
	if streaming {
		if res.Rows == nil {
			res.Rows = [][]Datum{}
		}
		return res, nil
	}
	var sortErr error
	if len(p.order) > 0 && !p.sorted {
		sort.SliceStable(collected, func(i, j int) bool {
			for k, o := range p.order {
				c := cmpNullsFirst(collected[i].keys[k], collected[j].keys[k], &sortErr)
				if c != 0 {
					if o.desc {
						return c > 0
					}
					return c < 0
				}
			}
			return false
		})
		if sortErr != nil {
			return nil, sortErr
		}
	}
	seen := map[string]bool{}
	res.Rows = [][]Datum{}
	for _, r := range collected {
		if p.distinct {
			var kb strings.Builder
			for _, v := range r.out {
				kb.WriteString(keyOf(v))
				kb.WriteByte(0)
			}
			if seen[kb.String()] {
				continue
			}
			seen[kb.String()] = true
		}
		if skipped < p.offset {
			skipped++
			continue
		}
		if p.limit >= 0 && len(res.Rows) >= p.limit {
			break
		}
		res.Rows = append(res.Rows, r.out)
	}
	return res, nil
}

const maxSortRows = 2_000_000

// cmpNullsFirst orders NULL before every value (MySQL's ascending order).
func cmpNullsFirst(a, b Datum, errp *error) int {
	switch {
	case a.IsNull() && b.IsNull():
		return 0
	case a.IsNull():
		return -1
	case b.IsNull():
		return 1
	}
	c, err := compare(a, b)
	if err != nil && *errp == nil {
		*errp = err
	}
	return c
}
