package sqllite

import (
	"errors"
	"testing"
)

// Schema changes made by one session apply at once to statements of
// another session that cached the old schema.
func TestSchemaChangesSeenByOtherSessions(t *testing.T) {
	a, b := newSession(t), newSession(t)
	mustExec(t, a, `CREATE TABLE cat_x (id INT PRIMARY KEY, w INT); INSERT INTO cat_x VALUES (1, 10)`)
	if got := query(t, a, `SELECT * FROM cat_x`); got != "1|10" {
		t.Fatalf("got %q", got)
	}
	mustExec(t, b, `ALTER TABLE cat_x DROP COLUMN w; ALTER TABLE cat_x ADD COLUMN w INT`)
	// a's cached schema names the dropped column: its reads and writes must
	// use the new one.
	if got := query(t, a, `SELECT * FROM cat_x`); got != "1|NULL" {
		t.Fatalf("read after another session's ALTER: %q", got)
	}
	mustExec(t, a, `INSERT INTO cat_x VALUES (2, 20); UPDATE cat_x SET w = 5 WHERE id = 1`)
	if got := query(t, b, `SELECT * FROM cat_x`); got != "1|5\n2|20" {
		t.Fatalf("b sees %q", got)
	}
	mustExec(t, b, `DROP TABLE cat_x; CREATE TABLE cat_x (id INT PRIMARY KEY, w INT, z VARCHAR(3))`)
	mustExec(t, a, `INSERT INTO cat_x VALUES (3, 30, 'zz')`)
	if got := query(t, a, `SELECT * FROM cat_x`); got != "3|30|zz" {
		t.Fatalf("after re-create: %q", got)
	}
	// A transaction that spans a schema change conflicts at COMMIT.
	mustExec(t, a, `BEGIN; UPDATE cat_x SET w = 31 WHERE id = 3`)
	mustExec(t, b, `ALTER TABLE cat_x ADD COLUMN q INT`)
	if _, err := a.Exec(testCtx(t), `COMMIT`); !errors.Is(err, ErrConflict) {
		t.Fatalf("commit across a schema change: %v", err)
	}
	if got := query(t, a, `SELECT * FROM cat_x`); got != "3|30|zz|NULL" {
		t.Fatalf("after conflicting commit: %q", got)
	}
}
