package sqllite

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// outcome renders a statement's result or error for comparison: the same
// statement prepared and with literals written in must agree on it.
func outcome(res *Result, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if res.Columns != nil {
		return fmt.Sprintf("rows (%d):\n%s", len(res.Rows), render(res))
	}
	return fmt.Sprintf("affected %d %s", res.RowsAffected, res.Message)
}

func literalOutcome(t *testing.T, s *Session, sql string) string {
	t.Helper()
	res, err := s.Exec(testCtx(t), sql)
	if err != nil {
		return outcome(nil, err)
	}
	if len(res) != 1 {
		t.Fatalf("%s: %d results", sql, len(res))
	}
	return outcome(res[0], nil)
}

func preparedOutcome(t *testing.T, s *Session, sql string, args ...any) string {
	t.Helper()
	st, err := s.Prepare(testCtx(t), sql)
	if err != nil {
		t.Fatalf("prepare %s: %v", sql, err)
	}
	return outcome(st.Exec(testCtx(t), args...))
}

const prepTypesDDL = `CREATE TABLE %s (id BIGINT PRIMARY KEY, name VARCHAR(8), score DOUBLE,
	ok BOOLEAN, at TIMESTAMP, raw VARBINARY(8), amount DECIMAL(10,2), n INT NOT NULL DEFAULT 0)`

const prepTypesRows = `INSERT INTO %s VALUES
	(1, 'ann', 1.5, TRUE, '2024-01-02 03:04:05', x'0001', 10.25, 1),
	(2, 'bob', NULL, FALSE, '2024-02-03 00:00:00', NULL, -3.5, 2),
	(3, NULL, 3, NULL, NULL, x'ff', NULL, 3),
	(4, 'dee', -0.5, TRUE, '2023-12-31 23:59:59.5', x'', 0, 4),
	(5, 'ann', 7, FALSE, '2024-01-02 03:04:05', x'00', 99.99, 5)`

