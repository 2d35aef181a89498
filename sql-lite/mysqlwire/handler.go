package mysqlwire

import (
	"time"

	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// handler serves one connection (server.Handler): the library calls it
// from the connection's goroutine only.
type handler struct {
	srv  *Server
	sess *sqllite.Session
	conn *server.Conn // set after the handshake
	pc   *prepareConn // what conn writes to
	// vars are the session variables set with SET (lower-case names;
	// values as text), read by SELECT @@name and SHOW VARIABLES.
	vars     map[string]string
	prepared int
	// binaryRows is set while a prepared session statement runs (its
	// rows go out in the binary format).
	binaryRows bool
}

// result encodes a result made here in the row format of the command.
func (h *handler) result(r *sqllite.Result) *mysql.Result { return toResult(r, h.binaryRows) }

func newHandler(s *Server) (*handler, error) {
	sess, err := sqllite.Open(s.ctx, s.client)
	if err != nil {
		return nil, err
	}
	return &handler{srv: s, sess: sess, vars: map[string]string{}}, nil
}

func (h *handler) close() { _ = h.sess.Close() }

// syncStatus reports autocommit and an open transaction in the status
// flags of OK and EOF packets (clients show and use them).
func (h *handler) syncStatus() {
	if h.conn == nil {
		return
	}
	h.conn.SetStatus(mysql.SERVER_STATUS_AUTOCOMMIT)
	if h.sess.InTransaction() {
		h.conn.SetInTransaction()
	} else {
		h.conn.ClearInTransaction()
	}
}

// UseDB is COM_INIT_DB and the database of the handshake.
func (h *handler) UseDB(db string) error {
	if strings.EqualFold(db, Database) || strings.EqualFold(db, "information_schema") {
		return nil
	}
	return newErr(mysql.ER_BAD_DB_ERROR, "42000", fmt.Sprintf("Unknown database '%s' (sql-lite has one database, %s)", db, Database))
}

// HandleQuery is COM_QUERY: the statements drivers send about the
// session are answered here (session.go), the rest by the engine. Several
// statements in one query send one result each.
func (h *handler) HandleQuery(query string) (r *mysql.Result, err error) {
	defer h.syncStatus()
	kind, start := statementKind(query), time.Now()
	defer func() { h.srv.metrics.observe(kind, start, err) }()
	if r, handled, err := h.sessionQuery(query); handled {
		return r, err
	}
	res, err := h.sess.Exec(h.srv.ctx, query)
	if err != nil && len(res) == 0 {
		return nil, toMySQL(err)
	}
	if err == nil && len(res) == 0 { // only comments
		return nil, newErr(mysql.ER_EMPTY_QUERY, "42000", "Query was empty")
	}
	last := len(res) - 1
	if err != nil {
		last = len(res) // every result precedes the error
	}
	for _, r := range res[:last] {
		// The results before the last go out here, flagged with "more
		// results"; the library sends the last one (or the error).
		h.conn.SetStatus(mysql.SERVER_MORE_RESULTS_EXISTS)
		werr := h.conn.WriteValue(h.engineResult(r, false))
		h.conn.UnsetStatus(mysql.SERVER_MORE_RESULTS_EXISTS)
		if werr != nil {
			return nil, werr
		}
	}
	if err != nil {
		return nil, toMySQL(err)
	}
	return h.engineResult(res[last], false), nil
}

// engineResult encodes an engine result.
func (h *handler) engineResult(r *sqllite.Result, binaryRows bool) *mysql.Result {
	renameShowTables(r)
	return toResult(r, binaryRows)
}

// renameShowTables gives SHOW TABLES' column MySQL's name
// (Tables_in_<database>), which tools look for. (SHOW's columns are text
// with no type name; a SELECT's have one, or none at all.)
func renameShowTables(r *sqllite.Result) {
	if len(r.Columns) == 1 && r.Columns[0] == "Tables" && len(r.Types) == 1 && r.Types[0].Kind == sqllite.KindString && r.Types[0].Name == "" {
		r.Columns = []string{"Tables_in_" + Database}
	}
}

// HandleFieldList is COM_FIELD_LIST (the mysql client's completion of
// column names).
func (h *handler) HandleFieldList(table string, _ string) ([]*mysql.Field, error) {
	cols, err := h.describe(table)
	if err != nil {
		return nil, toMySQL(err)
	}
	out := make([]*mysql.Field, len(cols))
	for i, c := range cols {
		out[i] = &mysql.Field{Name: []byte(c.name), OrgName: []byte(c.name), Table: []byte(table), OrgTable: []byte(table),
			Schema: []byte(Database), Charset: collUTF8MB4, Type: mysql.MYSQL_TYPE_VAR_STRING, DefaultValue: []byte{}}
	}
	return out, nil
}

// stmt is a prepared statement (the context the library keeps for it):
// an engine statement, or a session statement (session.go) run as text
// with its parameters bound as literals.
type stmt struct {
	st      *sqllite.Stmt
	session string
	markers []int // byte offsets of the session statement's ? markers
}

// HandleStmtPrepare is COM_STMT_PREPARE, through Session.Prepare. The
// response carries the result columns (Stmt.Columns; prepare.go), which
// C clients rely on: a statement that reports none is taken for one that
// returns no rows.
func (h *handler) HandleStmtPrepare(query string) (int, int, any, error) {
	if h.prepared >= h.srv.cfg.MaxPrepared {
		return 0, 0, nil, newErr(mysql.ER_MAX_PREPARED_STMT_COUNT_REACHED, "42000",
			fmt.Sprintf("Can't create more than max_prepared_stmt_count statements (current value: %d)", h.srv.cfg.MaxPrepared))
	}
	if node := parseSession(query); node != nil && h.isSession(node) {
		f := &markerFinder{}
		node.Accept(f)
		sort.Ints(f.offsets)
		fields, err := h.sessionColumns(node)
		if err != nil {
			return 0, 0, nil, err
		}
		h.prepared++
		h.expectResponse(len(f.offsets), fields)
		return len(f.offsets), len(fields), &stmt{session: query, markers: f.offsets}, nil
	}
	st, err := h.sess.Prepare(h.srv.ctx, query)
	if err != nil {
		return 0, 0, nil, toMySQL(err)
	}
	fields, err := h.engineColumns(st)
	if err != nil {
		return 0, 0, nil, toMySQL(err)
	}
	h.prepared++
	h.expectResponse(st.NumParams(), fields)
	return st.NumParams(), len(fields), &stmt{st: st}, nil
}

// expectResponse readies the connection for the library's response to a
// prepare that succeeded (prepare.go).
func (h *handler) expectResponse(params int, fields []*mysql.Field) {
	if h.pc != nil {
		h.pc.prepared(params, fields)
	}
}

// HandleStmtExecute is COM_STMT_EXECUTE: the library has decoded the
// binary parameters; strings arrive as bytes and are bound as strings
// when they are UTF-8 (drivers send both strings and []byte as
// MYSQL_TYPE_STRING).
func (h *handler) HandleStmtExecute(ctx any, _ string, args []any) (r *mysql.Result, err error) {
	defer h.syncStatus()
	start := time.Now()
	defer func() { h.srv.metrics.observe("execute", start, err) }()
	p, ok := ctx.(*stmt)
	if !ok {
		return nil, newErr(mysql.ER_UNKNOWN_STMT_HANDLER, "HY000", "unknown prepared statement")
	}
	if p.st == nil {
		q, err := bindText(p.session, p.markers, args)
		if err != nil {
			return nil, err
		}
		h.binaryRows = true
		defer func() { h.binaryRows = false }()
		r, _, err := h.sessionQuery(q)
		return r, err
	}
	bound := make([]any, len(args))
	for i, a := range args {
		bound[i] = a
		if v, ok := a.([]byte); ok && utf8.Valid(v) {
			bound[i] = string(v)
		}
	}
	res, err := p.st.Exec(h.srv.ctx, bound...)
	if err != nil {
		return nil, toMySQL(err)
	}
	return h.engineResult(res, true), nil
}

// HandleStmtClose is COM_STMT_CLOSE.
func (h *handler) HandleStmtClose(ctx any) error {
	if _, ok := ctx.(*stmt); ok {
		h.prepared--
	}
	return nil
}

// HandleOtherCommand answers the commands the library does not dispatch.
func (h *handler) HandleOtherCommand(cmd byte, _ []byte) error {
	switch cmd {
	case mysql.COM_SET_OPTION:
		return nil // multi-statements on/off: every query may hold several
	case mysql.COM_RESET_CONNECTION:
		// Connection pools reset a connection before reuse: roll back,
		// forget session variables (prepared statements stay: the
		// library keeps them).
		defer h.syncStatus()
		if h.sess.InTransaction() {
			if _, err := h.sess.Exec(h.srv.ctx, "ROLLBACK"); err != nil {
				return toMySQL(err)
			}
		}
		clear(h.vars)
		return nil
	}
	return newErr(mysql.ER_UNKNOWN_COM_ERROR, "08S01", fmt.Sprintf("command %d is not supported", cmd))
}
