package sqltest

// The differential test: random tables, data and queries run on Shale and
// on SQLite (the Debian sqlite3 CLI) over the same rows; the answers must
// agree.
//
// Query shapes (-diff.shapes): filter (WHERE over any column), range (key
// equality/ranges/IN/prefixes, plus other predicates), order (ORDER BY
// random columns then the whole key, so the order is total, with
// LIMIT/OFFSET), agg (COUNT/SUM/MIN/MAX/AVG, GROUP BY, HAVING), join
// (INNER and LEFT equi-joins through the other table's key and on non-key
// columns, and aggregates over them). After the queries, each round runs
// -diff.dml writes (UPDATE/DELETE with any WHERE, REPLACE of old and new
// keys) and compares the whole table after each, and DELETE counts.
// Tables are pre-split at random keys (COMMENT 'SPLIT AT ...') in most
// rounds, so scans cross tablets.
//
// Shapes whose semantics differ between MySQL (the engine's dialect) and
// SQLite are not generated:
//   - no / (integer division in SQLite, exact in MySQL) and no %;
//   - text is lowercase ASCII without spaces, so binary collation
//     (SQLite), case-insensitive collation and PAD SPACE (MySQL) agree, and
//     LIKE's case-insensitivity in SQLite does not matter;
//   - no comparison across types (text vs number), no booleans in
//     arithmetic, SUM/AVG only of numbers, MIN/MAX not of booleans;
//   - LIMIT only under a total order; no bare columns with GROUP BY;
//   - values stay small, so there is no overflow.
//
// Results are compared after normalising: booleans as 0/1, numbers by
// value (3.0 = 3; non-integers rounded to 10 significant digits, which
// absorbs float summation order in AVG), text quoted; rows as a multiset
// unless the query's ORDER BY fixes the order.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	sqllite "github.com/shaledb/shale/sql-lite"
)

var (
	flagDiffSize   = flag.Int("diff.size", 2, "differential test: rounds (each a fresh pair of random tables; -diff.size 4 or more for a longer search)")
	flagDiffRows   = flag.Int("diff.rows", 60, "differential test: rows per table")
	flagDiffQ      = flag.Int("diff.queries", 80, "differential test: queries per round")
	flagDiffShapes = flag.String("diff.shapes", "filter,range,order,agg,join", "differential test: query shapes to generate")
	flagDiffMax    = flag.Int("diff.maxreport", 15, "differential test: mismatches reported in full")
	flagDiffDML    = flag.Int("diff.dml", 15, "differential test: UPDATE/DELETE/REPLACE statements per round, each followed by a comparison of the whole table")
)

type colType int

const (
	tInt colType = iota
	tDouble
	tText
	tBool
)

func (c colType) sql() string {
	return [...]string{"BIGINT", "DOUBLE", "VARCHAR(8)", "BOOLEAN"}[c]
}

type column struct {
	name    string
	typ     colType
	key     bool
	notNull bool // added by ALTER ... NOT NULL DEFAULT
}

type table struct {
	name string
	cols []column
	nkey int     // the first nkey columns are the primary key
	rows [][]any // nil, int64, float64, string, bool
	// splits are first-key-column values the Shale table is pre-split at
	// (so that scans, reverse scans and limits cross tablets).
	splits []any
	// rowCols names the columns of rows (cols changes with ALTER TABLE).
	rowCols []string
	nalter  int
}

// shaleDDL is ddl() plus the pre-split rows (COMMENT 'SPLIT AT ...').
func (t *table) shaleDDL() string {
	if len(t.splits) == 0 {
		return t.ddl()
	}
	var tuples []string
	for _, v := range t.splits {
		tuples = append(tuples, "("+literal(v)+")")
	}
	return t.ddl() + " COMMENT '" + strings.ReplaceAll("SPLIT AT "+strings.Join(tuples, ", "), "'", "''") + "'"
}

func (t *table) ddl() string {
	var parts, keys []string
	for _, c := range t.cols {
		parts = append(parts, c.name+" "+c.typ.sql())
		if c.key {
			keys = append(keys, c.name)
		}
	}
	return fmt.Sprintf("CREATE TABLE %s (%s, PRIMARY KEY (%s))", t.name, strings.Join(parts, ", "), strings.Join(keys, ", "))
}

func (t *table) inserts() []string {
	var out []string
	for i := 0; i < len(t.rows); i += 50 {
		var vals []string
		for _, r := range t.rows[i:min(i+50, len(t.rows))] {
			var lits []string
			for _, v := range r {
				lits = append(lits, literal(v))
			}
			vals = append(vals, "("+strings.Join(lits, ", ")+")")
		}
		out = append(out, fmt.Sprintf("INSERT INTO %s VALUES %s", t.name, strings.Join(vals, ", ")))
	}
	return out
}

func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case bool:
		if v {
			return "TRUE"
		}
		return "FALSE"
	}
	panic(fmt.Sprintf("literal of %T", v))
}

// gen holds one round's random state.
type gen struct {
	r *rand.Rand
}

func (g *gen) pick(n int) int { return g.r.IntN(n) }
func (g *gen) chance(p float64) bool {
	return g.r.Float64() < p
}

var textAlphabet = []string{"", "a", "b", "c", "aa", "ab", "abc", "b", "ba", "bab", "ca", "cc", "x", "xyz", "o'k", "a_b", "5%"}

