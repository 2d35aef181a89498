package mysqlwire

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// Statements about the session that drivers send (SELECT @@version, SET
// NAMES, USE, SHOW DATABASES, information_schema) are answered here: the
// engine has no session variables, databases or system schema. A query is
// parsed here only when it looks like one of them (sessionHint), so
// ordinary statements are parsed once, by the engine.

var sessionWords = []string{"@", "information_schema", "database()", "schema()", "user()", "version()", "connection_id()", "last_insert_id()"}

// sessionHint reports whether query may be a statement answered here.
func sessionHint(query string) bool {
	q := strings.ToLower(strings.TrimLeft(query, " \t\r\n("))
	for _, w := range []string{"set", "use", "show"} {
		if strings.HasPrefix(q, w) && (len(q) == len(w) || strings.ContainsRune(" \t\r\n", rune(q[len(w)]))) {
			return true
		}
	}
	for _, w := range sessionWords {
		if strings.Contains(q, w) {
			return true
		}
	}
	return false
}

// sessionQuery answers query if it is a session statement; handled is
// false for statements the engine runs.
func (h *handler) sessionQuery(query string) (r *mysql.Result, handled bool, err error) {
	st := parseSession(query)
	if st == nil {
		return nil, false, nil
	}
	return h.runSession(st)
}

// parseSession returns query's statement if it may be one answered here
// (nil for the engine's).
func parseSession(query string) ast.StmtNode {
	if !sessionHint(query) {
		return nil
	}
	stmts, _, err := parser.New().Parse(query, "", "")
	if err != nil || len(stmts) != 1 {
		return nil // the engine reports it
	}
	return stmts[0]
}

func (h *handler) runSession(st ast.StmtNode) (*mysql.Result, bool, error) {
	switch st := st.(type) {
	case *ast.SetStmt:
		return nil, true, h.set(st)
	case *ast.UseStmt:
		return nil, true, h.UseDB(st.DBName)
	case *ast.ShowStmt:
		return h.show(st)
	case *ast.SelectStmt:
		if st.From == nil {
			return h.selectVars(st)
		}
		if name, ok := infoSchemaTable(st); ok {
			r, err := h.infoSchema(st, name)
			return r, true, err
		}
	}
	return nil, false, nil
}

// isSession reports whether runSession answers st (without running it).
func (h *handler) isSession(st ast.StmtNode) bool {
	switch st := st.(type) {
	case *ast.SetStmt, *ast.UseStmt:
		return true
	case *ast.ShowStmt:
		switch st.Tp {
		case ast.ShowDatabases, ast.ShowVariables, ast.ShowStatus, ast.ShowWarnings, ast.ShowErrors:
			return true
		}
	case *ast.SelectStmt:
		if st.From == nil {
			if st.Where != nil || st.GroupBy != nil || st.Having != nil || st.Fields == nil {
				return false
			}
			for _, f := range st.Fields.Fields {
				if f.WildCard != nil || !h.evaluable(f.Expr) {
					return false
				}
			}
			return true
		}
		_, ok := infoSchemaTable(st)
		return ok
	}
	return false
}

// markerFinder collects the byte offsets of the ? markers.
type markerFinder struct{ offsets []int }

func (f *markerFinder) Enter(n ast.Node) (ast.Node, bool) {
	if m, ok := n.(*driver.ParamMarkerExpr); ok {
		f.offsets = append(f.offsets, m.Offset)
	}
	return n, false
}