// Prepared SELECTs return what the same statement with the literals
// written in returns, errors included (a string bound where the key is
// BIGINT behaves like the literal '…').
func TestPreparedSelectMatchesLiteral(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, fmt.Sprintf(prepTypesDDL, "prep_sel"))
	mustExec(t, s, fmt.Sprintf(prepTypesRows, "prep_sel"))
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		tmpl string
		args []any
		lit  string
	}{
		// Point gets.
		{`SELECT * FROM prep_sel WHERE id = ?`, []any{2}, `SELECT * FROM prep_sel WHERE id = 2`},
		{`SELECT name, score FROM prep_sel WHERE id = ?`, []any{int64(3)}, `SELECT name, score FROM prep_sel WHERE id = 3`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{99}, `SELECT name FROM prep_sel WHERE id = 99`},
		{`SELECT name FROM prep_sel WHERE ? = id`, []any{uint8(1)}, `SELECT name FROM prep_sel WHERE 1 = id`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{"4"}, `SELECT name FROM prep_sel WHERE id = '4'`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{" 4 "}, `SELECT name FROM prep_sel WHERE id = ' 4 '`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{"abc"}, `SELECT name FROM prep_sel WHERE id = 'abc'`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{2.0}, `SELECT name FROM prep_sel WHERE id = 2e0`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{2.5}, `SELECT name FROM prep_sel WHERE id = 2.5e0`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{true}, `SELECT name FROM prep_sel WHERE id = TRUE`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{[]byte("1")}, `SELECT name FROM prep_sel WHERE id = x'31'`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{nil}, `SELECT name FROM prep_sel WHERE id = NULL`},
		{`SELECT name FROM prep_sel WHERE id = ?`, []any{uint64(math.MaxUint64)}, `SELECT name FROM prep_sel WHERE id = 18446744073709551615`},
		{`SELECT name FROM prep_sel WHERE id IN (?, ?, ?)`, []any{5, 1, 77}, `SELECT name FROM prep_sel WHERE id IN (5, 1, 77)`},
		// Ranges and filters.
		{`SELECT id FROM prep_sel WHERE id > ? AND id <= ?`, []any{1, 4}, `SELECT id FROM prep_sel WHERE id > 1 AND id <= 4`},
		{`SELECT id FROM prep_sel WHERE id BETWEEN ? AND ? ORDER BY id DESC`, []any{2, 5}, `SELECT id FROM prep_sel WHERE id BETWEEN 2 AND 5 ORDER BY id DESC`},
		{`SELECT id FROM prep_sel WHERE name = ?`, []any{"ann"}, `SELECT id FROM prep_sel WHERE name = 'ann'`},
		{`SELECT id FROM prep_sel WHERE name LIKE ?`, []any{"d%"}, `SELECT id FROM prep_sel WHERE name LIKE 'd%'`},
		{`SELECT id FROM prep_sel WHERE name <=> ?`, []any{nil}, `SELECT id FROM prep_sel WHERE name <=> NULL`},
		{`SELECT id FROM prep_sel WHERE name = ?`, []any{nil}, `SELECT id FROM prep_sel WHERE name = NULL`},
		{`SELECT id FROM prep_sel WHERE score >= ?`, []any{1.5}, `SELECT id FROM prep_sel WHERE score >= 1.5e0`},
		{`SELECT id FROM prep_sel WHERE score > ?`, []any{"2"}, `SELECT id FROM prep_sel WHERE score > '2'`},
		{`SELECT id FROM prep_sel WHERE ok = ?`, []any{false}, `SELECT id FROM prep_sel WHERE ok = FALSE`},
		{`SELECT id FROM prep_sel WHERE at = ?`, []any{ts}, `SELECT id FROM prep_sel WHERE at = '2024-01-02 03:04:05'`},
		{`SELECT id FROM prep_sel WHERE at > ?`, []any{ts.Add(-time.Second)}, `SELECT id FROM prep_sel WHERE at > '2024-01-02 03:04:04'`},
		{`SELECT id FROM prep_sel WHERE at = ?`, []any{"yesterday"}, `SELECT id FROM prep_sel WHERE at = 'yesterday'`},
		{`SELECT id FROM prep_sel WHERE raw = ?`, []any{[]byte{0xff}}, `SELECT id FROM prep_sel WHERE raw = x'ff'`},
		{`SELECT id FROM prep_sel WHERE amount < ?`, []any{10}, `SELECT id FROM prep_sel WHERE amount < 10`},
		{`SELECT id FROM prep_sel WHERE score + ? > n * ?`, []any{1, 2}, `SELECT id FROM prep_sel WHERE score + 1 > n * 2`},
		{`SELECT id FROM prep_sel WHERE name = ?`, []any{42}, `SELECT id FROM prep_sel WHERE name = 42`},
		// Select list, grouping, LIMIT and OFFSET.
		{`SELECT id, ? + n, CONCAT(name, ?) FROM prep_sel WHERE id < ?`, []any{10, "!", 3}, `SELECT id, 10 + n, CONCAT(name, '!') FROM prep_sel WHERE id < 3`},
		{`SELECT name, COUNT(*) FROM prep_sel WHERE id > ? GROUP BY name HAVING COUNT(*) >= ?`, []any{0, 2}, `SELECT name, COUNT(*) FROM prep_sel WHERE id > 0 GROUP BY name HAVING COUNT(*) >= 2`},
		{`SELECT n % ?, SUM(score) FROM prep_sel GROUP BY n % ?`, []any{2, 2}, `SELECT n % 2, SUM(score) FROM prep_sel GROUP BY n % 2`},
		{`SELECT n % ?, SUM(score) FROM prep_sel GROUP BY n % ?`, []any{2, 3}, `SELECT n % 2, SUM(score) FROM prep_sel GROUP BY n % 3`},
		{`SELECT id FROM prep_sel ORDER BY id LIMIT ? OFFSET ?`, []any{2, 1}, `SELECT id FROM prep_sel ORDER BY id LIMIT 2 OFFSET 1`},
		{`SELECT id FROM prep_sel LIMIT ?`, []any{0}, `SELECT id FROM prep_sel LIMIT 0`},
		{`SELECT id FROM prep_sel ORDER BY n * ?, id`, []any{-1}, `SELECT id FROM prep_sel ORDER BY n * -1, id`},
		{`EXPLAIN SELECT name FROM prep_sel WHERE id = ?`, []any{3}, `EXPLAIN SELECT name FROM prep_sel WHERE id = 3`},
	}
	for _, c := range cases {
		lit := literalOutcome(t, s, c.lit)
		prep := preparedOutcome(t, s, c.tmpl, c.args...)
		if prep != lit {
			t.Errorf("%s %v:\nprepared: %s\nliteral %s: %s", c.tmpl, c.args, prep, c.lit, lit)
		}
	}
	// Column headers are the text as written.
	st, err := s.Prepare(testCtx(t), `SELECT ?, ? + 1 AS x, name FROM prep_sel WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Exec(testCtx(t), "a", 1, 1)
	if err != nil || strings.Join(res.Columns, ",") != "?,x,name" || render(res) != "a|2|ann" {
		t.Fatalf("headers: %v %v", res, err)
	}
}

// Prepared INSERT, REPLACE, UPDATE and DELETE do to one table what the
// literal statements do to its twin, errors included.
func TestPreparedWritesMatchLiteral(t *testing.T) {
	s := newSession(t)
	for _, tbl := range []string{"prep_wa", "prep_wb"} {
		mustExec(t, s, fmt.Sprintf(prepTypesDDL, tbl))
		mustExec(t, s, fmt.Sprintf(prepTypesRows, tbl))
	}
	ts := time.Date(2025, 6, 7, 8, 9, 10, 123456000, time.FixedZone("x", 3600))
	cases := []struct {
		tmpl string // %[1]s: the table
		args []any
		lit  string
	}{
		{`INSERT INTO %[1]s VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, []any{10, "zed", 2.25, true, ts, []byte{1, 2}, "12.345", 7},
			`INSERT INTO %[1]s VALUES (10, 'zed', 2.25e0, TRUE, '2025-06-07 07:09:10.123456', x'0102', '12.345', 7)`},
		{`INSERT INTO %[1]s (id, name) VALUES (?, ?), (?, ?)`, []any{11, nil, 12, "x"},
			`INSERT INTO %[1]s (id, name) VALUES (11, NULL), (12, 'x')`},
		{`INSERT INTO %[1]s (id, n) VALUES (?, ?)`, []any{13, nil}, `INSERT INTO %[1]s (id, n) VALUES (13, NULL)`},
		{`INSERT INTO %[1]s (id) VALUES (?)`, []any{nil}, `INSERT INTO %[1]s (id) VALUES (NULL)`},
		{`INSERT INTO %[1]s (id) VALUES (?)`, []any{1}, `INSERT INTO %[1]s (id) VALUES (1)`},
		{`INSERT IGNORE INTO %[1]s (id) VALUES (?)`, []any{1}, `INSERT IGNORE INTO %[1]s (id) VALUES (1)`},
		{`INSERT INTO %[1]s (id, score) VALUES (?, ?)`, []any{14, "x"}, `INSERT INTO %[1]s (id, score) VALUES (14, 'x')`},
		{`INSERT INTO %[1]s (id, name) VALUES (?, ?)`, []any{15, "much too long"}, `INSERT INTO %[1]s (id, name) VALUES (15, 'much too long')`},
		{`INSERT INTO %[1]s (id, ok) VALUES (?, ?)`, []any{16, 2}, `INSERT INTO %[1]s (id, ok) VALUES (16, 2)`},
		{`INSERT INTO %[1]s (id, amount) VALUES (?, ?)`, []any{17, 1.005}, `INSERT INTO %[1]s (id, amount) VALUES (17, 1.005e0)`},
		{`INSERT INTO %[1]s (id, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + ?, name = ?`, []any{2, 0, 100, "dup"},
			`INSERT INTO %[1]s (id, n) VALUES (2, 0) ON DUPLICATE KEY UPDATE n = n + 100, name = 'dup'`},
		{`REPLACE INTO %[1]s (id, name) VALUES (?, ?)`, []any{3, "rep"}, `REPLACE INTO %[1]s (id, name) VALUES (3, 'rep')`},
		{`UPDATE %[1]s SET score = score * ?, name = ? WHERE id = ?`, []any{2, "up", 1}, `UPDATE %[1]s SET score = score * 2, name = 'up' WHERE id = 1`},
		{`UPDATE %[1]s SET n = n + ? WHERE id >= ? AND id < ?`, []any{10, 2, 5}, `UPDATE %[1]s SET n = n + 10 WHERE id >= 2 AND id < 5`},
		{`UPDATE %[1]s SET n = ? WHERE id = ?`, []any{nil, 4}, `UPDATE %[1]s SET n = NULL WHERE id = 4`},
		{`UPDATE %[1]s SET at = ? WHERE name = ?`, []any{"not a time", "ann"}, `UPDATE %[1]s SET at = 'not a time' WHERE name = 'ann'`},
		{`UPDATE %[1]s SET raw = ? WHERE id = ? AND n > ?`, []any{[]byte("zz"), 5, 1}, `UPDATE %[1]s SET raw = x'7a7a' WHERE id = 5 AND n > 1`},
		{`UPDATE %[1]s SET n = n + 1 WHERE id > ? LIMIT ?`, []any{0, 2}, `UPDATE %[1]s SET n = n + 1 WHERE id > 0 LIMIT 2`},
		{`UPDATE %[1]s SET id = ? WHERE id = ?`, []any{50, 1}, `UPDATE %[1]s SET id = 50 WHERE id = 1`},
		{`DELETE FROM %[1]s WHERE id = ?`, []any{"12"}, `DELETE FROM %[1]s WHERE id = '12'`},
		{`DELETE FROM %[1]s WHERE name = ? OR score < ?`, []any{"x", 0}, `DELETE FROM %[1]s WHERE name = 'x' OR score < 0`},
		{`DELETE FROM %[1]s WHERE id = ?`, []any{"nope"}, `DELETE FROM %[1]s WHERE id = 'nope'`},
	}
	for _, c := range cases {
		prep := preparedOutcome(t, s, fmt.Sprintf(c.tmpl, "prep_wa"), c.args...)
		lit := literalOutcome(t, s, fmt.Sprintf(c.lit, "prep_wb"))
		// Messages name the table; compare them with the names aligned.
		if strings.ReplaceAll(prep, "prep_wa", "prep_wb") != lit {
			t.Errorf("%s %v:\nprepared: %s\nliteral %s: %s", c.tmpl, c.args, prep, c.lit, lit)
		}
		a, b := query(t, s, `SELECT * FROM prep_wa`), query(t, s, `SELECT * FROM prep_wb`)
		if a != b {
			t.Fatalf("after %s %v the tables differ:\nprepared:\n%s\nliteral:\n%s", c.tmpl, c.args, a, b)
		}
	}
}

