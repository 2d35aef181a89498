package sqllite

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shaledb/shale/kvclient"
)

// access is how one table is read.
type access struct {
	t      *table
	alias  string
	points [][]byte // point gets (nil: range scan)
	start  []byte   // range scan [start, end); nil: unbounded
	end    []byte
	// reverse scans in descending key order (ORDER BY key DESC).
	reverse bool
	// limit stops the scan early (0: none); set only when every filter is
	// exact on the scan.
	limit int
	// keyDesc describes the range for EXPLAIN.
	keyDesc string
	// eqPrefix counts the leading key columns fixed by equality.
	eqPrefix int
	// needed are the non-key column indexes to read.
	needed []int
	// pushed are the conditions evaluated by the tablet server.
	pushed *pushdown
}

// splitAnd flattens a conjunction.
func splitAnd(e ast.ExprNode) []ast.ExprNode {
	if e == nil {
		return nil
	}
	if p, ok := e.(*ast.ParenthesesExpr); ok {
		return splitAnd(p.Expr)
	}
	if b, ok := e.(*ast.BinaryOperationExpr); ok && b.Op == opcode.LogicAnd {
		return append(splitAnd(b.L), splitAnd(b.R)...)
	}
	return []ast.ExprNode{e}
}

func unparen(e ast.ExprNode) ast.ExprNode {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// constValue returns the value of a constant expression (literal, or
// negated literal).
func constValue(e ast.ExprNode) (Datum, bool) {
	e = unparen(e)
	switch x := e.(type) {
	case *driver.ValueExpr:
		v, err := literal(x)
		return v, err == nil
	case *ast.UnaryOperationExpr:
		if x.Op == opcode.Minus {
			if v, ok := constValue(x.V); ok && !v.IsNull() {
				r, err := arith(opcode.Minus, intDatum(0), v)
				return r, err == nil
			}
		}
	}
	return nullDatum, false
}

// exactConvert converts a constant to a column's type only when no
// information is lost (so a key range or a pushed-down comparison on the
// encoded value means the same as the SQL comparison).
func exactConvert(v Datum, t Type) (Datum, bool) {
	if v.IsNull() {
		return v, false
	}
	c, err := convert(v, t, "")
	if err != nil {
		return nullDatum, false
	}
	vStr := v.Kind == KindString || v.Kind == KindBytes
	if (t.Kind == KindString || t.Kind == KindBytes) && !vStr {
		return nullDatum, false // strcol = 5 compares numerically ('5.0' = 5): not a byte range
	}
	if t.Kind == KindBool && vStr {
		return nullDatum, false
	}
	// A string constant against a number or time column is converted the
	// way compare converts it; the check below proves the result equal.
	if x, err := compare(c, v); err != nil || x != 0 {
		return nullDatum, false
	}
	return c, true
}

// colCmp matches "col op const" (either side) for a column of tbl in sc.
type colCmp struct {
	ci int // column index in the table
	op opcode.Op
	v  Datum // converted exactly to the column type
}

var flipOp = map[opcode.Op]opcode.Op{opcode.EQ: opcode.EQ, opcode.NE: opcode.NE, opcode.LT: opcode.GT, opcode.LE: opcode.GE, opcode.GT: opcode.LT, opcode.GE: opcode.LE}

func matchColCmp(sc *scope, tblAlias string, e ast.ExprNode) ([]colCmp, bool) {
	e = unparen(e)
	colOf := func(n ast.ExprNode) (int, bool) {
		cn, ok := unparen(n).(*ast.ColumnNameExpr)
		if !ok {
			return 0, false
		}
		i, err := sc.resolve(cn.Name)
		if err != nil || sc.cols[i].table != tblAlias || sc.cols[i].ci < 0 {
			return 0, false
		}
		return sc.cols[i].ci, true
	}
	tblOf := func() *table {
		for _, c := range sc.cols {
			if c.table == tblAlias {
				return c.tbl
			}
		}
		return nil
	}
	switch x := e.(type) {
	case *ast.BinaryOperationExpr:
		op, ok := flipOp[x.Op]
		if !ok {
			return nil, false
		}
		if ci, ok := colOf(x.L); ok {
			if v, ok := constValue(x.R); ok {
				if c, ok := exactConvert(v, tblOf().cols[ci].Type); ok {
					return []colCmp{{ci, x.Op, c}}, true
				}
			}
		}
		if ci, ok := colOf(x.R); ok {
			if v, ok := constValue(x.L); ok {
				if c, ok := exactConvert(v, tblOf().cols[ci].Type); ok {
					return []colCmp{{ci, op, c}}, true
				}
			}
		}
	case *ast.BetweenExpr:
		if x.Not {
			return nil, false
		}
		if ci, ok := colOf(x.Expr); ok {
			lo, ok1 := constValue(x.Left)
			hi, ok2 := constValue(x.Right)
			if ok1 && ok2 {
				t := tblOf().cols[ci].Type
				l, ok1 := exactConvert(lo, t)
				h, ok2 := exactConvert(hi, t)
				if ok1 && ok2 {
					return []colCmp{{ci, opcode.GE, l}, {ci, opcode.LE, h}}, true
				}
			}
		}
	case *ast.PatternLikeOrIlikeExpr:
		// col LIKE 'prefix%' on a string key column is the key range
		// [prefix, prefixEnd) (binary collation).
		ci, ok := colOf(x.Expr)
		if !ok || x.Not || !x.IsLike || tblOf().cols[ci].Type.Kind != KindString {
			return nil, false
		}
		pv, ok := constValue(x.Pattern)
		if !ok || pv.Kind != KindString {
			return nil, false
		}
		pat := pv.Value.(string)
		if !strings.HasSuffix(pat, "%") {
			return nil, false
		}
		prefix := pat[:len(pat)-1]
		if prefix == "" || strings.ContainsAny(prefix, "%_\\") || (x.Escape != 0 && x.Escape != '\\' && strings.IndexByte(prefix, x.Escape) >= 0) {
			return nil, false
		}
		end := prefixEnd([]byte(prefix))
		if end == nil || !utf8.Valid(end) {
			return nil, false
		}
		return []colCmp{{ci, opcode.GE, strDatum(prefix)}, {ci, opcode.LT, strDatum(string(end))}}, true
	case *ast.PatternInExpr:
		if x.Not || x.Sel != nil {
			return nil, false
		}
		if ci, ok := colOf(x.Expr); ok {
			var out []colCmp
			for _, le := range x.List {
				v, ok := constValue(le)
				if !ok {
					return nil, false
				}
				c, ok := exactConvert(v, tblOf().cols[ci].Type)
				if !ok {
					return nil, false
				}
				out = append(out, colCmp{ci, opcode.In, c})
			}
			return out, true
		}
	}
	return nil, false
}

// chooseAccess derives point gets or a key range from the conjuncts and
// returns the indexes of the conjuncts the key access enforces exactly
// (the client still evaluates every conjunct on every row).
func chooseAccess(sc *scope, a *access, conj []ast.ExprNode) map[int]bool {
	t := a.t
	type bound struct {
		v     Datum
		incl  bool
		valid bool
		conj  int
	}
	eq := map[int]bound{}
	in := map[int][]Datum{}
	inConj := map[int]int{}
	lo, hi := map[int]bound{}, map[int]bound{}
	ncmp := map[int]int{} // conjunct -> number of key comparisons it yields
	for i, e := range conj {
		cmps, ok := matchColCmp(sc, a.alias, e)
		if !ok {
			continue
		}
		allPK := true
		for _, c := range cmps {
			if !t.isPK[c.ci] {
				allPK = false
			}
		}
		if !allPK {
			continue
		}
		ncmp[i] = len(cmps)
		for _, c := range cmps {
			switch c.op {
			case opcode.EQ:
				eq[c.ci] = bound{v: c.v, valid: true, conj: i}
			case opcode.In:
				if _, seen := inConj[c.ci]; seen && inConj[c.ci] != i {
					continue
				}
				inConj[c.ci] = i
				in[c.ci] = append(in[c.ci], c.v)
			case opcode.GT, opcode.GE:
				if b := lo[c.ci]; !b.valid || mustCmp(c.v, b.v) >= 0 {
					lo[c.ci] = bound{c.v, c.op == opcode.GE, true, i}
				}
			case opcode.LT, opcode.LE:
				if b := hi[c.ci]; !b.valid || mustCmp(c.v, b.v) <= 0 {
					hi[c.ci] = bound{c.v, c.op == opcode.LE, true, i}
				}
			}
		}
	}
	used := map[int]int{} // conjunct -> comparisons of it the access uses
	var prefix []byte
	var desc []string
	finish := func() map[int]bool {
		exact := map[int]bool{}
		for ci, n := range used {
			if ncmp[ci] == n {
				exact[ci] = true
			}
		}
		return exact
	}
	for i, ci := range t.pk {
		col := t.cols[ci]
		if b, ok := eq[ci]; ok {
			a.eqPrefix = i + 1
			used[b.conj]++
			prefix = encodeValue(prefix, b.v, col.Type, true)
			desc = append(desc, col.Name+" = "+quoteVal(b.v))
			if i == len(t.pk)-1 {
				a.points = [][]byte{prefix}
				a.keyDesc = "point get (" + strings.Join(desc, ", ") + ")"
				return finish()
			}
			continue
		}
		if vs, ok := in[ci]; ok && i == len(t.pk)-1 && len(vs) <= 10000 {
			used[inConj[ci]] += len(vs)
			seen := map[string]bool{}
			for _, v := range vs {
				k := encodeValue(append([]byte(nil), prefix...), v, col.Type, true)
				if !seen[string(k)] {
					seen[string(k)] = true
					a.points = append(a.points, k)
				}
			}
			// Points are read in key order.
			sortKeys(a.points)
			a.keyDesc = fmt.Sprintf("batch get of %d keys (%s IN ...)", len(a.points), col.Name)
			if len(desc) > 0 {
				a.keyDesc += " with " + strings.Join(desc, ", ")
			}
			return finish()
		}
		a.start = append([]byte(nil), prefix...)
		a.end = prefixEnd(prefix)
		if len(prefix) == 0 {
			a.start, a.end = nil, nil
		}
		if b := lo[ci]; b.valid {
			used[b.conj]++
			k := encodeValue(append([]byte(nil), prefix...), b.v, col.Type, true)
			if !b.incl {
				k = prefixEnd(k)
			}
			a.start = k
			desc = append(desc, col.Name+map[bool]string{true: " >= ", false: " > "}[b.incl]+quoteVal(b.v))
		}
		if b := hi[ci]; b.valid {
			used[b.conj]++
			k := encodeValue(append([]byte(nil), prefix...), b.v, col.Type, true)
			if b.incl {
				k = prefixEnd(k)
			}
			a.end = k
			desc = append(desc, col.Name+map[bool]string{true: " <= ", false: " < "}[b.incl]+quoteVal(b.v))
		}
		break
	}
	if len(desc) == 0 {
		a.keyDesc = "full table scan"
	} else {
		a.keyDesc = "range scan (" + strings.Join(desc, ", ") + ")"
	}
	if a.start != nil && a.end != nil && bytes.Compare(a.start, a.end) >= 0 {
		a.points = [][]byte{} // empty range
		a.keyDesc = "empty range (" + strings.Join(desc, ", ") + ")"
	}
	return finish()
}

func mustCmp(a, b Datum) int {
	c, _ := compare(a, b)
	return c
}

func sortKeys(ks [][]byte) {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && bytes.Compare(ks[j-1], ks[j]) > 0; j-- {
			ks[j-1], ks[j] = ks[j], ks[j-1]
		}
	}
}

