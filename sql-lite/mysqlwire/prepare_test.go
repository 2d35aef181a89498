package mysqlwire

import (
	"encoding/binary"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/stretchr/testify/require"
)

// rawPrepare sends COM_STMT_PREPARE and returns the column definitions of
// the response (go-mysql's client reads and drops them); the statement is
// closed.
func rawPrepare(t *testing.T, c *client.Conn, query string) (params int, fields []*mysql.Field) {
	t.Helper()
	id, params, fields := rawPrepareOpen(t, c, query)
	rawClose(t, c, id)
	return params, fields
}

// rawClose sends COM_STMT_CLOSE (which has no response).
func rawClose(t *testing.T, c *client.Conn, id uint32) {
	t.Helper()
	c.ResetSequence()
	require.NoError(t, c.WritePacket(binary.LittleEndian.AppendUint32([]byte{0, 0, 0, 0, mysql.COM_STMT_CLOSE}, id)))
}

// rawPrepareOpen is rawPrepare leaving the statement open.
func rawPrepareOpen(t *testing.T, c *client.Conn, query string) (id uint32, params int, fields []*mysql.Field) {
	t.Helper()
	c.ResetSequence()
	require.NoError(t, c.WritePacket(append([]byte{0, 0, 0, 0, mysql.COM_STMT_PREPARE}, query...)))
	ok, err := c.ReadPacket()
	require.NoError(t, err)
	require.Equal(t, byte(mysql.OK_HEADER), ok[0], "prepare %q: %q", query, ok)
	id = binary.LittleEndian.Uint32(ok[1:])
	cols := int(binary.LittleEndian.Uint16(ok[5:]))
	params = int(binary.LittleEndian.Uint16(ok[7:]))
	readDefs := func(n int) []*mysql.Field {
		var out []*mysql.Field
		for i := 0; i < n; i++ {
			p, err := c.ReadPacket()
			require.NoError(t, err)
			f := &mysql.Field{}
			require.NoError(t, f.Parse(p))
			out = append(out, f)
		}
		if n > 0 {
			eof, err := c.ReadPacket()
			require.NoError(t, err)
			require.Equal(t, byte(mysql.EOF_HEADER), eof[0])
		}
		return out
	}
	readDefs(params)
	fields = readDefs(cols)
	return id, params, fields
}

// rawExecute sends COM_STMT_EXECUTE for statement id with BIGINT
// parameters, with their types (bound) or without them (as C clients
// re-execute a statement whose binding did not change), and returns the
// values of the rows' single text column.
func rawExecute(t *testing.T, c *client.Conn, id uint32, bound bool, args ...int64) []string {
	t.Helper()
	p := binary.LittleEndian.AppendUint32([]byte{0, 0, 0, 0, mysql.COM_STMT_EXECUTE}, id)
	p = append(p, 0)                                // no cursor
	p = binary.LittleEndian.AppendUint32(p, 1)      // iteration count
	p = append(p, make([]byte, (len(args)+7)/8)...) // no NULLs
	if bound {
		p = append(p, 1)
		for range args {
			p = append(p, mysql.MYSQL_TYPE_LONGLONG, 0)
		}
	} else {
		p = append(p, 0)
	}
	for _, a := range args {
		p = binary.LittleEndian.AppendUint64(p, uint64(a))
	}
	c.ResetSequence()
	require.NoError(t, c.WritePacket(p))
	head, err := c.ReadPacket()
	require.NoError(t, err)
	require.NotEqual(t, byte(mysql.ERR_HEADER), head[0], "execute: %q", head)
	require.Equal(t, []byte{1}, head, "one column")
	for _, want := range []byte{0, mysql.EOF_HEADER} { // definition, EOF
		pkt, err := c.ReadPacket()
		require.NoError(t, err)
		if want == mysql.EOF_HEADER {
			require.Equal(t, want, pkt[0])
		}
	}
	var out []string
	for {
		row, err := c.ReadPacket()
		require.NoError(t, err)
		if row[0] == mysql.EOF_HEADER && len(row) < 9 {
			return out
		}
		v, _, _, err := mysql.LengthEncodedString(row[2:]) // header, NULL bitmap
		require.NoError(t, err)
		out = append(out, string(v))
	}
}

// A re-execute that sends no parameter types (new-params-bound flag 0,
// how libmysqlclient and libmariadb send every execute after the first)
// has its values read with the types last sent.
func TestExecuteWithoutTypesUsesLastTypes(t *testing.T) {
	_, addr := startServer(t, Config{})
	tbl := tableName(t, "pflag")
	db := openDB(t, addr, "root", "", "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id BIGINT PRIMARY KEY, c VARCHAR(10))",
		"INSERT INTO "+tbl+" VALUES (1, 'one'), (2, 'two'), (3, 'three')")
	c, err := client.Connect(addr, "root", "", Database)
	require.NoError(t, err)
	defer c.Close()
	id, params, _ := rawPrepareOpen(t, c, "SELECT c FROM "+tbl+" WHERE id BETWEEN ? AND ? ORDER BY id")
	require.Equal(t, 2, params)
	require.Equal(t, []string{"one", "two"}, rawExecute(t, c, id, true, 1, 2))
	require.Equal(t, []string{"two", "three"}, rawExecute(t, c, id, false, 2, 3))
	require.Equal(t, []string{"three"}, rawExecute(t, c, id, false, 3, 9))
	// Another statement keeps its own types; a closed one is forgotten.
	id2, _, _ := rawPrepareOpen(t, c, "SELECT c FROM "+tbl+" WHERE id = ?")
	require.Equal(t, []string{"one"}, rawExecute(t, c, id2, true, 1))
	require.Equal(t, []string{"three"}, rawExecute(t, c, id2, false, 3))
	require.Equal(t, []string{"one", "two", "three"}, rawExecute(t, c, id, false, 1, 3))
	rawClose(t, c, id)
	rawClose(t, c, id2)
	require.NoError(t, c.Ping())
}

type fieldDef struct {
	Name    string
	Type    uint8
	Flag    uint16
	Charset uint16
	Length  uint32
	Decimal uint8
}

func defs(fs []*mysql.Field) []fieldDef {
	out := make([]fieldDef, len(fs))
	for i, f := range fs {
		out[i] = fieldDef{string(f.Name), f.Type, f.Flag, f.Charset, f.ColumnLength, f.Decimal}
	}
	return out
}

// COM_STMT_PREPARE reports the result columns COM_STMT_EXECUTE then sends
// (names, types, flags, lengths) for every kind of row-returning
// statement; statements that return no rows report none.
func TestPrepareReportsResultColumns(t *testing.T) {
	_, addr := startServer(t, Config{})
	tbl, other := tableName(t, "pcols"), tableName(t, "pcols2")
	db := openDB(t, addr, "root", "", "")
	mustExec(t, db,
		"CREATE TABLE "+tbl+" (id BIGINT PRIMARY KEY, k INT NOT NULL, c VARCHAR(120), pad CHAR(60), price DECIMAL(6,2), ok BOOLEAN, f DOUBLE, b VARBINARY(8), ts TIMESTAMP)",
		"CREATE TABLE "+other+" (id BIGINT PRIMARY KEY, name VARCHAR(20))",
		"INSERT INTO "+tbl+" VALUES (1, 10, 'one', 'p', 1.50, TRUE, 0.5, x'01', '2024-01-02 03:04:05'), (2, 20, 'two', 'q', 2.25, FALSE, 1.5, x'02', '2024-01-02 03:04:06')",
		"INSERT INTO "+other+" VALUES (1, 'a'), (2, 'b')",
	)
	c, err := client.Connect(addr, "root", "", Database)
	require.NoError(t, err)
	defer c.Close()

	cases := []struct {
		sql  string
		args []any
	}{
		// sysbench's oltp_read_only statements.
		{"SELECT c FROM " + tbl + " WHERE id=?", []any{1}},
		{"SELECT c FROM " + tbl + " WHERE id BETWEEN ? AND ?", []any{1, 2}},
		{"SELECT SUM(k) FROM " + tbl + " WHERE id BETWEEN ? AND ?", []any{1, 2}},
		{"SELECT c FROM " + tbl + " WHERE id BETWEEN ? AND ? ORDER BY c", []any{1, 2}},
		{"SELECT DISTINCT c FROM " + tbl + " WHERE id BETWEEN ? AND ? ORDER BY c", []any{1, 2}},
		// Every column type, an empty result, expressions, aggregates, joins.
		{"SELECT * FROM " + tbl + " WHERE id = ?", []any{1}},
		{"SELECT * FROM " + tbl + " WHERE id = ?", []any{99}},
		{"SELECT id + 1, k * 2, f * 2, -k, id = ?, k > 5 AND ok, c LIKE 'o%', k IN (1, 2), c IS NULL FROM " + tbl, []any{1}},
		{"SELECT CONCAT(c, '!'), LENGTH(c), UPPER(c), COALESCE(c, 'x'), IF(ok, 'y', 'n'), ABS(k), CAST(k AS CHAR), CAST(price AS DECIMAL(8,3)), " +
			"CASE WHEN k > 10 THEN 'big' ELSE 'small' END, 7, 'lit', 2.5, NOW() FROM " + tbl + " WHERE id BETWEEN ? AND ?", []any{1, 2}},
		{"SELECT COUNT(*), MIN(price), MAX(c), AVG(k), SUM(f), MIN(ts) FROM " + tbl, nil},
		{"SELECT k, COUNT(*) AS n FROM " + tbl + " GROUP BY k HAVING COUNT(*) > ? ORDER BY k", []any{0}},
		{"SELECT a.id, b.name, a.price FROM " + tbl + " a JOIN " + other + " b ON a.id = b.id WHERE a.id = ?", []any{2}},
		{"SELECT id FROM " + tbl + " ORDER BY id LIMIT ?", []any{1}},
		// SHOW, DESCRIBE, EXPLAIN, session statements, information_schema.
		{"SHOW TABLES", nil},
		{"DESCRIBE " + tbl, nil},
		{"SHOW CREATE TABLE " + tbl, nil},
		{"EXPLAIN SELECT c FROM " + tbl + " WHERE id = ?", []any{1}},
		{"SHOW DATABASES", nil},
		{"SHOW VARIABLES LIKE 'version%'", nil},
		{"SHOW WARNINGS", nil},
		{"SELECT @@version, @@max_allowed_packet, DATABASE(), @unset", nil},
		{"SELECT table_name, ordinal_position, column_type FROM information_schema.columns WHERE table_name = ?", []any{tbl}},
		{"SELECT * FROM information_schema.tables WHERE table_name = ?", []any{tbl}},
		// No rows.
		{"INSERT INTO " + other + " VALUES (?, ?)", []any{3, "c"}},
		{"UPDATE " + other + " SET name = ? WHERE id = ?", []any{"z", 3}},
		{"SET @x = ?", []any{"v"}},
	}
	for _, tc := range cases {
		params, prepared := rawPrepare(t, c, tc.sql)
		require.Equal(t, len(tc.args), params, tc.sql)
		st, err := c.Prepare(tc.sql)
		require.NoError(t, err, tc.sql)
		res, err := st.Execute(tc.args...)
		require.NoError(t, err, tc.sql)
		var executed []*mysql.Field
		if res.Resultset != nil {
			executed = res.Fields
		}
		require.Equal(t, st.ColumnNum(), len(prepared), tc.sql)
		require.Equal(t, defs(executed), defs(prepared), tc.sql)
		require.NoError(t, st.Close())
	}

	// A ? in the select list has the bound value's type: text at prepare
	// (as MySQL), the value's type at execute.
	_, prepared := rawPrepare(t, c, "SELECT ?, c FROM "+tbl+" WHERE id = 1")
	require.Len(t, prepared, 2)
	require.Equal(t, byte(mysql.MYSQL_TYPE_VAR_STRING), prepared[0].Type)
	st, err := c.Prepare("SELECT ?, c FROM " + tbl + " WHERE id = 1")
	require.NoError(t, err)
	res, err := st.Execute(5)
	require.NoError(t, err)
	require.Equal(t, byte(mysql.MYSQL_TYPE_LONGLONG), res.Fields[0].Type)
	require.Equal(t, defs(prepared[1:]), defs(res.Fields[1:]))

	// Errors MySQL reports at prepare are reported there.
	_, err = c.Prepare("SELECT nope FROM " + tbl)
	require.ErrorContains(t, err, "unknown column")
	_, err = c.Prepare("SELECT * FROM missing_table_pcols")
	require.ErrorContains(t, err, "does not exist")
}