// value returns a random non-NULL value of typ. Ints, doubles (multiples
// of 1/4, exact in binary) and texts come from small domains, so that
// equality filters, groups and joins hit.
func (g *gen) value(typ colType) any {
	switch typ {
	case tInt:
		if g.chance(0.03) {
			return []int64{1 << 40, -(1 << 40), 1<<31 + 7, -(1 << 31) - 3}[g.pick(4)]
		}
		return int64(g.r.IntN(18) - 4)
	case tDouble:
		if g.chance(0.03) {
			return []float64{1e12, -1e12, 0.125, -0.0625}[g.pick(4)]
		}
		return float64(g.r.IntN(48)-12) / 4
	case tText:
		return textAlphabet[g.pick(len(textAlphabet))]
	default:
		return g.chance(0.5)
	}
}

func (g *gen) table(name string, forceIntKey bool, rows int) *table {
	t := &table{name: name}
	nkey := 1
	if g.chance(0.5) {
		nkey = 2
	}
	for i := 0; i < nkey; i++ {
		typ := []colType{tInt, tInt, tInt, tText, tText, tDouble, tBool}[g.pick(7)]
		if forceIntKey || (nkey == 1 && typ == tBool) {
			typ = tInt
		}
		t.cols = append(t.cols, column{name: fmt.Sprintf("k%d", i), typ: typ, key: true})
	}
	t.nkey = nkey
	// Non-key columns: two ints (for joins on one or two columns) and 1-3
	// more.
	t.cols = append(t.cols, column{name: "c0", typ: tInt}, column{name: "c1", typ: tInt})
	for i := 2; i <= 2+g.pick(3); i++ {
		t.cols = append(t.cols, column{name: fmt.Sprintf("c%d", i), typ: colType(g.pick(4))})
	}
	seen := map[string]bool{}
	for tries := 0; len(t.rows) < rows && tries < rows*20; tries++ {
		row := make([]any, len(t.cols))
		for i, c := range t.cols {
			if c.key {
				row[i] = g.keyValue(c.typ, i, nkey, rows)
			} else if g.chance(0.2) {
				row[i] = nil
			} else {
				row[i] = g.value(c.typ)
			}
		}
		k := fmt.Sprint(row[:nkey]...)
		if seen[k] {
			continue
		}
		seen[k] = true
		t.rows = append(t.rows, row)
	}
	for _, c := range t.cols {
		t.rowCols = append(t.rowCols, c.name)
	}
	if len(t.rows) > 0 && g.chance(0.6) {
		seenSplit := map[string]bool{}
		for n := 1 + g.pick(3); n > 0; n-- {
			v := t.rows[g.pick(len(t.rows))][0]
			if k := fmt.Sprint(v); !seenSplit[k] {
				seenSplit[k] = true
				t.splits = append(t.splits, v)
			}
		}
	}
	return t
}

// keyValue draws a key column value: the first column of a composite key
// from a small domain (so prefixes repeat), single keys from a wider one.
func (g *gen) keyValue(typ colType, i, nkey, rows int) any {
	switch typ {
	case tInt:
		if nkey == 2 && i == 0 {
			return int64(g.r.IntN(6))
		}
		if g.chance(0.03) {
			return []int64{1 << 40, -(1 << 40), 1<<31 + 7, -(1 << 31) - 3}[g.pick(4)]
		}
		return int64(g.r.IntN(rows*2) - rows/4)
	case tDouble:
		return float64(g.r.IntN(rows*2)-rows/2) / 4
	case tText:
		if nkey == 2 && i == 0 {
			// Includes "" and prefixes of each other ("a", "aa", "ab"),
			// which an order-preserving composite encoding must keep
			// apart and in order.
			return textAlphabet[g.pick(6)]
		}
		var b strings.Builder
		for n := 1 + g.pick(4); n > 0; n-- {
			b.WriteByte("abcxyz"[g.pick(6)])
		}
		return b.String()
	default:
		return g.chance(0.5)
	}
}

// query is one generated statement, valid in both dialects.
type query struct {
	shape   string
	sql     string
	ordered bool // the ORDER BY fixes the row order
}

// colRef is a column of a table under an alias ("" when unqualified).
type colRef struct {
	qual string
	c    column
	t    *table
}

func (c colRef) String() string {
	if c.qual == "" {
		return c.c.name
	}
	return c.qual + "." + c.c.name
}

func refs(t *table, qual string) []colRef {
	var out []colRef
	for _, c := range t.cols {
		out = append(out, colRef{qual: qual, c: c, t: t})
	}
	return out
}

// sample returns a value that occurs in the column (or a random one).
func (g *gen) sample(c colRef) any {
	idx := -1
	for i, name := range c.t.rowCols {
		if name == c.c.name {
			idx = i
		}
	}
	if idx >= 0 && len(c.t.rows) > 0 && g.chance(0.7) {
		if v := c.t.rows[g.pick(len(c.t.rows))][idx]; v != nil {
			return v
		}
	}
	if c.c.key {
		return g.keyValue(c.c.typ, idx, c.t.nkey, len(c.t.rows)+1)
	}
	return g.value(c.c.typ)
}

// lit returns a literal to compare with column c: a value of its type,
// or for numeric columns sometimes one of the other numeric type (2.5 or
// 3.0 against an integer column, 3 against a double column), which both
// dialects compare by numeric value; it exercises literal conversion in
// key ranges and pushed-down filters.
func (g *gen) lit(c colRef) string {
	v := g.sample(c)
	if !g.chance(0.25) {
		return literal(v)
	}
	switch v := v.(type) {
	case int64:
		return literal(float64(v) + []float64{-0.5, 0, 0.5}[g.pick(3)])
	case float64:
		return strconv.FormatInt(int64(math.Floor(v)), 10)
	}
	return literal(v)
}

var cmpOps = []string{"=", "<>", "<", "<=", ">", ">="}

