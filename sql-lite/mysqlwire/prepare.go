package mysqlwire

import (
	"bytes"
	"encoding/binary"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser/ast"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// COM_STMT_PREPARE answers with the statement's result columns: C clients
// (libmysqlclient, libmariadb: sysbench, PHP, ...) take a statement whose
// prepare reports no columns for one that returns no rows, and then do
// not read the rows its execute sends ("Commands out of sync").
//
// The protocol library writes the prepare response itself, with the
// column count the handler returns but an empty definition for each
// column (go-mysql server/stmt.go writePrepare, which takes no fields).
// prepareConn, under the library, puts the real definitions in their
// place. The definitions are those COM_STMT_EXECUTE then sends (columnFor
// with the same names and types), except where a type is known only from
// the values (a ? in the select list): VAR_STRING at prepare, as MySQL;
// clients take the types execute sends.

// emptyColumnDef is the payload the library writes for each column.
var emptyColumnDef = (&mysql.Field{}).Dump()

// prepareConn is the connection the library writes command responses to.
type prepareConn struct {
	net.Conn
	// defs are the column definitions of the prepare response being
	// written, in order (set by the handler before the library writes).
	defs [][]byte
}

// Write passes packets through, replacing the empty column definitions
// of a prepare response. The library writes one whole packet per Write
// (header and payload; compression is not offered).
func (c *prepareConn) Write(p []byte) (int, error) {
	if len(c.defs) == 0 || len(p) != 4+len(emptyColumnDef) || !bytes.Equal(p[4:], emptyColumnDef) {
		return c.Conn.Write(p)
	}
	def := c.defs[0]
	c.defs = c.defs[1:]
	q := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(def)), uint32(len(def)))
	q[3] = p[3] // the library's sequence number
	if _, err := c.Conn.Write(append(q, def...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// expect arms the connection with the definitions of fields.
func (c *prepareConn) expect(fields []*mysql.Field) {
	c.defs = c.defs[:0]
	for _, f := range fields {
		c.defs = append(c.defs, f.Dump())
	}
}

// preparedFields are the definitions of result columns with the given
// names and types, as execute sends them for values of those types.
func preparedFields(names []string, types []sqllite.Type) []*mysql.Field {
	fields := make([]*mysql.Field, len(names))
	for i, name := range names {
		t := sqllite.Type{}
		if i < len(types) {
			t = types[i]
		}
		if t.Kind == sqllite.KindNull {
			t.Kind = sqllite.KindString // known only from the values: text (as MySQL for ?)
		}
		fields[i] = columnFor(name, t, nil, i).field
	}
	return fields
}

// engineColumns are the result columns of an engine statement.
func (h *handler) engineColumns(st *sqllite.Stmt) ([]*mysql.Field, error) {
	names, types, err := st.Columns(h.srv.ctx)
	if err != nil || names == nil {
		return nil, err
	}
	r := &sqllite.Result{Columns: names, Types: types}
	renameShowTables(r)
	return preparedFields(r.Columns, r.Types), nil
}

// sessionColumns are the result columns of a session statement
// (session.go), found as runSession finds them.
func (h *handler) sessionColumns(node ast.StmtNode) ([]*mysql.Field, error) {
	var names []string
	var types []sqllite.Type
	switch st := node.(type) {
	case *ast.ShowStmt:
		names, types = showSessionColumns(st.Tp)
	case *ast.SelectStmt:
		if st.From == nil {
			// Variables and session functions: evaluated now (no I/O).
			res, _, err := h.selectVars(st)
			if err != nil {
				return nil, err
			}
			return res.Resultset.Fields, nil
		}
		if name, ok := infoSchemaTable(st); ok {
			var err error
			if names, _, types, err = infoProjection(st, name); err != nil {
				return nil, err
			}
		}
	}
	return preparedFields(names, types), nil
}