// A table changed between prepare and execute: execute sends the
// statement's new columns (MySQL re-prepares and does the same; C clients
// then report CR_NEW_STMT_METADATA when the count changed).
func TestPrepareThenSchemaChange(t *testing.T) {
	_, addr := startServer(t, Config{})
	tbl := tableName(t, "pchange")
	db := openDB(t, addr, "root", "", "")
	mustExec(t, db, "CREATE TABLE "+tbl+" (id BIGINT PRIMARY KEY, a INT)", "INSERT INTO "+tbl+" VALUES (1, 2)")
	c, err := client.Connect(addr, "root", "", Database)
	require.NoError(t, err)
	defer c.Close()
	st, err := c.Prepare("SELECT * FROM " + tbl + " WHERE id = ?")
	require.NoError(t, err)
	require.Equal(t, 2, st.ColumnNum())
	mustExec(t, db, "ALTER TABLE "+tbl+" ADD COLUMN b VARCHAR(10)")
	res, err := st.Execute(1)
	require.NoError(t, err)
	require.Len(t, res.Fields, 3)
	require.Equal(t, "b", string(res.Fields[2].Name))
}

// Truncated executes and closes never make prepareConn panic (the library
// reports them); one cut before its bound flag passes unchanged; a
// flag-0 execute gets the remembered types.
func TestPrepareConnMalformedCommands(t *testing.T) {
	pc := newPrepareConn(nil)
	pc.params[7] = &stmtParams{n: 2}
	frame := func(payload []byte) []byte {
		f := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
		f[3] = 0
		return append(f, payload...)
	}
	exec := func(flag byte, tail ...byte) []byte {
		p := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_EXECUTE}, 7)
		p = append(p, 0, 1, 0, 0, 0, 0, flag) // flags, iterations, NULL bitmap, bound
		return append(p, tail...)
	}
	values := []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}
	bound := exec(1, append([]byte{mysql.MYSQL_TYPE_LONGLONG, 0, mysql.MYSQL_TYPE_LONGLONG, 0}, values...)...)
	unbound := exec(0, values...)
	// Before any types were sent a flag-0 execute is left alone.
	require.Equal(t, frame(unbound), pc.command(frame(unbound)))
	for _, p := range [][]byte{bound, unbound, {mysql.COM_STMT_CLOSE, 7, 0}} {
		for n := 1; n < len(p); n++ {
			out := pc.command(frame(p[:n]))
			if n <= 11 { // up to the NULL bitmap: no flag to act on
				require.Equal(t, frame(p[:n]), out, "%x", p[:n])
			}
		}
	}
	require.Equal(t, frame(bound), pc.command(frame(bound)))
	require.Equal(t, frame(bound), pc.command(frame(unbound)))
	// Another statement's execute is not touched; a closed one forgets.
	other := append([]byte(nil), unbound...)
	other[1] = 8
	require.Equal(t, frame(other), pc.command(frame(other)))
	pc.command(frame([]byte{mysql.COM_STMT_CLOSE, 7, 0, 0, 0}))
	require.Equal(t, frame(unbound), pc.command(frame(unbound)))
}