// pred returns a random boolean expression over cols.
func (g *gen) pred(cols []colRef, depth int) string {
	if depth > 0 && g.chance(0.4) {
		switch g.pick(3) {
		case 0:
			return "(" + g.pred(cols, depth-1) + " AND " + g.pred(cols, depth-1) + ")"
		case 1:
			return "(" + g.pred(cols, depth-1) + " OR " + g.pred(cols, depth-1) + ")"
		default:
			return "NOT (" + g.pred(cols, depth-1) + ")"
		}
	}
	return g.atom(cols)
}

func (g *gen) atom(cols []colRef) string {
	c := cols[g.pick(len(cols))]
	if g.chance(0.12) {
		if g.chance(0.5) {
			return c.String() + " IS NULL"
		}
		return c.String() + " IS NOT NULL"
	}
	if g.chance(0.02) {
		return c.String() + " " + cmpOps[g.pick(6)] + " NULL"
	}
	if c.c.typ != tBool && g.chance(0.04) {
		return fmt.Sprintf("COALESCE(%s, %s) %s %s", c, g.lit(c), cmpOps[g.pick(6)], g.lit(c))
	}
	switch c.c.typ {
	case tBool:
		switch g.pick(4) {
		case 0:
			return c.String()
		case 1:
			return "NOT " + c.String()
		default:
			return c.String() + " = " + literal(g.value(tBool))
		}
	case tText:
		switch g.pick(6) {
		case 0:
			pats := []string{"a%", "%b", "_a%", "ab", "%", "%c%", "x_z", "_", "a!_%' ESCAPE '!", "%!%' ESCAPE '!", "a_b%"}
			not := ""
			if g.chance(0.3) {
				not = "NOT "
			}
			return c.String() + " " + not + "LIKE '" + pats[g.pick(len(pats))] + "'"
		case 1:
			return g.inList(c)
		case 2:
			return fmt.Sprintf("%s BETWEEN %s AND %s", c, g.lit(c), g.lit(c))
		case 3:
			if o, ok := g.sameClass(cols, c); ok {
				return fmt.Sprintf("%s %s %s", c, cmpOps[g.pick(6)], o)
			}
		}
		return fmt.Sprintf("%s %s %s", c, cmpOps[g.pick(6)], g.lit(c))
	default: // int, double
		switch g.pick(7) {
		case 0:
			return g.inList(c)
		case 1:
			a, b := g.sample(c), g.sample(c)
			not := ""
			if g.chance(0.25) {
				not = "NOT "
			}
			return fmt.Sprintf("%s %sBETWEEN %s AND %s", c, not, literal(a), literal(b))
		case 2:
			if o, ok := g.sameClass(cols, c); ok {
				return fmt.Sprintf("%s %s %s", c, cmpOps[g.pick(6)], o)
			}
		case 3:
			return fmt.Sprintf("%s + %d %s %s", c, g.pick(5)+1, cmpOps[g.pick(6)], g.lit(c))
		case 4:
			return fmt.Sprintf("%s * 2 %s %s", c, cmpOps[g.pick(6)], g.lit(c))
		}
		return fmt.Sprintf("%s %s %s", c, cmpOps[g.pick(6)], g.lit(c))
	}
}

func (g *gen) inList(c colRef) string {
	var lits []string
	for n := 1 + g.pick(4); n > 0; n-- {
		lits = append(lits, g.lit(c))
	}
	if g.chance(0.1) {
		lits = append(lits, "NULL")
	}
	not := ""
	if g.chance(0.25) {
		not = "NOT "
	}
	return fmt.Sprintf("%s %sIN (%s)", c, not, strings.Join(lits, ", "))
}

// sameClass finds another column comparable with c without type
// conversions that differ between the dialects (numbers with numbers,
// text with text).
func (g *gen) sameClass(cols []colRef, c colRef) (colRef, bool) {
	var cands []colRef
	for _, o := range cols {
		if o.String() == c.String() {
			continue
		}
		num := func(t colType) bool { return t == tInt || t == tDouble }
		if (num(o.c.typ) && num(c.c.typ)) || (o.c.typ == tText && c.c.typ == tText) {
			cands = append(cands, o)
		}
	}
	if len(cands) == 0 {
		return colRef{}, false
	}
	return cands[g.pick(len(cands))], true
}

// keyPred is a predicate on the primary key: a point, a range, an IN
// list, or (composite keys) a prefix with a range on the second column.
func (g *gen) keyPred(t *table, qual string) string {
	ks := refs(t, qual)[:t.nkey]
	k0 := ks[0]
	switch g.pick(5) {
	case 0:
		var parts []string
		for _, k := range ks {
			parts = append(parts, fmt.Sprintf("%s = %s", k, g.lit(k)))
		}
		return strings.Join(parts, " AND ")
	case 1:
		a, b := g.sample(k0), g.sample(k0)
		return fmt.Sprintf("%s >= %s AND %s < %s", k0, literal(a), k0, literal(b))
	case 2:
		return g.inList(k0)
	case 3:
		if len(ks) == 2 {
			return fmt.Sprintf("%s = %s AND %s %s %s", k0, literal(g.sample(k0)), ks[1], cmpOps[2+g.pick(4)], literal(g.sample(ks[1])))
		}
		fallthrough
	default:
		return fmt.Sprintf("%s %s %s", k0, cmpOps[2+g.pick(4)], literal(g.sample(k0)))
	}
}