func (f *markerFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// bindText replaces the ? markers at offsets (ascending) in query by the
// SQL literals of args (prepared session statements run as text).
func bindText(query string, offsets []int, args []any) (string, error) {
	if len(args) != len(offsets) {
		return "", newErr(mysql.ER_WRONG_ARGUMENTS, "HY000", fmt.Sprintf("the statement has %d parameters but got %d", len(offsets), len(args)))
	}
	var b strings.Builder
	prev := 0
	for i, off := range offsets {
		b.WriteString(query[prev:off])
		b.WriteString(sqlLiteral(args[i]))
		prev = off + 1
	}
	b.WriteString(query[prev:])
	return b.String(), nil
}

func sqlLiteral(a any) string {
	switch v := a.(type) {
	case nil:
		return "NULL"
	case []byte:
		return sqlLiteral(string(v))
	case string:
		return "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(v) + "'"
	}
	return sqlLiteral(fmt.Sprint(a))
}

// sysVars are the system variables clients read, with the server's
// values; SET changes them for the session only.
func (h *handler) sysVars() map[string]sqllite.Datum {
	cfg := h.srv.cfg
	s, i := str, num
	return map[string]sqllite.Datum{
		"version": s(ServerVersion), "version_comment": s("Shale sql-lite"), "version_compile_os": s("Linux"),
		"autocommit": i(1), "max_allowed_packet": i(int64(cfg.MaxPacket)), "net_buffer_length": i(16384),
		"wait_timeout": i(int64(cfg.IdleTimeout.Seconds())), "interactive_timeout": i(int64(cfg.IdleTimeout.Seconds())),
		"character_set_client": s("utf8mb4"), "character_set_connection": s("utf8mb4"), "character_set_results": s("utf8mb4"),
		"character_set_server": s("utf8mb4"), "character_set_database": s("utf8mb4"), "character_set_system": s("utf8mb3"),
		"collation_connection": s("utf8mb4_general_ci"), "collation_server": s("utf8mb4_general_ci"), "collation_database": s("utf8mb4_general_ci"),
		"sql_mode": s("STRICT_TRANS_TABLES"), "time_zone": s("+00:00"), "system_time_zone": s("UTC"),
		"transaction_isolation": s("REPEATABLE-READ"), "tx_isolation": s("REPEATABLE-READ"),
		"transaction_read_only": i(0), "tx_read_only": i(0), "auto_increment_increment": i(1),
		"lower_case_table_names": i(1), "sql_select_limit": i(-1), "sql_auto_is_null": i(0),
		"max_execution_time": i(0), "performance_schema": i(0), "query_cache_size": i(0), "query_cache_type": s("OFF"),
		"have_ssl": s("DISABLED"), "init_connect": s(""), "license": s("Apache-2.0"), "warning_count": i(0), "error_count": i(0),
		"default_storage_engine": s("Shale"), "max_connections": i(int64(cfg.MaxConns)),
	}
}

func str(v string) sqllite.Datum { return sqllite.Datum{Kind: sqllite.KindString, Value: v} }
func num(v int64) sqllite.Datum  { return sqllite.Datum{Kind: sqllite.KindInt, Value: v} }

// variable returns @@name (system) or @name (user).
func (h *handler) variable(v *ast.VariableExpr) (sqllite.Datum, error) {
	name := strings.ToLower(v.Name)
	if !v.IsSystem {
		return h.userVar(name), nil
	}
	if val, ok := h.vars["@@"+name]; ok && !v.IsGlobal {
		return str(val), nil
	}
	if val, ok := h.sysVars()[name]; ok {
		return val, nil
	}
	return sqllite.Datum{}, newErr(mysql.ER_UNKNOWN_SYSTEM_VARIABLE, "HY000", fmt.Sprintf("Unknown system variable '%s'", v.Name))
}

func (h *handler) userVar(name string) sqllite.Datum {
	if val, ok := h.vars["@"+name]; ok {
		return str(val)
	}
	return sqllite.Datum{}
}

// set runs SET: NAMES and CHARACTER SET (utf8/utf8mb4 only), autocommit
// (only 1: every statement outside BEGIN ... COMMIT commits), other
// session variables and user variables (kept for SELECT @@x / @x).
func (h *handler) set(st *ast.SetStmt) error {
	for _, a := range st.Variables {
		name := strings.ToLower(a.Name)
		switch {
		case a.Name == ast.SetNames || a.Name == ast.SetCharset:
			cs := ""
			if a.Value != nil {
				d, err := h.eval(a.Value, nil)
				if err != nil {
					return err
				}
				cs = strings.ToLower(d.String())
			}
			if cs != "" && cs != "utf8" && cs != "utf8mb4" && cs != "utf8mb3" && cs != "default" {
				return newErr(mysql.ER_UNKNOWN_CHARACTER_SET, "42000", fmt.Sprintf("Unknown character set: '%s' (only utf8mb4 is supported)", cs))
			}
		case a.IsSystem && a.IsGlobal:
			return newErr(mysql.ER_NOT_SUPPORTED_YET, "42000", "SET GLOBAL is not supported (variables are per session)")
		case a.IsSystem:
			if _, ok := a.Value.(*ast.DefaultExpr); ok || a.Value == nil {
				delete(h.vars, "@@"+name)
				continue
			}
			d, err := h.eval(a.Value, nil)
			if err != nil {
				return err
			}
			val := d.String()
			if d.Kind == sqllite.KindBool {
				val = map[bool]string{true: "1", false: "0"}[d.Value.(bool)]
			}
			if name == "autocommit" {
				switch strings.ToLower(val) {
				case "1", "on", "true":
				default:
					return newErr(mysql.ER_NOT_SUPPORTED_YET, "42000", "SET autocommit=0 is not supported: use BEGIN ... COMMIT for transactions")
				}
				val = "1"
			}
			h.vars["@@"+name] = val
		default:
			d, err := h.eval(a.Value, nil)
			if err != nil {
				return err
			}
			if d.IsNull() {
				delete(h.vars, "@"+name)
			} else {
				h.vars["@"+name] = d.String()
			}
		}
	}
	return nil
}

// selectVars answers a SELECT without FROM whose items are all variables,
// session functions or literals (SELECT @@version_comment LIMIT 1).
func (h *handler) selectVars(st *ast.SelectStmt) (*mysql.Result, bool, error) {
	if st.Where != nil || st.GroupBy != nil || st.Having != nil || st.Fields == nil {
		return nil, false, nil
	}
	var names []string
	var types []sqllite.Type
	var row []sqllite.Datum
	for _, f := range st.Fields.Fields {
		if f.WildCard != nil || !h.evaluable(f.Expr) {
			return nil, false, nil
		}
		d, err := h.eval(f.Expr, nil)
		if err != nil {
			return nil, true, err
		}
		name := f.AsName.O
		if name == "" {
			name = f.Text()
		}
		if name == "" {
			name = exprName(f.Expr)
		}
		names, row, types = append(names, name), append(row, d), append(types, datumType(d))
	}
	rows := [][]sqllite.Datum{row}
	if st.Limit != nil {
		if c, ok := st.Limit.Count.(*driver.ValueExpr); ok && c.GetValue() != nil && fmt.Sprint(c.GetValue()) == "0" {
			rows = nil
		}
	}
	return h.result(&sqllite.Result{Columns: names, Types: types, Rows: rows}), true, nil
}

// datumType is the column type of a session value (NULL: text, the type
// of every variable once SET).
func datumType(d sqllite.Datum) sqllite.Type {
	switch d.Kind {
	case sqllite.KindInt:
		return sqllite.Type{Kind: sqllite.KindInt, Name: "BIGINT"}
	case sqllite.KindFloat:
		return sqllite.Type{Kind: sqllite.KindFloat, Name: "DOUBLE"}
	}
	return textType
}

var (
	textType   = sqllite.Type{Kind: sqllite.KindString, Name: "VARCHAR"}
	bigintType = sqllite.Type{Kind: sqllite.KindInt, Name: "BIGINT"}
)

// showSessionColumns are the columns of the SHOW statements answered
// here.
func showSessionColumns(tp ast.ShowStmtType) ([]string, []sqllite.Type) {
	switch tp {
	case ast.ShowDatabases:
		return []string{"Database"}, []sqllite.Type{textType}
	case ast.ShowVariables, ast.ShowStatus:
		return []string{"Variable_name", "Value"}, []sqllite.Type{textType, textType}
	case ast.ShowWarnings, ast.ShowErrors:
		return []string{"Level", "Code", "Message"}, []sqllite.Type{textType, bigintType, textType}
	}
	return nil, nil
}

func exprName(e ast.ExprNode) string {
	var b strings.Builder
	_ = e.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags, &b))
	return b.String()
}

