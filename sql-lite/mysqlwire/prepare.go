package mysqlwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
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

// prepareConn is the connection the library reads commands from and
// writes their responses to.
//
// It also keeps the parameter types of each prepared statement: a client
// sends them with an execute only when they change (new-params-bound flag
// 1; libmysqlclient and libmariadb send them on the first execute after
// binding and then flag 0, values only), and MySQL decodes the values of a
// flag-0 execute with the types last sent. The library decodes values only
// under flag 1 (it binds NULL to every parameter otherwise): a flag-0
// execute is rewritten here to carry the remembered types.
type prepareConn struct {
	net.Conn
	// defs are the column definitions of the prepare response being
	// written, in order (set by the handler before the library writes).
	defs [][]byte
	// okParams is the parameter count of the prepare whose response is
	// being written (-1: none); its OK packet gives the statement's id.
	okParams int
	params   map[uint32]*stmtParams // by statement id; closed ones removed
	r        *bufio.Reader          // reads the connection (several frames a call, as the library's own)
	in, buf  []byte                 // the rest of the frame being read; its buffer
}

// stmtParams are a prepared statement's parameter count and the types
// (2 bytes each) its last execute with types sent.
type stmtParams struct {
	n     int
	types []byte
}

func newPrepareConn(c net.Conn) *prepareConn {
	return &prepareConn{Conn: c, okParams: -1, params: map[uint32]*stmtParams{}, r: bufio.NewReaderSize(c, 16<<10)}
}

// prepared arms the connection for the response of a prepare that
// succeeded: its parameter count and column definitions.
func (c *prepareConn) prepared(params int, fields []*mysql.Field) {
	c.okParams = params
	c.defs = c.defs[:0]
	for _, f := range fields {
		c.defs = append(c.defs, f.Dump())
	}
}

// prepareOKLen is the length of a COM_STMT_PREPARE OK packet: header, 0x00,
// statement id (4), columns (2), parameters (2), filler, warnings (2).
const prepareOKLen = 4 + 12

// Write passes packets through, noting the id of a prepared statement and
// replacing the empty column definitions of its prepare response. The
// library writes one whole packet per Write (header and payload;
// compression is not offered).
func (c *prepareConn) Write(p []byte) (int, error) {
	if c.okParams >= 0 && len(p) == prepareOKLen && p[4] == mysql.OK_HEADER {
		if len(c.params) < maxTrackedStmts {
			c.params[binary.LittleEndian.Uint32(p[5:9])] = &stmtParams{n: c.okParams}
		}
		c.okParams = -1
		return c.Conn.Write(p)
	}
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

// maxTrackedStmts bounds the statements whose parameter types are kept
// (the handler refuses more than Config.MaxPrepared open ones; closed
// ones are removed).
const maxTrackedStmts = 1 << 16

// Read returns the client's frames, each read whole (framedConn, below,
// has refused one over the size limit) and rewritten if it is a flag-0
// execute.
func (c *prepareConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		if err := c.readFrame(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *prepareConn) readFrame() error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if c.buf == nil || cap(c.buf) < 4+n || cap(c.buf) > 64<<10 {
		c.buf = make([]byte, 0, max(4+n, 1<<10))
	}
	frame := append(c.buf[:0], hdr[:]...)
	frame = frame[:4+n]
	if _, err := io.ReadFull(c.r, frame[4:]); err != nil {
		return err
	}
	c.buf = frame
	if hdr[3] == 0 && n > 0 && n < mysql.MaxPayloadLen { // a command in one frame
		frame = c.command(frame)
	}
	c.in = frame
	return nil
}

// command notes a statement's close and the parameter types of an
// execute, and puts the remembered types into an execute without them.
func (c *prepareConn) command(frame []byte) []byte {
	payload := frame[4:]
	if len(payload) < 5 {
		return frame
	}
	id := binary.LittleEndian.Uint32(payload[1:5])
	switch payload[0] {
	case mysql.COM_STMT_CLOSE:
		delete(c.params, id)
		return frame
	case mysql.COM_STMT_EXECUTE:
	default:
		return frame
	}
	sp := c.params[id]
	if sp == nil || sp.n == 0 {
		return frame
	}
	// command, id (4), flags, iteration count (4), NULL bitmap, flag.
	pos := 10 + (sp.n+7)/8
	if len(payload) <= pos {
		return frame
	}
	if payload[pos] == 1 {
		if len(payload) >= pos+1+2*sp.n {
			sp.types = append(sp.types[:0], payload[pos+1:pos+1+2*sp.n]...)
		}
		return frame
	}
	if sp.types == nil || len(payload)+len(sp.types) >= mysql.MaxPayloadLen {
		return frame // no types were ever sent: the library reports it
	}
	out := binary.LittleEndian.AppendUint32(make([]byte, 0, len(frame)+len(sp.types)), uint32(len(payload)+len(sp.types)))
	out[3] = 0
	out = append(out, payload[:pos]...)
	out = append(out, 1)
	out = append(out, sp.types...)
	return append(out, payload[pos+1:]...)
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