// projection returns a select list over cols (aliased o0, o1, ... so that
// the names are unique in both dialects).
func (g *gen) projection(cols []colRef) string {
	n := 1 + g.pick(len(cols))
	perm := g.r.Perm(len(cols))[:n]
	var out []string
	for i, p := range perm {
		c := cols[p]
		e := c.String()
		switch {
		case (c.c.typ == tInt || c.c.typ == tDouble) && g.chance(0.25):
			e = []string{e + " + 1", e + " * 3", "-" + e, "ABS(" + e + ")", "COALESCE(" + e + ", 0)"}[g.pick(5)]
		case c.c.typ == tText && g.chance(0.2):
			e = []string{"UPPER(" + e + ")", "LENGTH(" + e + ")", "COALESCE(" + e + ", 'none')"}[g.pick(3)]
		case g.chance(0.1):
			e = "CASE WHEN " + g.atom(cols) + " THEN 'y' ELSE 'n' END"
		}
		out = append(out, fmt.Sprintf("%s AS o%d", e, i))
	}
	return strings.Join(out, ", ")
}

// totalOrder returns an ORDER BY that fixes the order: random columns,
// then every key column of the given tables.
func (g *gen) totalOrder(cols []colRef, keys []colRef) string {
	var parts []string
	for n := g.pick(3); n > 0; n-- {
		c := cols[g.pick(len(cols))]
		dir := ""
		if g.chance(0.4) {
			dir = " DESC"
		}
		parts = append(parts, c.String()+dir)
	}
	for _, k := range keys {
		dir := ""
		if g.chance(0.3) {
			dir = " DESC"
		}
		parts = append(parts, k.String()+dir)
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

func (g *gen) limit() string {
	if g.chance(0.5) {
		return ""
	}
	s := fmt.Sprintf(" LIMIT %d", g.pick(15))
	if g.chance(0.4) {
		s += fmt.Sprintf(" OFFSET %d", g.pick(10))
	}
	return s
}

func (g *gen) query(shape string, a, b *table) query {
	ac := refs(a, "")
	switch shape {
	case "filter":
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", g.projection(ac), a.name, g.pred(ac, 2))
		if g.chance(0.1) {
			q = fmt.Sprintf("SELECT * FROM %s WHERE %s", a.name, g.pred(ac, 2))
		}
		if g.chance(0.15) {
			q = strings.Replace(q, "SELECT ", "SELECT DISTINCT ", 1)
		}
		return query{shape: shape, sql: q}
	case "range":
		w := g.keyPred(a, "")
		if g.chance(0.4) {
			w += " AND " + g.pred(ac, 1)
		}
		q := fmt.Sprintf("SELECT %s FROM %s WHERE %s", g.projection(ac), a.name, w)
		if g.chance(0.5) {
			return query{shape: shape, sql: q + g.totalOrder(ac, ac[:a.nkey]) + g.limit(), ordered: true}
		}
		return query{shape: shape, sql: q}
	case "order":
		q := fmt.Sprintf("SELECT %s FROM %s", g.projection(ac), a.name)
		if g.chance(0.5) {
			q += " WHERE " + g.pred(ac, 1)
		}
		return query{shape: shape, sql: q + g.totalOrder(ac, ac[:a.nkey]) + g.limit(), ordered: true}
	case "agg":
		return g.aggQuery(a, ac)
	case "join":
		return g.joinQuery(a, b)
	}
	panic("unknown shape " + shape)
}

func (g *gen) aggs(cols []colRef) []string {
	out := []string{"COUNT(*)"}
	for n := 1 + g.pick(3); n > 0; n-- {
		c := cols[g.pick(len(cols))]
		switch c.c.typ {
		case tInt, tDouble:
			if g.chance(0.1) {
				out = append(out, "COUNT(DISTINCT "+c.String()+")")
				continue
			}
			out = append(out, []string{"COUNT", "SUM", "MIN", "MAX", "AVG"}[g.pick(5)]+"("+c.String()+")")
		case tText:
			out = append(out, []string{"COUNT", "MIN", "MAX"}[g.pick(3)]+"("+c.String()+")")
		default:
			out = append(out, "COUNT("+c.String()+")")
		}
	}
	return out
}

func (g *gen) aggQuery(a *table, ac []colRef) query {
	aggs := g.aggs(ac)
	where := ""
	if g.chance(0.5) {
		where = " WHERE " + g.pred(ac, 1)
	}
	if g.chance(0.25) {
		var sel []string
		for i, e := range aggs {
			sel = append(sel, fmt.Sprintf("%s AS o%d", e, i))
		}
		return query{shape: "agg", sql: fmt.Sprintf("SELECT %s FROM %s%s", strings.Join(sel, ", "), a.name, where)}
	}
	var groups []string
	for n := 1 + g.pick(2); n > 0; n-- {
		groups = append(groups, ac[g.pick(len(ac))].String())
	}
	var sel []string
	for i, e := range append(append([]string{}, groups...), aggs...) {
		sel = append(sel, fmt.Sprintf("%s AS o%d", e, i))
	}
	q := fmt.Sprintf("SELECT %s FROM %s%s GROUP BY %s", strings.Join(sel, ", "), a.name, where, strings.Join(groups, ", "))
	switch g.pick(5) {
	case 0, 1:
		q += fmt.Sprintf(" HAVING COUNT(*) %s %d", cmpOps[2+g.pick(4)], 1+g.pick(3))
	case 2:
		q += fmt.Sprintf(" HAVING SUM(c0) > %d OR MIN(c1) IS NULL", g.pick(10))
	}
	if g.chance(0.3) {
		// The group columns identify a group: ordering by all of them
		// is total, so LIMIT is deterministic.
		var ob []string
		for _, gc := range groups {
			dir := ""
			if g.chance(0.4) {
				dir = " DESC"
			}
			ob = append(ob, gc+dir)
		}
		return query{shape: "agg", sql: q + " ORDER BY " + strings.Join(ob, ", ") + g.limit(), ordered: true}
	}
	return query{shape: "agg", sql: q}
}

// joinQuery joins a to b (whose key is the single int k0) either through
// b's key (lookup join) or on a non-key int column (hash join).
func (g *gen) joinQuery(a, b *table) query {
	ac, bc := refs(a, "x"), refs(b, "y")
	var on string
	switch {
	case b.nkey == 2 && g.chance(0.5):
		on = "x.c0 = y.k0 AND x.c1 = y.k1" // lookup on the whole key
	case g.chance(0.6):
		on = "x.c0 = y.k0" // lookup (single key) or key prefix
	case g.chance(0.5):
		on = "y.c0 = x.c0" // non-key: hash join
	default:
		on = "x.c1 = y.c1 AND x.c0 = y.c0"
	}
	kind := "JOIN"
	if g.chance(0.5) {
		kind = "LEFT JOIN"
	}
	from := fmt.Sprintf("%s x %s %s y ON %s", a.name, kind, b.name, on)
	where := ""
	if g.chance(0.6) {
		where = " WHERE " + g.pred(ac, 1)
		if g.chance(0.3) {
			// On a LEFT JOIN this filters after the join (NULL-extended
			// rows included), identically in both dialects.
			where += " AND " + g.pred(bc, 0)
		}
	}
	if g.chance(0.25) {
		// An aggregate over the join, grouped by a column of a.
		grp := ac[g.pick(len(ac))].String()
		aggs := g.aggs(bc)
		sel := []string{grp + " AS o0"}
		for i, e := range aggs {
			sel = append(sel, fmt.Sprintf("%s AS o%d", e, i+1))
		}
		return query{shape: "join", sql: fmt.Sprintf("SELECT %s FROM %s%s GROUP BY %s", strings.Join(sel, ", "), from, where, grp)}
	}
	all := append(append([]colRef{}, ac...), bc...)
	q := fmt.Sprintf("SELECT %s FROM %s%s", g.projection(all), from, where)
	if g.chance(0.4) {
		keys := append(append([]colRef{}, ac[:a.nkey]...), bc[:b.nkey]...)
		return query{shape: "join", sql: q + g.totalOrder(all, keys) + g.limit(), ordered: true}
	}
	return query{shape: "join", sql: q}
}

// ensureSQLite finds the sqlite3 CLI, installing Debian's package when it
// is missing; it fails the test (never skips) when that is impossible.
func ensureSQLite(t *testing.T) string {
	if p, err := exec.LookPath("sqlite3"); err == nil {
		return p
	}
	t.Log("sqlite3 not found; installing the Debian package sqlite3 (as scripts/install-tools.sh ci does)")
	var sudo []string
	if os.Geteuid() != 0 {
		sudo = []string{"sudo", "-n"}
	}
	for _, args := range [][]string{{"apt-get", "update", "-q"}, {"apt-get", "install", "-y", "-q", "--no-install-recommends", "sqlite3"}} {
		cmd := exec.Command(append(sudo, args...)[0], append(sudo, args...)[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the differential test needs the sqlite3 CLI and could not install it (%v: %v)\n%s\nrun scripts/install-tools.sh ci", args, err, out)
		}
	}
	p, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Fatalf("installed the sqlite3 package but sqlite3 is still not on PATH: %v", err)
	}
	return p
}

// runSQLite runs the setup statements and the queries in one sqlite3
// process and returns each query's rows as canonical strings.
func runSQLite(t *testing.T, bin string, setup []string, queries []query) [][]string {
	var script strings.Builder
	for _, s := range setup {
		script.WriteString(s + ";\n")
	}
	for i, q := range queries {
		fmt.Fprintf(&script, "SELECT 'q%d' AS __m;\n%s;\n", i, q.sql)
	}
	cmd := exec.Command(bin, "-batch", "-bail", "-json", ":memory:")
	cmd.Stdin = strings.NewReader(script.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("sqlite3 failed (%v): %s\n(the generator made a statement SQLite rejects: a test bug)", err, stderr.String())
	}
	out := make([][]string, len(queries))
	dec := json.NewDecoder(&stdout)
	dec.UseNumber()
	cur := -1
	for {
		rows, err := readJSONRows(dec)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parsing sqlite3 output: %v", err)
		}
		if len(rows) == 1 && len(rows[0]) == 1 && rows[0][0].key == "__m" {
			cur, _ = strconv.Atoi(strings.TrimPrefix(rows[0][0].val.(string), "q"))
			out[cur] = []string{}
			continue
		}
		for _, r := range rows {
			cells := make([]string, len(r))
			for i, kv := range r {
				cells[i] = canonSQLite(kv.val)
			}
			out[cur] = append(out[cur], strings.Join(cells, " | "))
		}
	}
	return out
}

type jsonKV struct {
	key string
	val any
}

// readJSONRows reads one array of objects, keeping the keys' order.
func readJSONRows(dec *json.Decoder) ([][]jsonKV, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("want [, got %v", tok)
	}
	var rows [][]jsonKV
	for dec.More() {
		if tok, err = dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, fmt.Errorf("want {, got %v (%v)", tok, err)
		}
		var row []jsonKV
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := dec.Token()
			if err != nil {
				return nil, err
			}
			row = append(row, jsonKV{key: k.(string), val: v})
		}
		if _, err := dec.Token(); err != nil { // }
			return nil, err
		}
		rows = append(rows, row)
	}
	_, err = dec.Token() // ]
	return rows, err
}

func canonNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 10, 64), 64)
	return strconv.FormatFloat(r, 'g', -1, 64)
}

func canonSQLite(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return "?" + string(v)
		}
		return canonNumber(f)
	case string:
		return strconv.Quote(v)
	case bool:
		if v {
			return "1"
		}
		return "0"
	}
	return fmt.Sprintf("?%T:%v", v, v)
}

func canonShale(d sqllite.Datum) string {
	if d.IsNull() {
		return "NULL"
	}
	switch v := d.Value.(type) {
	case *big.Rat:
		f, _ := v.Float64()
		return canonNumber(f)
	case []byte:
		return strconv.Quote(string(v))
	}
	rv := reflect.ValueOf(d.Value)
	switch rv.Kind() {
	case reflect.Bool:
		if rv.Bool() {
			return "1"
		}
		return "0"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return canonNumber(rv.Float())
	case reflect.String:
		return strconv.Quote(rv.String())
	}
	return "?" + d.String()
}

// execer runs SQL text: a *sqllite.Session, or the MySQL protocol
// (wire_test.go).
type execer interface {
	Exec(ctx context.Context, sql string) ([]*sqllite.Result, error)
}

func TestDifferentialSQLite(t *testing.T) {
	runDifferential(t, "TestDifferentialSQLite", openSession(t))
}