// evaluable reports whether e uses only what eval knows, with at least
// one variable or session function (plain SELECT 1 goes to the engine).
func (h *handler) evaluable(e ast.ExprNode) bool {
	switch x := e.(type) {
	case *ast.VariableExpr:
		return x.Value == nil
	case *ast.FuncCallExpr:
		_, ok := h.sessionFunc(x.FnName.L)
		return ok && len(x.Args) == 0
	}
	return false
}

// sessionFunc evaluates the functions about the session.
func (h *handler) sessionFunc(name string) (sqllite.Datum, bool) {
	switch name {
	case "database", "schema":
		return str(Database), true
	case "user", "current_user", "session_user", "system_user":
		user, host := h.srv.cfg.User, "localhost"
		if h.conn != nil {
			user = h.conn.GetUser()
			if a := h.conn.RemoteAddr(); a != nil {
				host = strings.Split(a.String(), ":")[0]
			}
		}
		return str(user + "@" + host), true
	case "version":
		return str(ServerVersion), true
	case "connection_id":
		if h.conn != nil {
			return num(int64(h.conn.ConnectionID())), true
		}
		return num(0), true
	case "last_insert_id":
		return num(0), true // sql-lite has no AUTO_INCREMENT
	}
	return sqllite.Datum{}, false
}

