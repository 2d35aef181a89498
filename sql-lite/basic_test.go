package sqllite

import (
	"testing"
)

func TestBasicCreateInsertSelect(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE basic (id BIGINT PRIMARY KEY, name VARCHAR(20), score DOUBLE)`)
	res := mustExec(t, s, `INSERT INTO basic VALUES (1, 'ann', 1.5), (2, 'bob', NULL), (3, 'cy', 3)`)
	if res[0].RowsAffected != 3 {
		t.Fatalf("affected %d", res[0].RowsAffected)
	}
	if got := query(t, s, `SELECT name, score FROM basic WHERE id = 2`); got != "bob|NULL" {
		t.Fatalf("got %q", got)
	}
	if got := query(t, s, `SELECT * FROM basic`); got != "1|ann|1.5\n2|bob|NULL\n3|cy|3" {
		t.Fatalf("got %q", got)
	}
}

// Repeated statement texts reuse their parsed form; a different statement
// in between must not change what the first one means.
func TestRepeatedStatementsKeepTheirMeaning(t *testing.T) {
	s := newSession(t)
	for i := 0; i < 3; i++ {
		if got := query(t, s, `SELECT 1 + 1`); got != "2" {
			t.Fatalf("round %d: SELECT 1 + 1 = %q", i, got)
		}
		if got := query(t, s, `SELECT 'x'`); got != "x" {
			t.Fatalf("round %d: SELECT 'x' = %q", i, got)
		}
	}
}
