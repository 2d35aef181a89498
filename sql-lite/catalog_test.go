package sqllite

import (
	"errors"
	"testing"
	"time"

	"github.com/shaledb/shale/kvclient"
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

// A session on another kvclient.Client (as another process would be) does
// not share the cache: its writes still check the catalog, and its reads
// re-check it in parallel once the cached entry is older than
// recheckAfter.
func TestSchemaChangesSeenAcrossClients(t *testing.T) {
	ctx := testCtx(t)
	other, err := kvclient.Open(ctx, kvclient.Options{PD: testPD})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	b := newSession(t)
	mustExec(t, b, `CREATE TABLE cat_y (id INT PRIMARY KEY, w INT); INSERT INTO cat_y VALUES (1, 10)`)
	if got := query(t, c, `SELECT * FROM cat_y`); got != "1|10" {
		t.Fatalf("got %q", got)
	}
	mustExec(t, b, `ALTER TABLE cat_y DROP COLUMN w; ALTER TABLE cat_y ADD COLUMN w INT`)
	// Writes check the catalog: the insert lands in the new column.
	mustExec(t, c, `INSERT INTO cat_y VALUES (2, 20)`)
	if got := query(t, b, `SELECT * FROM cat_y`); got != "1|NULL\n2|20" {
		t.Fatalf("b sees %q", got)
	}
	mustExec(t, b, `ALTER TABLE cat_y ADD COLUMN z INT`)
	old := recheckAfter
	recheckAfter = 0
	defer func() { recheckAfter = old }()
	if got := query(t, c, `SELECT * FROM cat_y`); got != "1|NULL|NULL\n2|20|NULL" {
		t.Fatalf("c's read after a change through another client: %q", got)
	}
	// A read that finds its cached table dropped re-resolves the name,
	// however fresh the cache entry looked.
	recheckAfter = time.Hour
	mustExec(t, b, `DROP TABLE cat_y; CREATE TABLE cat_y (id INT PRIMARY KEY, w INT); INSERT INTO cat_y VALUES (3, 30)`)
	if got := query(t, c, `SELECT * FROM cat_y`); got != "3|30" {
		t.Fatalf("c's read after DROP/CREATE through another client: %q", got)
	}
}