// show answers SHOW DATABASES, VARIABLES, STATUS, WARNINGS, ERRORS and
// checks the database of SHOW TABLES FROM; the engine answers SHOW
// TABLES, SHOW COLUMNS (DESCRIBE) and SHOW CREATE TABLE.
func (h *handler) show(st *ast.ShowStmt) (*mysql.Result, bool, error) {
	like := func(s string) bool {
		if st.Pattern == nil {
			return true
		}
		p, err := h.eval(st.Pattern.Pattern, nil)
		return err == nil && likeMatch(strings.ToLower(s), strings.ToLower(p.String()))
	}
	var res *sqllite.Result
	switch st.Tp {
	case ast.ShowDatabases:
		res = &sqllite.Result{Rows: [][]sqllite.Datum{}}
		for _, db := range []string{"information_schema", Database} {
			if like(db) {
				res.Rows = append(res.Rows, []sqllite.Datum{str(db)})
			}
		}
	case ast.ShowVariables:
		vars := h.sysVars()
		for k, v := range h.vars {
			if name, ok := strings.CutPrefix(k, "@@"); ok {
				vars[name] = str(v)
			}
		}
		names := make([]string, 0, len(vars))
		for n, v := range vars {
			if !like(n) {
				continue
			}
			if st.Where != nil { // SHOW VARIABLES WHERE Variable_name IN (...)
				t, err := h.truth(st.Where, map[string]sqllite.Datum{"variable_name": str(n), "value": v})
				if err != nil {
					return nil, true, err
				}
				if t != 1 {
					continue
				}
			}
			names = append(names, n)
		}
		sort.Strings(names)
		res = &sqllite.Result{Rows: [][]sqllite.Datum{}}
		for _, n := range names {
			v := vars[n]
			res.Rows = append(res.Rows, []sqllite.Datum{str(n), str(v.String())})
		}
	case ast.ShowStatus, ast.ShowWarnings, ast.ShowErrors:
		res = &sqllite.Result{Rows: [][]sqllite.Datum{}}
	case ast.ShowTables, ast.ShowColumns, ast.ShowCreateTable:
		db := st.DBName
		if st.Table != nil && st.Table.Schema.O != "" {
			db = st.Table.Schema.O
		}
		if db != "" {
			if err := h.UseDB(db); err != nil {
				return nil, true, err
			}
			if strings.EqualFold(db, "information_schema") {
				return nil, true, newErr(mysql.ER_NOT_SUPPORTED_YET, "42000", "SHOW of information_schema tables is not supported (query information_schema.tables and .columns)")
			}
		}
		return nil, false, nil
	default:
		return nil, false, nil
	}
	res.Columns, res.Types = showSessionColumns(st.Tp)
	return h.result(res), true, nil
}

// likeMatch is SQL LIKE (% and _, backslash escapes).
func likeMatch(s, p string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '%':
		for i := 0; i <= len(s); i++ {
			if likeMatch(s[i:], p[1:]) {
				return true
			}
		}
		return false
	case '_':
		return s != "" && likeMatch(s[1:], p[1:])
	case '\\':
		if len(p) > 1 {
			p = p[1:]
		}
	}
	return s != "" && s[0] == p[0] && likeMatch(s[1:], p[1:])
}

// eval evaluates the constant expressions of session statements and the
// filters of information_schema queries (row gives column values by
// lower-case name; nil outside information_schema).
func (h *handler) eval(e ast.ExprNode, row map[string]sqllite.Datum) (sqllite.Datum, error) {
	switch x := e.(type) {
	case *driver.ValueExpr:
		return valueDatum(x.GetValue()), nil
	case *ast.VariableExpr:
		if x.Value != nil {
			return sqllite.Datum{}, notSupportedErr("assignment inside an expression")
		}
		return h.variable(x)
	case *ast.ColumnNameExpr:
		name := x.Name.Name.L
		if row != nil {
			if v, ok := row[name]; ok {
				return v, nil
			}
			return sqllite.Datum{}, newErr(mysql.ER_BAD_FIELD_ERROR, "42S22", fmt.Sprintf("Unknown column '%s'", x.Name.Name.O))
		}
		return str(x.Name.Name.O), nil // SET sql_mode = TRADITIONAL, SET autocommit = ON
	case *ast.FuncCallExpr:
		if d, ok := h.sessionFunc(x.FnName.L); ok && len(x.Args) == 0 {
			return d, nil
		}
		if x.FnName.L == "concat" {
			var b strings.Builder
			for _, a := range x.Args {
				d, err := h.eval(a, row)
				if err != nil || d.IsNull() {
					return sqllite.Datum{}, err
				}
				b.WriteString(d.String())
			}
			return str(b.String()), nil
		}
	case *ast.ParenthesesExpr:
		return h.eval(x.Expr, row)
	}
	return sqllite.Datum{}, notSupportedErr(fmt.Sprintf("expression %s here (session statements and information_schema queries take literals, variables, columns and simple filters)", exprName(e)))
}

func notSupportedErr(msg string) error {
	return newErr(mysql.ER_NOT_SUPPORTED_YET, "42000", "not supported: "+msg)
}

func valueDatum(v any) sqllite.Datum {
	switch x := v.(type) {
	case nil:
		return sqllite.Datum{}
	case int64:
		return num(x)
	case uint64:
		return str(strconv.FormatUint(x, 10))
	case string:
		return str(x)
	case []byte:
		return str(string(x))
	case float64:
		return sqllite.Datum{Kind: sqllite.KindFloat, Value: x}
	}
	return str(fmt.Sprint(v))
}