// columnsDesc lists the columns a read fetches, for EXPLAIN.
func (a *access) columnsDesc() string {
	names := []string{"key"}
	for _, ci := range a.needed {
		names = append(names, a.t.cols[ci].Name)
	}
	return "columns (" + strings.Join(names, ", ") + ")"
}

// readOpts returns the read options for the needed columns.
func (a *access) readOpts() []kvclient.ReadOption {
	cols := []kvclient.Column{{Family: family, Qualifier: versionQual}}
	for _, ci := range a.needed {
		cols = append(cols, kvclient.Column{Family: family, Qualifier: a.t.quals[ci]})
	}
	opts := []kvclient.ReadOption{kvclient.Columns(cols...)}
	if a.pushed != nil {
		opts = append(opts, a.pushed.readOption())
	}
	return opts
}

// rowHandler receives decoded rows; it returns false to stop.
type rowHandler func(vals []Datum, key []byte, version uint64) (bool, error)

// read streams the table's rows in key order (or reverse).
func (s *Session) read(ctx context.Context, a *access, h rowHandler) error {
	if s.txn != nil && (s.txn.touched || s.readTS == 0) {
		// A transaction that wrote reads its row from its buffer (and
		// only that row); before that, its reads see its snapshot.
		return s.txnRead(ctx, a, h)
	}
	if a.points != nil {
		if len(a.points) == 0 {
			return nil
		}
		var rows []*kvclient.Row
		if len(a.points) == 1 {
			r, err := a.t.kv.Get(ctx, a.points[0], s.readOpts(a)...)
			if err != nil {
				return storageErr(err, "read "+a.t.name)
			}
			rows = []*kvclient.Row{r}
		} else {
			var err error
			if rows, err = a.t.kv.BatchGet(ctx, a.points, s.readOpts(a)...); err != nil {
				return storageErr(err, "read "+a.t.name)
			}
		}
		if a.reverse {
			for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
				rows[i], rows[j] = rows[j], rows[i]
			}
		}
		for _, r := range rows {
			if r != nil {
				s.rowsRead++
			}
			vals, ver, ok, err := a.t.decodeRow(r)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if more, err := h(vals, r.Key, ver); err != nil || !more {
				return err
			}
		}
		return nil
	}
	sc := a.t.kv.Scan(ctx, kvclient.ScanOptions{Start: a.start, End: a.end, Reverse: a.reverse, Limit: a.limit, Read: s.readOpts(a)})
	defer sc.Close()
	for sc.Next() {
		r := sc.Row()
		s.rowsRead++
		vals, ver, ok, err := a.t.decodeRow(r)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		more, err := h(vals, r.Key, ver)
		if err != nil || !more {
			return err
		}
	}
	return storageErr(sc.Err(), "scan "+a.t.name)
}