// Arguments that cannot be bound, and a wrong number of them, are type
// errors naming the problem; nothing runs.
func TestPreparedArgumentErrors(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_args (id BIGINT PRIMARY KEY, v INT)`)
	ins, err := s.Prepare(testCtx(t), `INSERT INTO prep_args VALUES (?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	if ins.NumParams() != 2 {
		t.Fatalf("NumParams = %d", ins.NumParams())
	}
	for _, args := range [][]any{nil, {1}, {1, 2, 3}} {
		_, err := ins.Exec(testCtx(t), args...)
		if !errors.Is(err, ErrType) || !strings.Contains(err.Error(), fmt.Sprintf("2 parameter markers (?) but Exec got %d arguments", len(args))) {
			t.Errorf("%d args: %v", len(args), err)
		}
	}
	for _, c := range []struct {
		arg  any
		want string
	}{
		{struct{}{}, "parameter 2: cannot bind a Go struct {}"},
		{map[string]int{}, "parameter 2: cannot bind a Go map[string]int"},
		{[]int{1}, "parameter 2: cannot bind a Go []int"},
		{math.NaN(), "parameter 2: float64 NaN has no SQL literal"},
		{math.Inf(-1), "parameter 2: float64 -Inf has no SQL literal"},
	} {
		_, err := ins.Exec(testCtx(t), 1, c.arg)
		if !errors.Is(err, ErrType) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%T: %v, want %q", c.arg, err, c.want)
		}
	}
	if got := query(t, s, `SELECT COUNT(*) FROM prep_args`); got != "0" {
		t.Fatalf("a failed bind wrote rows: %s", got)
	}
	// Named types, pointers and Datums bind by their kind.
	type myInt int16
	seven := 7
	var nilPtr *int
	for i, a := range []any{myInt(3), &seven, nilPtr, intDatum(9)} {
		if _, err := ins.Exec(testCtx(t), i, a); err != nil {
			t.Fatalf("arg %T: %v", a, err)
		}
	}
	if got := query(t, s, `SELECT * FROM prep_args`); got != "0|3\n1|7\n2|NULL\n3|9" {
		t.Fatalf("rows: %q", got)
	}
	// A concurrent Exec of the same Stmt is refused, not raced.
	ins.busy.Store(true)
	if _, err := ins.Exec(testCtx(t), 100, 1); err == nil || !strings.Contains(err.Error(), "not safe for concurrent use") {
		t.Fatalf("overlapping Exec: %v", err)
	}
	ins.busy.Store(false)
}

// Values read back as Datums bind to the same values: each row is found
// again by every one of its columns.
func TestPreparedDatumRoundTrip(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, fmt.Sprintf(prepTypesDDL, "prep_rt"))
	mustExec(t, s, fmt.Sprintf(prepTypesRows, "prep_rt"))
	rows := mustExec(t, s, `SELECT * FROM prep_rt`)[0]
	for _, row := range rows.Rows {
		for ci, col := range rows.Columns {
			if row[ci].IsNull() {
				continue
			}
			st, err := s.Prepare(testCtx(t), `SELECT id FROM prep_rt WHERE `+col+` = ? AND id = ?`)
			if err != nil {
				t.Fatal(err)
			}
			res, err := st.Exec(testCtx(t), row[ci], row[0])
			if err != nil {
				t.Fatalf("%s = %s: %v", col, row[ci], err)
			}
			if got := render(res); got != row[0].String() {
				t.Errorf("%s = %s (%s): got %q, want id %s", col, row[ci], row[ci].Kind, got, row[0])
			}
		}
	}
}

// A prepared statement sees schema changes made between Prepare and Exec.
func TestPreparedSeesSchemaChanges(t *testing.T) {
	s := newSession(t)
	other := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_ddl (id BIGINT PRIMARY KEY, a INT)`)
	mustExec(t, s, `INSERT INTO prep_ddl VALUES (1, 10), (2, 20)`)
	star, err := s.Prepare(testCtx(t), `SELECT * FROM prep_ddl WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	selB, err := s.Prepare(testCtx(t), `SELECT b FROM prep_ddl WHERE id = ?`)
	if err != nil {
		t.Fatal(err) // tables and columns are resolved by Exec
	}
	ins, err := s.Prepare(testCtx(t), `INSERT INTO prep_ddl VALUES (?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	run := func(st *Stmt, args ...any) string {
		t.Helper()
		res, err := st.Exec(testCtx(t), args...)
		if err != nil {
			return "error: " + err.Error()
		}
		if res.Columns == nil {
			return fmt.Sprintf("affected %d", res.RowsAffected)
		}
		return strings.Join(res.Columns, ",") + ": " + render(res)
	}
	if got := run(star, 1); got != "id,a: 1|10" {
		t.Fatalf("before: %q", got)
	}
	if got := run(selB, 1); !strings.Contains(got, "unknown column b") {
		t.Fatalf("b before it exists: %q", got)
	}
	// Another session adds a column: both the cached plan-free statement
	// and the one that failed now see it.
	mustExec(t, other, `ALTER TABLE prep_ddl ADD COLUMN b VARCHAR(10) DEFAULT 'dflt'`)
	if got := run(star, 1); got != "id,a,b: 1|10|dflt" {
		t.Fatalf("after ADD COLUMN: %q", got)
	}
	if got := run(selB, 2); got != "b: dflt" {
		t.Fatalf("b after ADD COLUMN: %q", got)
	}
	// VALUES (?, ?) now lacks a value for b... which has a default.
	if got := run(ins, 3, 30); !strings.Contains(got, "row 1 has 2 values but 3 columns are listed") {
		t.Fatalf("insert after ADD COLUMN: %q", got)
	}
	mustExec(t, other, `ALTER TABLE prep_ddl DROP COLUMN a`)
	if got := run(star, 2); got != "id,b: 2|dflt" {
		t.Fatalf("after DROP COLUMN: %q", got)
	}
	if got := run(ins, 3, "new"); got != "affected 1" {
		t.Fatalf("insert after DROP COLUMN: %q", got)
	}
	if got := run(star, 3); got != "id,b: 3|new" {
		t.Fatalf("inserted row: %q", got)
	}
	// Dropped and re-created with another key type.
	mustExec(t, other, `DROP TABLE prep_ddl`)
	if got := run(star, 3); !strings.Contains(got, "table prep_ddl does not exist") {
		t.Fatalf("after DROP TABLE: %q", got)
	}
	mustExec(t, other, `CREATE TABLE prep_ddl (id VARCHAR(5) PRIMARY KEY, c DOUBLE)`)
	mustExec(t, other, `INSERT INTO prep_ddl VALUES ('3', 1.5)`)
	if got := run(star, 3); got != "id,c: 3|1.5" {
		t.Fatalf("after re-CREATE: %q", got)
	}
}

// One statement executed many times with different arguments, interleaved
// with another prepared statement and with plain Exec, keeps its meaning.
func TestPreparedReuse(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_reuse (k VARCHAR(10), seq INT, v BIGINT, PRIMARY KEY (k, seq))`)
	ins, err := s.Prepare(testCtx(t), `INSERT INTO prep_reuse (k, seq, v) VALUES (?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	get, err := s.Prepare(testCtx(t), `SELECT v FROM prep_reuse WHERE k = ? AND seq = ?`)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := s.Prepare(testCtx(t), `UPDATE prep_reuse SET v = v + ? WHERE k = ? AND seq = ?`)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k%d", i%7)
		if _, err := ins.Exec(testCtx(t), k, i, i*i); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		res, err := get.Exec(testCtx(t), k, i)
		if err != nil || render(res) != fmt.Sprint(i*i) {
			t.Fatalf("get %d right after insert: %v %v", i, res, err)
		}
		if i%10 == 0 {
			// Plain text in between, with a literal where the
			// prepared statements have a marker.
			if got := query(t, s, fmt.Sprintf(`SELECT v FROM prep_reuse WHERE k = '%s' AND seq = %d`, k, i)); got != fmt.Sprint(i*i) {
				t.Fatalf("literal get %d: %q", i, got)
			}
		}
	}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k%d", i%7)
		res, err := upd.Exec(testCtx(t), -i, k, i)
		if err != nil || res.RowsAffected != 1 {
			t.Fatalf("update %d: %v %v", i, res, err)
		}
	}
	for i := n - 1; i >= 0; i-- {
		res, err := get.Exec(testCtx(t), fmt.Sprintf("k%d", i%7), i)
		if err != nil || render(res) != fmt.Sprint(i*i-i) {
			t.Fatalf("get %d after update: %v %v", i, res, err)
		}
	}
	// A missing row, then a present one: no state leaks between runs.
	if res, err := get.Exec(testCtx(t), "nope", 1); err != nil || len(res.Rows) != 0 {
		t.Fatalf("missing row: %v %v", res, err)
	}
	if res, err := get.Exec(testCtx(t), "k1", 1); err != nil || render(res) != "0" {
		t.Fatalf("row 1: %v %v", res, err)
	}
}

// Prepared statements run inside the session's transaction.
func TestPreparedInTransaction(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_txn (id BIGINT PRIMARY KEY, bal INT)`)
	mustExec(t, s, `INSERT INTO prep_txn VALUES (1, 100), (2, 5)`)
	upd, err := s.Prepare(testCtx(t), `UPDATE prep_txn SET bal = bal - ? WHERE id = ? AND bal >= ?`)
	if err != nil {
		t.Fatal(err)
	}
	get, err := s.Prepare(testCtx(t), `SELECT bal FROM prep_txn WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, `BEGIN`)
	if res, err := upd.Exec(testCtx(t), 30, 1, 30); err != nil || res.RowsAffected != 1 {
		t.Fatalf("update in txn: %v %v", res, err)
	}
	if res, err := get.Exec(testCtx(t), 1); err != nil || render(res) != "70" {
		t.Fatalf("read own write: %v %v", res, err)
	}
	if _, err := get.Exec(testCtx(t), 2); !errors.Is(err, ErrTransaction) {
		t.Fatalf("second row in txn: %v", err)
	}
	mustExec(t, s, `ROLLBACK`)
	mustExec(t, s, `BEGIN`)
	if res, err := upd.Exec(testCtx(t), 1000, 1, 1000); err != nil || res.RowsAffected != 0 {
		t.Fatalf("guarded update in txn: %v %v", res, err)
	}
	mustExec(t, s, `COMMIT`)
	if got := query(t, s, `SELECT bal FROM prep_txn WHERE id = 1`); got != "100" {
		t.Fatalf("after rollback and no-op commit: %q", got)
	}
}

// Markers where no literal value can stand, several statements, and
// markers in plain Exec text are refused with clear errors.
func TestPrepareRefusals(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_ref (id BIGINT PRIMARY KEY, v INT)`)
	for _, c := range []struct {
		sql  string
		want error
		msg  string
	}{
		{`SELECT id FROM prep_ref ORDER BY ?`, ErrNotSupported, "whole ORDER BY or GROUP BY item"},
		{`SELECT v, COUNT(*) FROM prep_ref GROUP BY ?`, ErrNotSupported, "whole ORDER BY or GROUP BY item"},
		{`SELECT id FROM prep_ref ORDER BY v DESC, ?`, ErrNotSupported, "whole ORDER BY or GROUP BY item"},
		{`SELECT 1; SELECT 2`, ErrNotSupported, "preparing 2 statements at once"},
		{``, ErrNotSupported, "preparing 0 statements at once"},
		{`SELEC ?`, ErrParse, "line 1 column"},
		{`SHOW TABLES LIKE ?`, ErrNotSupported, "parameter markers (?) in SHOW"},
		{`CREATE TABLE prep_x (id INT PRIMARY KEY, v INT DEFAULT ?)`, ErrParse, ""},
		{`DO ?`, ErrNotSupported, "parameter markers (?) in DO"},
	} {
		_, err := s.Prepare(testCtx(t), c.sql)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Prepare(%q): %v, want %v containing %q", c.sql, err, c.want, c.msg)
		}
	}
	// Without markers any one statement can be prepared.
	ddl, err := s.Prepare(testCtx(t), `ALTER TABLE prep_ref ADD COLUMN w INT`)
	if err != nil || ddl.NumParams() != 0 {
		t.Fatalf("prepare DDL: %v", err)
	}
	if _, err := ddl.Exec(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`SELECT id FROM prep_ref WHERE id = ?`, `INSERT INTO prep_ref (id, v) VALUES (?, 1)`} {
		if _, err := s.Exec(testCtx(t), sql); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "outside a prepared statement") {
			t.Fatalf("marker in Exec text %s: %v", sql, err)
		}
	}
	// SQL-level PREPARE is not the API's Prepare.
	if _, err := s.Exec(testCtx(t), `PREPARE p FROM 'SELECT 1'`); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("PREPARE statement: %v", err)
	}
}