// runDifferential runs the differential test with s running Shale's side.
func runDifferential(t *testing.T, name string, s execer) {
	bin := ensureSQLite(t)
	seed := testutils.Seed(t)
	t.Logf("rerun: SHALE_TEST_SEED=%d go test -count=1 -run '%s$' ./sql-lite/sqltest/ -diff.size %d -diff.rows %d -diff.queries %d -diff.dml %d -diff.shapes %s",
		seed, name, *flagDiffSize, *flagDiffRows, *flagDiffQ, *flagDiffDML, *flagDiffShapes)
	shapes := strings.Split(*flagDiffShapes, ",")
	mustExec := func(t *testing.T, s execer, sql string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := s.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", abbrev(sql), err)
		}
	}
	type tally struct{ ok, mismatch, errs int }
	tallies := map[string]*tally{}
	for _, sh := range append(shapes, "dml") {
		tallies[sh] = &tally{}
	}
	reported := 0
	var firstErrs []string
	for round := 0; round < *flagDiffSize; round++ {
		g := &gen{r: rand.New(rand.NewPCG(seed, uint64(round)))}
		a := g.table(fmt.Sprintf("dt_%d_%d_a", seed%100000, round), false, *flagDiffRows)
		b := g.table(fmt.Sprintf("dt_%d_%d_b", seed%100000, round), true, *flagDiffRows/2+1)
		setup := []string{a.ddl(), b.ddl()}
		setup = append(setup, a.inserts()...)
		setup = append(setup, b.inserts()...)
		shaleSetup := append([]string{a.shaleDDL(), b.shaleDDL()}, setup[2:]...)
		for _, st := range append([]string{"DROP TABLE IF EXISTS " + a.name, "DROP TABLE IF EXISTS " + b.name}, shaleSetup...) {
			mustExec(t, s, st)
		}
		if kt, err := shared.client.Table(context.Background(), a.name); err == nil {
			if tablets, err := kt.Tablets(context.Background()); err == nil {
				t.Logf("round %d: %s has %d rows in %d tablet(s) (split at %v), %s has %d rows", round, a.name, len(a.rows), len(tablets), a.splits, b.name, len(b.rows))
			}
		}
		queries := make([]query, *flagDiffQ)
		for i := range queries {
			queries[i] = g.query(shapes[g.pick(len(shapes))], a, b)
		}
		want := runSQLite(t, bin, setup, queries)
		compare := func(queries []query, want [][]string, reproSetup []string, base int) {
			for i, q := range queries {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				res, err := s.Exec(ctx, q.sql)
				cancel()
				ty := tallies[q.shape]
				if err != nil {
					ty.errs++
					if len(firstErrs) < *flagDiffMax {
						firstErrs = append(firstErrs, fmt.Sprintf("[%s] %s\n    error: %v", q.shape, q.sql, err))
					}
					continue
				}
				var got []string
				if len(res) != 1 {
					got = []string{fmt.Sprintf("<%d results>", len(res))}
				} else {
					for _, row := range res[0].Rows {
						cells := make([]string, len(row))
						for j, d := range row {
							cells[j] = canonShale(d)
						}
						got = append(got, strings.Join(cells, " | "))
					}
				}
				w := want[i]
				if !q.ordered {
					got, w = sorted(got), sorted(w)
				}
				if slicesEqual(got, w) {
					ty.ok++
					continue
				}
				ty.mismatch++
				reported++
				if reported <= *flagDiffMax {
					path := writeRepro(seed, round, base+i, reproSetup, q)
					t.Errorf("round %d query %d [%s] differs from SQLite (ordered=%v)\n  %s\n  shale  (%d rows): %s\n  sqlite (%d rows): %s\n  repro script: %s",
						round, base+i, q.shape, q.ordered, q.sql, len(got), head(got), len(w), head(w), path)
				}
			}
		}
		compare(queries, want, shaleSetup, 0)
		// Writes: after each UPDATE/DELETE/REPLACE, the whole table must
		// be the same in both, and a DELETE must report SQLite's count.
		// (UPDATE and REPLACE counts are not compared: MySQL counts
		// changed rows, 2 per replaced row; SQLite counts matched rows.)
		var steps []query
		all := "SELECT * FROM " + a.name + " ORDER BY " + strings.Join(keyNames(a), ", ")
		for i := 0; i < *flagDiffDML; i++ {
			w := g.dml(a)
			if g.chance(0.15) {
				w = g.alter(a)
			}
			steps = append(steps, w, query{shape: "count", sql: "SELECT changes() AS n"}, query{shape: "state", sql: all, ordered: true})
		}
		// The read queries changed nothing, so SQLite starts the writes
		// from the same tables.
		wantSteps := runSQLite(t, bin, setup, steps)
		ty := tallies["dml"]
		var lastAffected int64
		diverged := false
		for i := 0; i < len(steps); i += 3 {
			dml, state := steps[i], steps[i+2]
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			res, err := s.Exec(ctx, dml.sql)
			cancel()
			if err != nil {
				ty.errs++
				firstErrs = append(firstErrs, fmt.Sprintf("[dml] %s\n    error: %v", dml.sql, err))
				diverged = true
				break
			}
			if len(res) == 1 {
				lastAffected = res[0].RowsAffected
			}
			ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
			res, err = s.Exec(ctx, state.sql)
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", state.sql, err)
			}
			var got []string
			for _, row := range res[0].Rows {
				cells := make([]string, len(row))
				for j, d := range row {
					cells[j] = canonShale(d)
				}
				got = append(got, strings.Join(cells, " | "))
			}
			countOK := true
			if strings.HasPrefix(dml.sql, "DELETE") && len(wantSteps[i+1]) == 1 {
				countOK = wantSteps[i+1][0] == strconv.FormatInt(lastAffected, 10)
			}
			if slicesEqual(got, wantSteps[i+2]) && countOK {
				ty.ok++
				continue
			}
			ty.mismatch++
			reported++
			path := writeRepro(seed, round, 1000+i/3, append(append([]string{}, shaleSetup...), dmlSQL(steps[:i])...), dml)
			t.Errorf("round %d write %d: table %s differs from SQLite after\n  %s\n  affected: shale %d, sqlite %v\n  shale  (%d rows): %s\n  sqlite (%d rows): %s\n  repro script (earlier writes included): %s",
				round, i/3, a.name, dml.sql, lastAffected, wantSteps[i+1], len(got), head(diffRows(got, wantSteps[i+2])), len(wantSteps[i+2]), head(diffRows(wantSteps[i+2], got)), path)
			diverged = true
			break // later steps would only repeat the difference
		}
		// Reads again, over the written and altered table (added columns
		// with defaults, rows that moved between pushed-down filters).
		if !diverged {
			post := make([]query, (*flagDiffQ+3)/4)
			for i := range post {
				post[i] = g.query(shapes[g.pick(len(shapes))], a, b)
			}
			written := append(append([]string{}, setup...), dmlSQL(steps)...)
			compare(post, runSQLite(t, bin, written, post), append(append([]string{}, shaleSetup...), dmlSQL(steps)...), 2000)
		}
		for _, tb := range []*table{a, b} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, _ = s.Exec(ctx, "DROP TABLE "+tb.name)
			cancel()
		}
	}
	var summary []string
	total := 0
	for _, sh := range append(shapes, "dml") {
		ty := tallies[sh]
		total += ty.ok + ty.mismatch + ty.errs
		summary = append(summary, fmt.Sprintf("%s: %d same, %d differ, %d errors", sh, ty.ok, ty.mismatch, ty.errs))
	}
	t.Logf("seed %d: %d queries: %s", seed, total, strings.Join(summary, "; "))
	if len(firstErrs) > 0 {
		t.Errorf("Shale failed queries SQLite answers (first %d):\n  %s", len(firstErrs), strings.Join(firstErrs, "\n  "))
	}
}

func keyNames(t *table) []string {
	var out []string
	for _, c := range t.cols[:t.nkey] {
		out = append(out, c.name)
	}
	return out
}

func dmlSQL(steps []query) []string {
	var out []string
	for i := 0; i < len(steps); i += 3 {
		out = append(out, steps[i].sql)
	}
	return out
}

// diffRows returns the rows of a that are not in b (for a readable report).
func diffRows(a, b []string) []string {
	in := map[string]int{}
	for _, r := range b {
		in[r]++
	}
	var out []string
	for _, r := range a {
		if in[r] > 0 {
			in[r]--
			continue
		}
		out = append(out, r)
	}
	return out
}

// dml returns a random write on t: an UPDATE or DELETE with a WHERE over
// any columns (key ranges included), or a REPLACE of existing or new keys.
func (g *gen) dml(t *table) query {
	cols := refs(t, "")
	where := ""
	if !g.chance(0.05) {
		if g.chance(0.4) {
			where = " WHERE " + g.keyPred(t, "")
			if g.chance(0.5) {
				where += " AND " + g.pred(cols, 1)
			}
		} else {
			where = " WHERE " + g.pred(cols, 1)
		}
	}
	switch g.pick(5) {
	case 0, 1:
		var sets []string
		for _, c := range cols[t.nkey:] {
			if len(sets) > 0 && g.chance(0.5) {
				continue
			}
			var e string
			switch {
			case g.chance(0.15) && !c.c.notNull:
				e = "NULL"
			case c.c.typ == tInt:
				e = []string{c.c.name + " + 1", c.c.name + " * 2 - 3", literal(g.value(tInt)), "c0"}[g.pick(4)]
				if e == "c0" && c.c.notNull {
					e = "COALESCE(c0, 0)"
				}
			case c.c.typ == tDouble:
				e = []string{c.c.name + " * 2", c.c.name + " - 0.25", literal(g.value(tDouble))}[g.pick(3)]
			case c.c.typ == tBool:
				e = []string{"NOT " + c.c.name, literal(g.value(tBool))}[g.pick(2)]
			default:
				e = []string{literal(g.value(tText)), "CASE WHEN " + c.c.name + " IS NULL THEN 'n' ELSE " + c.c.name + " END"}[g.pick(2)]
			}
			sets = append(sets, c.c.name+" = "+e)
		}
		return query{shape: "dml", sql: "UPDATE " + t.name + " SET " + strings.Join(sets, ", ") + where}
	case 2, 3:
		return query{shape: "dml", sql: "DELETE FROM " + t.name + where}
	default:
		var vals []string
		for n := 1 + g.pick(3); n > 0; n-- {
			var row []any
			if len(t.rows) > 0 && g.chance(0.5) {
				row = append(row, t.rows[g.pick(len(t.rows))][:t.nkey]...)
			} else {
				for i, c := range t.cols[:t.nkey] {
					row = append(row, g.keyValue(c.typ, i, t.nkey, len(t.rows)+1))
				}
			}
			for _, c := range t.cols[t.nkey:] {
				if g.chance(0.2) && !c.notNull {
					row = append(row, nil)
				} else {
					row = append(row, g.value(c.typ))
				}
			}
			var lits []string
			for _, v := range row {
				lits = append(lits, literal(v))
			}
			vals = append(vals, "("+strings.Join(lits, ", ")+")")
		}
		// One statement may name a key twice: both dialects then keep the
		// last row.
		return query{shape: "dml", sql: "REPLACE INTO " + t.name + " VALUES " + strings.Join(vals, ", ")}
	}
}

