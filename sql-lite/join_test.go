package sqllite

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestJoinsBatchingAndMemoryBound(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE jt_a (id INT PRIMARY KEY, b INT, grp INT); CREATE TABLE jt_b (id INT PRIMARY KEY, label VARCHAR(10), grp INT)`)
	var av, bv []string
	for i := 0; i < 700; i++ {
		av = append(av, fmt.Sprintf("(%d, %d, %d)", i, i*2, i%5))
	}
	for i := 0; i < 1000; i += 3 {
		bv = append(bv, fmt.Sprintf("(%d, 'b%d', %d)", i, i, i%7))
	}
	mustExec(t, s, `INSERT INTO jt_a VALUES `+strings.Join(av, ","))
	mustExec(t, s, `INSERT INTO jt_b VALUES `+strings.Join(bv, ","))
	// Lookup join over several batches: a.b = 2i matches b when 2i % 3 == 0
	// and 2i < 1000, i.e. i % 3 == 0 and i < 500: 167 rows.
	if got := query(t, s, `SELECT COUNT(*), SUM(a.id) FROM jt_a a JOIN jt_b b ON b.id = a.b`); got != "167|41583" {
		t.Fatalf("lookup join: %s", got)
	}
	// LEFT lookup join keeps every left row.
	if got := query(t, s, `SELECT COUNT(*), COUNT(b.id) FROM jt_a a LEFT JOIN jt_b b ON b.id = a.b`); got != "700|167" {
		t.Fatalf("left lookup join: %s", got)
	}
	// LIMIT stops a lookup join early.
	if got := query(t, s, `SELECT a.id FROM jt_a a JOIN jt_b b ON b.id = a.b LIMIT 3`); got != "0\n3\n6" {
		t.Fatalf("limit: %q", got)
	}
	// A hash join (on a non-key column) agrees with a nested-loop count.
	want := 0
	for i := 0; i < 700; i++ {
		for j := 0; j < 1000; j += 3 {
			if i%5 == j%7 {
				want++
			}
		}
	}
	if got := query(t, s, `SELECT COUNT(*) FROM jt_a a JOIN jt_b b ON a.grp = b.grp`); got != fmt.Sprint(want) {
		t.Fatalf("hash join: %s, want %d", got, want)
	}
	// Past the memory bound the hash join fails clearly.
	old := HashJoinMaxRows
	HashJoinMaxRows = 100
	defer func() { HashJoinMaxRows = old }()
	_, err := s.Exec(testCtx(t), `SELECT COUNT(*) FROM jt_a a JOIN jt_b b ON a.grp = b.grp`)
	if !errors.Is(err, ErrResource) || !strings.Contains(err.Error(), "lookup join") {
		t.Fatalf("hash join past the bound: %v", err)
	}
	HashJoinMaxRows = old
	oldBytes := HashJoinMaxBytes
	HashJoinMaxBytes = 10_000
	defer func() { HashJoinMaxBytes = oldBytes }()
	if _, err := s.Exec(testCtx(t), `SELECT COUNT(*) FROM jt_a a JOIN jt_b b ON a.grp = b.grp`); !errors.Is(err, ErrResource) {
		t.Fatalf("hash join past the byte bound: %v", err)
	}
	HashJoinMaxRows = 100
	// A lookup join needs no memory for the other table.
	if got := query(t, s, `SELECT COUNT(*) FROM jt_a a JOIN jt_b b ON b.id = a.b`); got != "167" {
		t.Fatalf("lookup join under a small bound: %s", got)
	}
}
