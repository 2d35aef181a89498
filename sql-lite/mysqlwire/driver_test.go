package mysqlwire

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Queries through database/sql and go-sql-driver/mysql: column types in
// both row formats (text for plain queries, binary for prepared ones), and
// values scanned into Go types.
func TestDriverColumnTypesAndValues(t *testing.T) {
	_, addr := startServer(t, Config{})
	db := openDB(t, addr, "root", "", "")
	tbl := tableName(t, "types")
	mustExec(t, db,
		"CREATE TABLE "+tbl+" (id BIGINT PRIMARY KEY, i INT, s SMALLINT, name VARCHAR(20), d DOUBLE, price DECIMAL(10,2), ok BOOLEAN, at DATETIME, b VARBINARY(8))",
		"INSERT INTO "+tbl+" VALUES (1, -7, 3, 'héllo', 2.5, 12.30, TRUE, '2024-05-06 07:08:09.5', x'00ff'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
	wantTypes := []string{"BIGINT", "INT", "SMALLINT", "VARCHAR", "DOUBLE", "DECIMAL", "TINYINT", "DATETIME", "VARBINARY"}
	check := func(rows *sql.Rows) {
		t.Helper()
		defer rows.Close()
		cts, err := rows.ColumnTypes()
		require.NoError(t, err)
		var got []string
		for _, ct := range cts {
			got = append(got, ct.DatabaseTypeName())
		}
		require.Equal(t, wantTypes, got)
		require.True(t, rows.Next())
		var (
			id    int64
			i, s  sql.NullInt64
			name  sql.NullString
			d     sql.NullFloat64
			price sql.NullString
			ok    sql.NullBool
			at    sql.NullTime
			b     []byte
		)
		require.NoError(t, rows.Scan(&id, &i, &s, &name, &d, &price, &ok, &at, &b))
		require.Equal(t, int64(1), id)
		require.Equal(t, int64(-7), i.Int64)
		require.Equal(t, int64(3), s.Int64)
		require.Equal(t, "héllo", name.String)
		require.Equal(t, 2.5, d.Float64)
		require.Equal(t, "12.30", price.String)
		require.True(t, ok.Valid && ok.Bool)
		require.Equal(t, time.Date(2024, 5, 6, 7, 8, 9, 500000000, time.UTC), at.Time)
		require.Equal(t, []byte{0, 0xff}, b)
		require.True(t, rows.Next())
		require.NoError(t, rows.Scan(&id, &i, &s, &name, &d, &price, &ok, &at, &b))
		require.Equal(t, int64(2), id)
		require.False(t, i.Valid || s.Valid || name.Valid || d.Valid || price.Valid || ok.Valid || at.Valid)
		require.Nil(t, b)
		require.False(t, rows.Next())
		require.NoError(t, rows.Err())
	}
	rows, err := db.Query("SELECT * FROM " + tbl + " ORDER BY id") // text protocol
	require.NoError(t, err)
	check(rows)
	rows, err = db.Query("SELECT * FROM "+tbl+" WHERE id >= ? ORDER BY id", 1) // binary protocol
	require.NoError(t, err)
	check(rows)

	// Computed columns are typed by their values.
	var n int64
	var avg float64
	var cnt int64
	require.NoError(t, db.QueryRow("SELECT COUNT(*), AVG(d), SUM(id) FROM "+tbl).Scan(&cnt, &avg, &n))
	require.Equal(t, int64(2), cnt)
	require.Equal(t, 2.5, avg)
	require.Equal(t, int64(3), n)
}

// Prepared statements (COM_STMT_PREPARE / EXECUTE / CLOSE) map onto
// Session.Prepare: parameters of every type, NULL, reuse, and writes.
func TestDriverPreparedStatements(t *testing.T) {
	_, addr := startServer(t, Config{})
	db := openDB(t, addr, "root", "", "")
	tbl := tableName(t, "prep")
	mustExec(t, db, "CREATE TABLE "+tbl+" (k VARCHAR(10) PRIMARY KEY, n BIGINT, f DOUBLE, t DATETIME)")
	ins, err := db.Prepare("INSERT INTO " + tbl + " VALUES (?, ?, ?, ?)")
	require.NoError(t, err)
	at := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, k := range []string{"a", "b", "c"} {
		res, err := ins.Exec(k, int64(i*10), float64(i)+0.5, at)
		require.NoError(t, err)
		aff, _ := res.RowsAffected()
		require.Equal(t, int64(1), aff)
	}
	_, err = ins.Exec("d", nil, nil, nil)
	require.NoError(t, err)
	require.NoError(t, ins.Close())

	sel, err := db.Prepare("SELECT n, f, t FROM " + tbl + " WHERE k = ?")
	require.NoError(t, err)
	defer sel.Close()
	for i, k := range []string{"a", "b", "c"} {
		var n int64
		var f float64
		var got time.Time
		require.NoError(t, sel.QueryRow(k).Scan(&n, &f, &got))
		require.Equal(t, int64(i*10), n)
		require.Equal(t, float64(i)+0.5, f)
		require.Equal(t, at, got)
	}
	var n sql.NullInt64
	var f sql.NullFloat64
	var got sql.NullTime
	require.NoError(t, sel.QueryRow("d").Scan(&n, &f, &got))
	require.False(t, n.Valid || f.Valid || got.Valid)
	require.ErrorIs(t, sel.QueryRow("zz").Scan(&n, &f, &got), sql.ErrNoRows)

	upd, err := db.Prepare("UPDATE " + tbl + " SET n = n + ? WHERE k IN (?, ?)")
	require.NoError(t, err)
	res, err := upd.Exec(5, "a", "b")
	require.NoError(t, err)
	aff, _ := res.RowsAffected()
	require.Equal(t, int64(2), aff)
	var sum int64
	require.NoError(t, db.QueryRow("SELECT SUM(n) FROM "+tbl+" WHERE k <= ?", "c").Scan(&sum))
	require.Equal(t, int64(0+10+20+10), sum)

	// A parse error at prepare time is 1064, a wrong argument count is
	// caught by the driver, a type error at execute time is reported.
	_, err = db.Prepare("SELEC 1")
	requireCode(t, err, 1064, "42000")
	_, err = db.Exec("INSERT INTO "+tbl+" VALUES (?, ?, NULL, NULL)", "e", "not a number")
	require.Error(t, err)
}

// Errors carry MySQL's codes and SQLSTATEs.
func TestDriverErrorCodes(t *testing.T) {
	_, addr := startServer(t, Config{})
	db := openDB(t, addr, "root", "", "")
	tbl := tableName(t, "errs")
	mustExec(t, db, "CREATE TABLE "+tbl+" (k BIGINT PRIMARY KEY, v VARCHAR(3) NOT NULL)", "INSERT INTO "+tbl+" VALUES (1, 'a')")
	for _, c := range []struct {
		sql   string
		code  uint16
		state string
	}{
		{"INSERT INTO " + tbl + " VALUES (1, 'b')", 1062, "23000"},
		{"SELECT * FROM no_such_table_x", 1146, "42S02"},
		{"SELEC * FROM " + tbl, 1064, "42000"},
		{"SELECT nope FROM " + tbl, 1054, "42S22"},
		{"CREATE TABLE " + tbl + " (k BIGINT PRIMARY KEY)", 1050, "42S01"},
		{"INSERT INTO " + tbl + " VALUES (2, NULL)", 1048, "23000"},
		{"INSERT INTO " + tbl + " VALUES (2, 'toolong')", 1406, "22001"},
		{"CREATE INDEX i ON " + tbl + " (v)", 1235, "42000"},
		{"USE otherdb", 1049, "42000"},
		{"SELECT @@no_such_variable", 1193, "HY000"},
		{"/* only a comment */", 1065, "42000"},
	} {
		_, err := db.Exec(c.sql)
		require.Error(t, err, c.sql)
		me := driverErr(t, err)
		require.Equal(t, c.code, me.Number, "%s: %v", c.sql, err)
		require.Equal(t, c.state, string(me.SQLState[:]), "%s: %v", c.sql, err)
	}
	// The prepared path maps errors the same way.
	_, err := db.Exec("INSERT INTO "+tbl+" VALUES (?, ?)", 1, "c")
	requireCode(t, err, 1062, "23000")
}

// What drivers and tools send about the session, and the catalog
// statements.
func TestDriverSessionAndCatalog(t *testing.T) {
	_, addr := startServer(t, Config{})
	db := openDB(t, addr, "root", "", "")
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	one := func(q string, dest ...any) {
		t.Helper()
		require.NoError(t, conn.QueryRowContext(context.Background(), q).Scan(dest...), q)
	}
	exec := func(q string) {
		t.Helper()
		_, err := conn.ExecContext(context.Background(), q)
		require.NoError(t, err, q)
	}
	var version, comment, dbName, user string
	var maxPacket int64
	one("SELECT @@version, @@version_comment, @@max_allowed_packet, DATABASE(), USER()", &version, &comment, &maxPacket, &dbName, &user)
	require.Equal(t, ServerVersion, version)
	require.Equal(t, "Shale sql-lite", comment)
	require.Equal(t, int64(4<<20), maxPacket)
	require.Equal(t, Database, dbName)
	require.Equal(t, "root@127.0.0.1", user)
	exec("SET NAMES utf8mb4")
	exec("SET NAMES 'utf8' COLLATE 'utf8_general_ci'")
	exec("SET autocommit = 1")
	exec("SET SESSION sql_mode = 'ANSI_QUOTES', @@session.time_zone = '+02:00', @myvar = 42")
	exec("SET character_set_results = NULL")
	exec("USE shale")
	var mode, tz, myvar string
	one("SELECT @@sql_mode, @@time_zone, @myvar", &mode, &tz, &myvar)
	require.Equal(t, []string{"ANSI_QUOTES", "+02:00", "42"}, []string{mode, tz, myvar})
	_, err = conn.ExecContext(context.Background(), "SET autocommit = 0")
	requireCode(t, err, 1235, "42000")
	_, err = conn.ExecContext(context.Background(), "SET NAMES latin1")
	requireCode(t, err, 1115, "42000")
	var name, value string
	one("SHOW VARIABLES LIKE 'sql_mode'", &name, &value)
	require.Equal(t, "ANSI_QUOTES", value)
	require.Equal(t, []string{"autocommit", "max_allowed_packet"},
		firstCol(t, db, "SHOW SESSION VARIABLES WHERE Variable_name IN ('max_allowed_packet', 'autocommit', 'nope')"))
	exec("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
	exec("SET sql_mode = CONCAT(@@sql_mode, ',STRICT_TRANS_TABLES'), NAMES utf8mb4")
	one("SELECT @@sql_mode", &mode)
	require.Equal(t, "ANSI_QUOTES,STRICT_TRANS_TABLES", mode)

	tbl := tableName(t, "cat")
	exec("CREATE TABLE " + tbl + " (id BIGINT PRIMARY KEY, label VARCHAR(12) NOT NULL DEFAULT 'x', price DECIMAL(8,2))")
	require.Contains(t, firstCol(t, db, "SHOW DATABASES"), "shale")
	require.Contains(t, firstCol(t, db, "SHOW DATABASES"), "information_schema")
	require.Contains(t, firstCol(t, db, "SHOW TABLES"), tbl)
	rows, err := db.Query("SHOW TABLES")
	require.NoError(t, err)
	cols, _ := rows.Columns()
	rows.Close()
	require.Equal(t, []string{"Tables_in_shale"}, cols)
	require.Equal(t, []string{"id", "label", "price"}, firstCol(t, db, "DESCRIBE "+tbl))
	var tn, create string
	one("SHOW CREATE TABLE "+tbl, &tn, &create)
	require.Contains(t, create, "CREATE TABLE "+tbl)
	require.Contains(t, create, "label VARCHAR(12) NOT NULL DEFAULT 'x'")

	require.Equal(t, []string{tbl}, firstCol(t, db,
		"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '"+tbl+"%' ORDER BY table_name"))
	rows, err = db.Query("SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, ORDINAL_POSITION, CHARACTER_MAXIMUM_LENGTH, NUMERIC_SCALE FROM information_schema.columns WHERE table_schema = 'shale' AND table_name = ? ORDER BY ordinal_position DESC", tbl)
	require.NoError(t, err)
	var got [][]any
	for rows.Next() {
		var cn, dt, ct, nul, key string
		var pos int64
		var ml, sc sql.NullInt64
		require.NoError(t, rows.Scan(&cn, &dt, &ct, &nul, &key, &pos, &ml, &sc))
		got = append(got, []any{cn, dt, ct, nul, key, pos, ml.Int64, sc.Int64})
	}
	require.NoError(t, rows.Err())
	require.Equal(t, [][]any{
		{"price", "decimal", "decimal(8,2)", "YES", "", int64(3), int64(0), int64(2)},
		{"label", "varchar", "varchar(12)", "NO", "", int64(2), int64(12), int64(0)},
		{"id", "bigint", "bigint", "NO", "PRI", int64(1), int64(0), int64(0)},
	}, got)
	require.Empty(t, firstCol(t, db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'other'"))
}

// firstCol returns the first column of every row of q.
func firstCol(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	require.NoError(t, err, q)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	out := []string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(sql.RawBytes)
		}
		require.NoError(t, rows.Scan(vals...))
		out = append(out, string(*vals[0].(*sql.RawBytes)))
	}
	require.NoError(t, rows.Err())
	return out
}

// Transactions through the driver: BEGIN ... ROLLBACK leaves nothing,
// BEGIN ... COMMIT is seen by another connection; several statements in
// one query (multiStatements) all run.
func TestDriverTransactionsAndMultiStatements(t *testing.T) {
	_, addr := startServer(t, Config{})
	db := openDB(t, addr, "root", "", "multiStatements=true")
	tbl := tableName(t, "tx")
	mustExec(t, db, "CREATE TABLE "+tbl+" (k BIGINT PRIMARY KEY, v BIGINT)")
	tx, err := db.Begin()
	require.NoError(t, err)
	_, err = tx.Exec("INSERT INTO "+tbl+" VALUES (?, ?)", 1, 1)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	require.Empty(t, firstCol(t, db, "SELECT k FROM "+tbl))
	tx, err = db.Begin()
	require.NoError(t, err)
	_, err = tx.Exec("INSERT INTO " + tbl + " VALUES (2, 2)")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Equal(t, []string{"2"}, firstCol(t, db, "SELECT k FROM "+tbl))

	_, err = db.Exec("INSERT INTO " + tbl + " VALUES (3, 3); INSERT INTO " + tbl + " VALUES (4, 4)")
	require.NoError(t, err)
	require.Equal(t, []string{"2", "3", "4"}, firstCol(t, db, "SELECT k FROM "+tbl+" ORDER BY k"))
	// A failing statement after a good one: the first ran, the error is
	// reported.
	_, err = db.Exec("INSERT INTO " + tbl + " VALUES (5, 5); INSERT INTO " + tbl + " VALUES (5, 5)")
	requireCode(t, err, 1062, "23000")
	require.Equal(t, []string{"2", "3", "4", "5"}, firstCol(t, db, "SELECT k FROM "+tbl+" ORDER BY k"))
}

// Authentication: both plugins, right and wrong passwords, unknown users.
func TestDriverAuthentication(t *testing.T) {
	for _, plugin := range []string{AuthNative, AuthCachingSHA} {
		t.Run(plugin, func(t *testing.T) {
			_, addr := startServer(t, Config{User: "app", Password: "s3cret", AuthPlugin: plugin})
			db := openDB(t, addr, "app", "s3cret", "")
			require.NoError(t, db.Ping())
			var v string
			require.NoError(t, db.QueryRow("SELECT @@version").Scan(&v))
			bad := openDB(t, addr, "app", "wrong", "")
			requireCode(t, bad.Ping(), 1045, "28000")
			nobody := openDB(t, addr, "root", "", "")
			require.Error(t, nobody.Ping())
		})
	}
}