// tableScope builds the scope of one table's columns.
func tableScope(t *table, alias string) []scopeCol {
	out := make([]scopeCol, len(t.cols))
	for i, c := range t.cols {
		out[i] = scopeCol{table: alias, name: strings.ToLower(c.Name), disp: c.Name, tbl: t, ci: i}
	}
	return out
}

// usedColumns lists the non-key columns of the table (by alias) referenced
// anywhere in the nodes.
func usedColumns(sc *scope, alias string, t *table, all bool, nodes ...ast.Node) []int {
	used := make([]bool, len(t.cols))
	if all {
		for i := range used {
			used[i] = true
		}
	} else {
		v := &colFinder{sc: sc, alias: alias, used: used}
		for _, n := range nodes {
			if n != nil {
				n.Accept(v)
			}
		}
	}
	var out []int
	for i, u := range used {
		if u && !t.isPK[i] {
			out = append(out, i)
		}
	}
	return out
}

type colFinder struct {
	sc    *scope
	alias string
	used  []bool
}

func (f *colFinder) Enter(n ast.Node) (ast.Node, bool) {
	var name *ast.ColumnName
	switch x := n.(type) {
	case *ast.ColumnNameExpr:
		name = x.Name
	case *ast.ColumnName:
		name = x
	}
	if name != nil {
		for _, c := range f.sc.cols {
			if c.table == f.alias && c.name == name.Name.L && (name.Table.L == "" || name.Table.L == c.table) {
				f.used[c.ci] = true
			}
		}
	}
	return n, false
}

func (f *colFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }
