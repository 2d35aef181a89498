package mysqlwire

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// information_schema.tables and .columns are built from the catalog
// (Session.TableNames and the engine's SHOW COLUMNS) and queried by a
// small evaluator: a projection of columns, WHERE with AND/OR/NOT,
// comparisons, IN, LIKE and IS NULL, ORDER BY columns, LIMIT. That covers
// what tools and ORMs send to list tables and columns.

var infoColumns = map[string][]string{
	"tables": {"TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "TABLE_TYPE", "ENGINE", "VERSION", "ROW_FORMAT",
		"TABLE_ROWS", "CREATE_TIME", "TABLE_COLLATION", "TABLE_COMMENT"},
	"columns": {"TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "ORDINAL_POSITION", "COLUMN_DEFAULT",
		"IS_NULLABLE", "DATA_TYPE", "CHARACTER_MAXIMUM_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE",
		"CHARACTER_SET_NAME", "COLLATION_NAME", "COLUMN_TYPE", "COLUMN_KEY", "EXTRA", "COLUMN_COMMENT"},
}

// infoSchemaTable returns the information_schema table st reads alone.
func infoSchemaTable(st *ast.SelectStmt) (string, bool) {
	if st.From == nil || st.From.TableRefs == nil || st.From.TableRefs.Right != nil {
		return "", false
	}
	ts, ok := st.From.TableRefs.Left.(*ast.TableSource)
	if !ok {
		return "", false
	}
	tn, ok := ts.Source.(*ast.TableName)
	if !ok || tn.Schema.L != "information_schema" {
		return "", false
	}
	return tn.Name.L, true
}

// colInfo is one column as SHOW COLUMNS describes it.
type colInfo struct {
	name, typ, null, key string
	def                  sqllite.Datum
}

// describe returns the columns of table (the engine's SHOW COLUMNS).
func (h *handler) describe(table string) ([]colInfo, error) {
	res, err := h.sess.Exec(h.srv.ctx, "SHOW COLUMNS FROM `"+strings.ReplaceAll(table, "`", "``")+"`")
	if err != nil {
		return nil, err
	}
	var out []colInfo
	for _, r := range res[0].Rows {
		out = append(out, colInfo{name: r[0].String(), typ: r[1].String(), null: r[2].String(), key: r[3].String(), def: r[4]})
	}
	return out, nil
}

// infoRows builds the rows of information_schema table name (column
// values by lower-case name).
func (h *handler) infoRows(name string) ([]map[string]sqllite.Datum, error) {
	if _, ok := infoColumns[name]; !ok {
		return nil, newErr(mysql.ER_UNKNOWN_TABLE, "42S02", fmt.Sprintf("Unknown table '%s' in information_schema (tables and columns are supported)", name))
	}
	tables, err := h.sess.TableNames(h.srv.ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(tables)
	null := sqllite.Datum{}
	var rows []map[string]sqllite.Datum
	for _, t := range tables {
		base := map[string]sqllite.Datum{"table_catalog": str("def"), "table_schema": str(Database), "table_name": str(t)}
		if name == "tables" {
			r := clone(base)
			for k, v := range map[string]sqllite.Datum{"table_type": str("BASE TABLE"), "engine": str("Shale"), "version": num(10),
				"row_format": str("Dynamic"), "table_rows": null, "create_time": null, "table_collation": str("utf8mb4_general_ci"), "table_comment": str("")} {
				r[k] = v
			}
			rows = append(rows, r)
			continue
		}
		cols, err := h.describe(t)
		if err != nil {
			continue // dropped meanwhile
		}
		for i, c := range cols {
			r := clone(base)
			dataType, length, prec, scale := parseColumnType(c.typ)
			r["column_name"], r["ordinal_position"], r["column_default"] = str(c.name), num(int64(i+1)), c.def
			r["is_nullable"], r["data_type"], r["column_type"] = str(c.null), str(dataType), str(strings.ToLower(c.typ))
			r["character_maximum_length"], r["numeric_precision"], r["numeric_scale"] = length, prec, scale
			r["character_set_name"], r["collation_name"] = null, null
			if length.Kind != sqllite.KindNull && !strings.Contains(dataType, "binary") && dataType != "blob" {
				r["character_set_name"], r["collation_name"] = str("utf8mb4"), str("utf8mb4_general_ci")
			}
			r["column_key"], r["extra"], r["column_comment"] = str(c.key), str(""), str("")
			rows = append(rows, r)
		}
	}
	return rows, nil
}

func clone(m map[string]sqllite.Datum) map[string]sqllite.Datum {
	out := make(map[string]sqllite.Datum, len(m)+16)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// parseColumnType splits SHOW COLUMNS' type ("VARCHAR(8)",
// "DECIMAL(10,2)", "BIGINT") into information_schema's fields.
func parseColumnType(t string) (dataType string, length, prec, scale sqllite.Datum) {
	base, args, _ := strings.Cut(strings.ToLower(t), "(")
	args = strings.TrimSuffix(args, ")")
	var ns []int64
	for _, a := range strings.Split(args, ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64); err == nil {
			ns = append(ns, n)
		}
	}
	switch base {
	case "varchar", "char", "varbinary", "binary":
		if len(ns) > 0 {
			length = num(ns[0])
		}
	case "text", "blob":
		length = num(65535)
	case "decimal":
		if len(ns) == 2 {
			prec, scale = num(ns[0]), num(ns[1])
		}
	case "bigint":
		prec, scale = num(19), num(0)
	case "int":
		prec, scale = num(10), num(0)
	case "smallint":
		prec, scale = num(5), num(0)
	case "tinyint", "boolean":
		prec, scale = num(3), num(0)
	case "double":
		prec = num(22)
	case "float":
		prec = num(12)
	}
	if base == "boolean" {
		base = "tinyint"
	}
	return base, length, prec, scale
}

// infoSchema runs a SELECT on information_schema table name.
func (h *handler) infoSchema(st *ast.SelectStmt, name string) (*mysql.Result, error) {
	if st.GroupBy != nil || st.Having != nil || st.Distinct {
		return nil, notSupportedErr("GROUP BY, HAVING and DISTINCT on information_schema")
	}
	all, err := h.infoRows(name)
	if err != nil {
		return nil, toMySQL(err)
	}
	var rows []map[string]sqllite.Datum
	for _, r := range all {
		if st.Where != nil {
			t, err := h.truth(st.Where, r)
			if err != nil {
				return nil, err
			}
			if t != 1 {
				continue
			}
		}
		rows = append(rows, r)
	}
	if st.OrderBy != nil {
		if err := h.orderRows(rows, st.OrderBy.Items); err != nil {
			return nil, err
		}
	}
	rows, err = limitRows(rows, st.Limit)
	if err != nil {
		return nil, err
	}
	names, exprs, types, err := infoProjection(st, name)
	if err != nil {
		return nil, err
	}
	out := &sqllite.Result{Columns: names, Types: types, Rows: [][]sqllite.Datum{}}
	for _, r := range rows {
		vals := make([]sqllite.Datum, len(exprs))
		for i, e := range exprs {
			if vals[i], err = h.eval(e, r); err != nil {
				return nil, err
			}
		}
		out.Rows = append(out.Rows, vals)
	}
	return h.result(out), nil
}

// infoProjection returns the select list of a query of information_schema
// table name: its columns' names, expressions and types.
func infoProjection(st *ast.SelectStmt, name string) (names []string, exprs []ast.ExprNode, types []sqllite.Type, err error) {
	if _, ok := infoColumns[name]; !ok {
		return nil, nil, nil, newErr(mysql.ER_UNKNOWN_TABLE, "42S02", fmt.Sprintf("Unknown table '%s' in information_schema (tables and columns are supported)", name))
	}
	for _, f := range st.Fields.Fields {
		if f.WildCard != nil {
			for _, c := range infoColumns[name] {
				names, types = append(names, c), append(types, infoType(c))
				exprs = append(exprs, &ast.ColumnNameExpr{Name: &ast.ColumnName{Name: ast.NewCIStr(c)}})
			}
			continue
		}
		n := f.AsName.O
		var t sqllite.Type // known from the values
		if cn, ok := f.Expr.(*ast.ColumnNameExpr); ok {
			t = infoType(cn.Name.Name.O)
			if n == "" {
				n = strings.ToUpper(cn.Name.Name.O)
			}
		} else if n == "" {
			n = exprName(f.Expr)
		}
		names, exprs, types = append(names, n), append(exprs, f.Expr), append(types, t)
	}
	return names, exprs, types, nil
}

// infoType is the type of information_schema column c.
func infoType(c string) sqllite.Type {
	switch strings.ToUpper(c) {
	case "VERSION", "TABLE_ROWS", "ORDINAL_POSITION", "CHARACTER_MAXIMUM_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE":
		return bigintType
	case "CREATE_TIME":
		return sqllite.Type{Kind: sqllite.KindTime, Name: "DATETIME"} // (always NULL)
	}
	return textType
}

// truth evaluates a filter: 1 true, 0 false, -1 unknown (NULL).
func (h *handler) truth(e ast.ExprNode, row map[string]sqllite.Datum) (int, error) {
	switch x := e.(type) {
	case *ast.ParenthesesExpr:
		return h.truth(x.Expr, row)
	case *ast.UnaryOperationExpr:
		if x.Op == opcode.Not || x.Op == opcode.Not2 {
			t, err := h.truth(x.V, row)
			if t == -1 {
				return -1, err
			}
			return 1 - t, err
		}
	case *ast.BinaryOperationExpr:
		switch x.Op {
		case opcode.LogicAnd, opcode.LogicOr:
			a, err := h.truth(x.L, row)
			if err != nil {
				return 0, err
			}
			b, err := h.truth(x.R, row)
			if err != nil {
				return 0, err
			}
			if x.Op == opcode.LogicAnd {
				if a == 0 || b == 0 {
					return 0, nil
				}
				return min(a, b), nil // -1 if either is unknown
			}
			return max(a, b), nil
		case opcode.EQ, opcode.NE, opcode.LT, opcode.LE, opcode.GT, opcode.GE, opcode.NullEQ:
			l, err := h.eval(x.L, row)
			if err != nil {
				return 0, err
			}
			r, err := h.eval(x.R, row)
			if err != nil {
				return 0, err
			}
			if l.IsNull() || r.IsNull() {
				if x.Op == opcode.NullEQ {
					return boolInt(l.IsNull() && r.IsNull()), nil
				}
				return -1, nil
			}
			c := compare(l, r)
			ok := map[opcode.Op]bool{opcode.EQ: c == 0, opcode.NullEQ: c == 0, opcode.NE: c != 0, opcode.LT: c < 0, opcode.LE: c <= 0, opcode.GT: c > 0, opcode.GE: c >= 0}[x.Op]
			return boolInt(ok), nil
		}
	case *ast.PatternInExpr:
		if x.Sel == nil {
			v, err := h.eval(x.Expr, row)
			if err != nil || v.IsNull() {
				return -1, err
			}
			found := false
			for _, le := range x.List {
				d, err := h.eval(le, row)
				if err != nil {
					return 0, err
				}
				found = found || (!d.IsNull() && compare(v, d) == 0)
			}
			return boolInt(found != x.Not), nil
		}
	case *ast.PatternLikeOrIlikeExpr:
		v, err := h.eval(x.Expr, row)
		if err != nil {
			return 0, err
		}
		p, err := h.eval(x.Pattern, row)
		if err != nil || v.IsNull() || p.IsNull() {
			return -1, err
		}
		return boolInt(likeMatch(strings.ToLower(v.String()), strings.ToLower(p.String())) != x.Not), nil
	case *ast.IsNullExpr:
		v, err := h.eval(x.Expr, row)
		if err != nil {
			return 0, err
		}
		return boolInt(v.IsNull() != x.Not), nil
	}
	return 0, notSupportedErr(fmt.Sprintf("filter %s on information_schema", exprName(e)))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compare orders two non-NULL values: numerically when both are
// numbers, else as text, case-insensitively (information_schema's
// collation).
func compare(a, b sqllite.Datum) int {
	fa, aok := number(a)
	fb, bok := number(b)
	if aok && bok {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	return strings.Compare(strings.ToLower(a.String()), strings.ToLower(b.String()))
}

func number(d sqllite.Datum) (float64, bool) {
	switch d.Kind {
	case sqllite.KindInt, sqllite.KindFloat, sqllite.KindDecimal:
		return asFloat(d), true
	}
	return 0, false
}

func (h *handler) orderRows(rows []map[string]sqllite.Datum, items []*ast.ByItem) error {
	var err error
	sort.SliceStable(rows, func(i, j int) bool {
		for _, it := range items {
			a, e1 := h.eval(it.Expr, rows[i])
			b, e2 := h.eval(it.Expr, rows[j])
			if e1 != nil || e2 != nil {
				err = firstErr(e1, e2)
				return false
			}
			c := 0
			switch {
			case a.IsNull() && b.IsNull():
			case a.IsNull():
				c = -1
			case b.IsNull():
				c = 1
			default:
				c = compare(a, b)
			}
			if it.Desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	return err
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func limitRows(rows []map[string]sqllite.Datum, l *ast.Limit) ([]map[string]sqllite.Datum, error) {
	if l == nil {
		return rows, nil
	}
	n := func(e ast.ExprNode) (int, error) {
		if e == nil {
			return 0, nil
		}
		v, ok := e.(*driver.ValueExpr)
		if !ok {
			return 0, notSupportedErr("a LIMIT that is not a number")
		}
		i, err := strconv.Atoi(fmt.Sprint(v.GetValue()))
		if err != nil || i < 0 {
			return 0, notSupportedErr("a LIMIT that is not a number")
		}
		return i, nil
	}
	count, err := n(l.Count)
	if err != nil {
		return nil, err
	}
	off, err := n(l.Offset)
	if err != nil {
		return nil, err
	}
	off = min(off, len(rows))
	return rows[off:min(len(rows), off+count)], nil
}