// alter adds a column (with or without a DEFAULT, sometimes NOT NULL) or
// drops one of the optional non-key columns, and updates t.cols. Existing
// rows read as the default in both dialects.
func (g *gen) alter(t *table) query {
	var droppable []int
	for i, c := range t.cols {
		if i >= t.nkey+2 && c.name != "c0" && c.name != "c1" {
			droppable = append(droppable, i)
		}
	}
	if len(droppable) > 0 && g.chance(0.35) {
		i := droppable[g.pick(len(droppable))]
		name := t.cols[i].name
		t.cols = append(t.cols[:i:i], t.cols[i+1:]...)
		return query{shape: "dml", sql: fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", t.name, name)}
	}
	t.nalter++
	c := column{name: fmt.Sprintf("a%d", t.nalter), typ: colType(g.pick(4))}
	def := ""
	switch g.pick(3) {
	case 0:
		def = " DEFAULT " + literal(g.value(c.typ))
	case 1:
		def = " NOT NULL DEFAULT " + literal(g.value(c.typ))
		c.notNull = true
	}
	t.cols = append(t.cols, c)
	return query{shape: "dml", sql: fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s%s", t.name, c.name, c.typ.sql(), def)}
}

func sorted(s []string) []string {
	c := append([]string{}, s...)
	sort.Strings(c)
	return c
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func head(rows []string) string {
	if len(rows) > 8 {
		return "[" + strings.Join(rows[:8], "; ") + fmt.Sprintf("; ... %d more]", len(rows)-8)
	}
	return "[" + strings.Join(rows, "; ") + "]"
}

// writeRepro writes a script that rebuilds the tables and runs the query
// (in `shale sql -f` or sqlite3), for a mismatch's report.
func writeRepro(seed uint64, round, i int, setup []string, q query) string {
	dir := filepath.Join(os.TempDir(), "sqltest-diff")
	_ = os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, fmt.Sprintf("seed%d-round%d-q%d.sql", seed, round, i))
	body := "-- " + q.shape + " query differing between Shale and SQLite\n" + strings.Join(setup, ";\n") + ";\n" + q.sql + ";\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		return "(not written: " + err.Error() + ")"
	}
	return p
}

// TestDiffGeneratorValid checks the generator alone: every table and query
// it makes for a few seeds is accepted by SQLite, every shape occurs, and
// queries return rows often enough to be worth comparing.
func TestDiffGeneratorValid(t *testing.T) {
	bin := ensureSQLite(t)
	shapes := []string{"filter", "range", "order", "agg", "join"}
	nonEmpty, total := 0, 0
	for seed := uint64(1); seed <= 5; seed++ {
		g := &gen{r: rand.New(rand.NewPCG(seed, 0))}
		a := g.table("ga", false, 40)
		b := g.table("gb", true, 21)
		if len(a.rows) != 40 || len(b.rows) != 21 {
			t.Fatalf("seed %d: wanted 40 and 21 distinct rows, got %d and %d", seed, len(a.rows), len(b.rows))
		}
		setup := append([]string{a.ddl(), b.ddl()}, append(a.inserts(), b.inserts()...)...)
		var qs []query
		for i := 0; i < 100; i++ {
			qs = append(qs, g.query(shapes[i%len(shapes)], a, b))
		}
		for i, rows := range runSQLite(t, bin, setup, qs) {
			if testing.Verbose() && seed == 1 && i < 25 {
				t.Logf("sample %s: %s -> %d rows", qs[i].shape, qs[i].sql, len(rows))
			}
			if rows == nil {
				t.Fatalf("seed %d: no output marker for query %d: %s", seed, i, qs[i].sql)
			}
			total++
			if len(rows) > 0 {
				nonEmpty++
			}
		}
	}
	// Writes and schema changes, then reads over the result.
	for seed := uint64(1); seed <= 5; seed++ {
		g := &gen{r: rand.New(rand.NewPCG(seed, 1))}
		a := g.table("ga", false, 40)
		b := g.table("gb", true, 21)
		setup := append([]string{a.ddl(), b.ddl()}, append(a.inserts(), b.inserts()...)...)
		var steps []query
		for i := 0; i < 40; i++ {
			w := g.dml(a)
			if i%5 == 0 {
				w = g.alter(a)
			}
			steps = append(steps, w)
		}
		for i := 0; i < 50; i++ {
			steps = append(steps, g.query(shapes[i%len(shapes)], a, b))
		}
		runSQLite(t, bin, setup, steps)
	}
	t.Logf("%d of %d generated queries return rows", nonEmpty, total)
	if nonEmpty < total/2 {
		t.Errorf("only %d of %d generated queries return rows: the generator's domains are too sparse", nonEmpty, total)
	}
}
