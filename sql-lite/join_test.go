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

// Equalities on a key prefix of the joined table: one prefix scan per left
// row (range lookup join), in batches, keeping the left order.
func TestRangeLookupJoin(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE rl_parent (id INT PRIMARY KEY, name VARCHAR(8)); CREATE TABLE rl_child (pid INT, n INT, v INT, PRIMARY KEY (pid, n))`)
	var pv, cv []string
	wantRows, wantSum := 0, 0
	for i := 0; i < 600; i++ {
		pv = append(pv, fmt.Sprintf("(%d, 'p%d')", i, i))
		kids := i % 4 // 0..3 children
		for k := 0; k < kids; k++ {
			cv = append(cv, fmt.Sprintf("(%d, %d, %d)", i, k, i+k))
			wantSum += i + k
		}
		wantRows += max(kids, 1)
	}
	mustExec(t, s, `INSERT INTO rl_parent VALUES `+strings.Join(pv, ","))
	mustExec(t, s, `INSERT INTO rl_child VALUES `+strings.Join(cv, ","))
	res := mustExec(t, s, `EXPLAIN SELECT p.id FROM rl_parent p LEFT JOIN rl_child c ON c.pid = p.id`)
	if !strings.Contains(render(res[0]), "range lookup join") {
		t.Fatalf("plan: %s", render(res[0]))
	}
	if got := query(t, s, `SELECT COUNT(*), SUM(c.v), COUNT(c.v) FROM rl_parent p LEFT JOIN rl_child c ON c.pid = p.id`); got != fmt.Sprintf("%d|%d|%d", wantRows, wantSum, len(cv)) {
		t.Fatalf("left range lookup join: %s", got)
	}
	if got := query(t, s, `SELECT COUNT(*) FROM rl_parent p JOIN rl_child c ON c.pid = p.id AND c.v > 300`); got == "" {
		t.Fatal("no answer")
	}
	// Left order is kept: the first rows come from the smallest parents.
	if got := query(t, s, `SELECT p.id, c.n FROM rl_parent p JOIN rl_child c ON c.pid = p.id ORDER BY p.id LIMIT 4`); got != "1|0\n2|0\n2|1\n3|0" {
		t.Fatalf("order: %q", got)
	}
}