// Plans describe themselves only for EXPLAIN; EXPLAIN (prepared or not,
// after plain runs of the same statement) still shows every line.
func TestExplainLinesOnlyForExplain(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_expl (id BIGINT PRIMARY KEY, a INT, b INT)`)
	mustExec(t, s, `INSERT INTO prep_expl VALUES (1, 1, 1), (2, 2, 2), (3, 3, 3)`)
	want := map[string][]string{
		`DELETE FROM prep_expl WHERE id > 1 AND a = 2 AND b + 0 = 9`: {
			"DELETE prep_expl: range scan (id > 1)", "pushed down to tablet servers: a = 2",
			"filter (client): b + 0 = 9", "each row written atomically"},
		`UPDATE prep_expl SET b = 5 WHERE id = 3 AND a + 0 = 3`: {
			"UPDATE prep_expl: point get (id = 3)", "filter (client): a + 0 = 3"},
		`SELECT a FROM prep_expl WHERE id >= 2 AND a = 3 AND b + 0 = 3 ORDER BY id DESC LIMIT 1`: {
			"prep_expl: range scan (id >= 2), reads columns (key, a, b)", "pushed down to tablet servers: a = 3",
			"order: by primary key, reverse scan (no sort)", "filter (client): b + 0 = 3", "limit 1 offset 0"},
	}
	for sql, lines := range want {
		mustExec(t, s, sql) // a plain run first: it must not leave the session describing, or not
		for _, explain := range []func() string{
			func() string { return query(t, s, "EXPLAIN "+sql) },
			func() string {
				st, err := s.Prepare(testCtx(t), "EXPLAIN "+sql)
				if err != nil {
					t.Fatal(err)
				}
				res, err := st.Exec(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				return render(res)
			},
		} {
			got := explain()
			for _, l := range lines {
				if !strings.Contains(got, l) {
					t.Errorf("EXPLAIN %s lacks %q:\n%s", sql, l, got)
				}
			}
		}
		if s.explaining {
			t.Fatalf("still explaining after EXPLAIN %s", sql)
		}
	}
}

// A prepared point SELECT reuses its plan while the table's schema is the
// same and each value converts exactly to its key column; every run still
// returns what the literal statement returns.
func TestPreparedPointPlanReuse(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE prep_pp (a BIGINT, b VARCHAR(5), v INT, PRIMARY KEY (a, b))`)
	mustExec(t, s, `INSERT INTO prep_pp VALUES (1, 'x', 10), (2, 'y', 20), (3, '3', 30), (-1, '', 40)`)
	st, err := s.Prepare(testCtx(t), `SELECT v, b FROM prep_pp WHERE b = ? AND (a) = ?`)
	if err != nil {
		t.Fatal(err)
	}
	if st.point == nil {
		t.Fatal("a point SELECT got no plan reuse")
	}
	cases := []struct {
		b, a any
		lit  string // the WHERE with literals
	}{
		{"x", 1, `b = 'x' AND a = 1`},
		{"y", 2, `b = 'y' AND a = 2`},
		{"y", 1, `b = 'y' AND a = 1`},
		{"3", "3", `b = '3' AND a = '3'`},
		{3, 3, `b = 3 AND a = 3`}, // a number against the VARCHAR key: no point get
		{"x", "abc", `b = 'x' AND a = 'abc'`},
		{"x", 1.5, `b = 'x' AND a = 1.5e0`},
		{"x", 1.0, `b = 'x' AND a = 1e0`},
		{"x", nil, `b = 'x' AND a = NULL`},
		{"x", true, `b = 'x' AND a = TRUE`},
		{"", -1, `b = '' AND a = -1`},
		{[]byte("y"), uint64(2), `b = x'79' AND a = 2`},
		{"much too long", 1, `b = 'much too long' AND a = 1`},
		{"x", uint64(math.MaxUint64), `b = 'x' AND a = 18446744073709551615`},
		{"x", 1, `b = 'x' AND a = 1`},
	}
	remembered := 0
	var last *selectPlan
	for _, c := range cases {
		res, err := st.Exec(testCtx(t), c.b, c.a)
		got := outcome(res, err)
		want := literalOutcome(t, s, `SELECT v, b FROM prep_pp WHERE `+c.lit)
		if got != want {
			t.Errorf("%v, %v:\nprepared: %s\nliteral:  %s", c.b, c.a, got, want)
		}
		if st.point.last != last {
			last = st.point.last
			remembered++
		}
		if res != nil {
			res.Columns[0] = "changed by the caller"
		}
	}
	// Planned once, then reused: values that do not convert exactly are
	// planned from scratch without replacing the remembered plan.
	if remembered != 1 {
		t.Errorf("the plan was remembered %d times, want once", remembered)
	}
	if st.point.reused != 8 {
		t.Errorf("the plan was reused %d times, want 8 (the runs whose values convert exactly to the key)", st.point.reused)
	}
	// A schema change replans; EXPLAIN and transactions plan from scratch.
	mustExec(t, s, `ALTER TABLE prep_pp ADD COLUMN w INT DEFAULT 5`)
	res, err := st.Exec(testCtx(t), "y", 2)
	if err != nil || strings.Join(res.Columns, ",") != "v,b" || render(res) != "20|y" || st.point.last == last {
		t.Fatalf("after ALTER: %v %v (replanned: %v)", res, err, st.point.last != last)
	}
	mustExec(t, s, `BEGIN`)
	if res, err := st.Exec(testCtx(t), "x", 1); err != nil || render(res) != "10|x" {
		t.Fatalf("in a transaction: %v %v", res, err)
	}
	mustExec(t, s, `ROLLBACK`)
	ex, err := s.Prepare(testCtx(t), `EXPLAIN SELECT v FROM prep_pp WHERE a = ? AND b = ?`)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ex.Exec(testCtx(t), 1, "x"); err != nil || !strings.Contains(render(res), "point get (a = 1, b = 'x')") {
		t.Fatalf("EXPLAIN: %v %v", res, err)
	}
	// Only that shape reuses plans.
	for _, sql := range []string{
		`SELECT COUNT(*) FROM prep_pp WHERE a = ? AND b = ?`,
		`SELECT v + ? FROM prep_pp WHERE a = ? AND b = ?`,
		`SELECT v FROM prep_pp WHERE a = ? AND b = ? LIMIT 1`,
		`SELECT v FROM prep_pp WHERE a = ? AND b = ? AND v > 0`,
		`SELECT v FROM prep_pp WHERE a = 1 AND b = ?`,
		`SELECT v FROM prep_pp WHERE a IN (?) AND b = ?`,
		`UPDATE prep_pp SET v = 1 WHERE a = ? AND b = ?`,
	} {
		p, err := s.Prepare(testCtx(t), sql)
		if err != nil {
			t.Fatal(err)
		}
		if p.point != nil {
			t.Errorf("%s: plan reuse for a statement that is not a plain point SELECT", sql)
		}
	}
	// A key column compared twice is planned, but not remembered.
	twice, err := s.Prepare(testCtx(t), `SELECT v FROM prep_pp WHERE a = ? AND a = ?`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if res, err := twice.Exec(testCtx(t), 2, 2); err != nil || render(res) != "20" {
			t.Fatalf("a = 2 AND a = 2: %v %v", res, err)
		}
	}
	if twice.point == nil || twice.point.last != nil {
		t.Errorf("a plan over a key prefix was remembered")
	}
}

// Stmt.Columns returns, without running the statement, the columns its
// Exec returns; every non-NULL value has its column's type's kind (the
// MySQL layer sends these types at prepare and execute alike).
func TestStmtColumns(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, fmt.Sprintf(prepTypesDDL, "prep_cols"))
	mustExec(t, s, fmt.Sprintf(prepTypesRows, "prep_cols"))
	mustExec(t, s, "CREATE TABLE prep_cols2 (id BIGINT PRIMARY KEY, tag VARCHAR(4))")
	mustExec(t, s, "INSERT INTO prep_cols2 VALUES (1, 'x'), (2, 'y')")
	cases := []struct {
		sql  string
		args []any
	}{
		{"SELECT * FROM prep_cols WHERE id = ?", []any{1}},
		{"SELECT name FROM prep_cols WHERE id BETWEEN ? AND ? ORDER BY name", []any{1, 5}},
		{"SELECT SUM(n), SUM(score), COUNT(*), COUNT(name), AVG(n), MIN(at), MAX(amount), MIN(name) FROM prep_cols WHERE id BETWEEN ? AND ?", []any{1, 5}},
		{"SELECT id + 1, n * 2, score - 1, -n, n DIV 2, n % 2, id = ?, ok AND n > 1, NOT ok, name LIKE 'a%', n IN (1, 2), n BETWEEN 1 AND 2, name IS NULL FROM prep_cols", []any{1}},
		{"SELECT CONCAT(name, '!'), LENGTH(name), UPPER(name), TRIM(name), SUBSTRING(name, 2), COALESCE(name, 'x'), IFNULL(n, 0), IF(ok, 'y', 'n'), NULLIF(n, 1), ABS(score), HEX(raw), LOCATE('n', name) FROM prep_cols", nil},
		{"SELECT CAST(n AS CHAR), CAST(score AS SIGNED), CAST(n AS DECIMAL(8,3)), CASE WHEN n > 2 THEN 'big' ELSE 'small' END, 7, 'lit', 2.5, 1e0, NOW() FROM prep_cols", nil},
		{"SELECT n, COUNT(*) AS c FROM prep_cols GROUP BY n HAVING COUNT(*) > ? ORDER BY n", []any{0}},
		{"SELECT a.id, b.tag, a.amount FROM prep_cols a JOIN prep_cols2 b ON a.id = b.id WHERE a.id = ?", []any{2}},
		{"SELECT id FROM prep_cols ORDER BY id LIMIT ? OFFSET ?", []any{2, 1}},
		{"SELECT name FROM prep_cols WHERE id = ?", []any{99}},
		{"SHOW TABLES", nil},
		{"DESCRIBE prep_cols", nil},
		{"SHOW CREATE TABLE prep_cols", nil},
		{"EXPLAIN SELECT * FROM prep_cols WHERE id = ?", []any{1}},
	}
	for _, tc := range cases {
		st, err := s.Prepare(testCtx(t), tc.sql)
		if err != nil {
			t.Fatalf("prepare %s: %v", tc.sql, err)
		}
		names, types, err := st.Columns(testCtx(t))
		if err != nil {
			t.Fatalf("columns of %s: %v", tc.sql, err)
		}
		res, err := st.Exec(testCtx(t), tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if fmt.Sprint(names) != fmt.Sprint(res.Columns) || fmt.Sprint(types) != fmt.Sprint(res.Types) {
			t.Fatalf("%s: Columns %q %v, Exec %q %v", tc.sql, names, types, res.Columns, res.Types)
		}
		for _, row := range res.Rows {
			for i, v := range row {
				if k := types[i].Kind; k != KindNull && !v.IsNull() && v.Kind != k {
					t.Errorf("%s: column %s is %v but holds %v (%s)", tc.sql, names[i], types[i], v, v.Kind)
				}
			}
		}
	}

	// A ? in the select list: its type is the bound value's.
	st, err := s.Prepare(testCtx(t), "SELECT ?, id FROM prep_cols WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	_, types, err := st.Columns(testCtx(t))
	if err != nil || types[0].Kind != KindNull || types[1].Name != "BIGINT" {
		t.Fatalf("SELECT ?: %v %v", types, err)
	}
	if res, err := st.Exec(testCtx(t), "x"); err != nil || res.Types[0].Kind != KindString {
		t.Fatalf("SELECT ? bound to a string: %v %v", res, err)
	}
	// Statements without rows have no columns; unknown tables are errors.
	st, err = s.Prepare(testCtx(t), "INSERT INTO prep_cols2 VALUES (?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	if names, _, err := st.Columns(testCtx(t)); names != nil || err != nil {
		t.Fatalf("INSERT: %v %v", names, err)
	}
	st, err = s.Prepare(testCtx(t), "SELECT * FROM prep_cols_missing")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Columns(testCtx(t)); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("unknown table: %v", err)
	}
}
