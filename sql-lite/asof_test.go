package sqllite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// AS OF TIMESTAMP reads the past: as an integer (a commit timestamp), as a
// 'YYYY-MM-DD hh:mm:ss.ffffff' string and as NOW() - INTERVAL.
func TestAsOfTimestamp(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE asof_t (id INT PRIMARY KEY, v INT) COMMENT 'SPLIT AT (5)'`)
	mustExec(t, s, `INSERT INTO asof_t VALUES (1, 10), (9, 90)`)
	t1 := s.client.Now()
	// Reading at t1 closes it: the writes below commit after it.
	if got := query(t, s, fmt.Sprintf(`SELECT id, v FROM asof_t AS OF TIMESTAMP %d ORDER BY id`, t1)); got != "1|10\n9|90" {
		t.Fatalf("as of %d: %q", t1, got)
	}
	mustExec(t, s, `UPDATE asof_t SET v = 20 WHERE id = 1`)
	mustExec(t, s, `INSERT INTO asof_t VALUES (5, 50)`)
	if got := query(t, s, `SELECT id, v FROM asof_t ORDER BY id`); got != "1|20\n5|50\n9|90" {
		t.Fatalf("now: %q", got)
	}
	str := time.UnixMicro(t1).UTC().Format("2006-01-02 15:04:05.000000")
	for _, q := range []string{
		fmt.Sprintf(`SELECT id, v FROM asof_t AS OF TIMESTAMP %d ORDER BY id`, t1),
		fmt.Sprintf(`SELECT id, v FROM asof_t AS OF TIMESTAMP '%s' ORDER BY id`, str),
		fmt.Sprintf(`SELECT a.id, a.v FROM asof_t a AS OF TIMESTAMP %d JOIN asof_t b AS OF TIMESTAMP %d ON b.id = a.id ORDER BY a.id`, t1, t1),
	} {
		if got := query(t, s, q); got != "1|10\n9|90" {
			t.Fatalf("%s: %q, want the rows before the update", q, got)
		}
	}
	if got := query(t, s, `SELECT COUNT(*) FROM asof_t AS OF TIMESTAMP NOW() - INTERVAL 1 HOUR`); got != "0" {
		t.Fatalf("an hour ago: %q, want 0 rows", got)
	}
	for q, want := range map[string]string{
		`SELECT v FROM asof_t AS OF TIMESTAMP NOW() + INTERVAL 1 HOUR`:                              "in the future",
		fmt.Sprintf(`SELECT a.v FROM asof_t a AS OF TIMESTAMP %d JOIN asof_t b ON b.id = a.id`, t1): "same timestamp",
		`SELECT v FROM asof_t AS OF TIMESTAMP 'yesterday'`:                                          "not a valid TIMESTAMP",
		`UPDATE asof_t AS OF TIMESTAMP NOW() SET v = 1 WHERE id = 1`:                                "not supported",
	} {
		if _, err := s.Exec(testCtx(t), q); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want an error saying %q", q, err, want)
		}
	}
}

// A read-only transaction reads every statement at its snapshot, and
// refuses writes; BEGIN ... SELECTs ... COMMIT reads at one timestamp.
func TestReadOnlyTransaction(t *testing.T) {
	s, w := newSession(t), newSession(t)
	mustExec(t, s, `CREATE TABLE ro_t (id INT PRIMARY KEY, v INT) COMMENT 'SPLIT AT (5)'`)
	mustExec(t, s, `INSERT INTO ro_t VALUES (1, 10), (9, 90)`)
	for _, begin := range []string{`START TRANSACTION READ ONLY`, `BEGIN`} {
		mustExec(t, s, begin)
		if got := query(t, s, `SELECT SUM(v) FROM ro_t`); got != "100" {
			t.Fatalf("%s: sum %q", begin, got)
		}
		mustExec(t, w, `UPDATE ro_t SET v = v + 1 WHERE id = 1`)
		mustExec(t, w, `UPDATE ro_t SET v = v + 1 WHERE id = 9`)
		if got := query(t, s, `SELECT SUM(v) FROM ro_t`); got != "100" {
			t.Fatalf("%s: sum %q after another session's updates, want the snapshot's 100", begin, got)
		}
		if got := query(t, s, `SELECT v FROM ro_t WHERE id = 9`); got != "90" {
			t.Fatalf("%s: v %q, want the snapshot's 90", begin, got)
		}
		mustExec(t, s, `COMMIT`)
		if got := query(t, s, `SELECT SUM(v) FROM ro_t`); got != "102" {
			t.Fatalf("after COMMIT: sum %q, want 102", got)
		}
		mustExec(t, w, `UPDATE ro_t SET v = v - 1`)
	}
	mustExec(t, s, `START TRANSACTION READ ONLY`)
	if _, err := s.Exec(testCtx(t), `UPDATE ro_t SET v = 0 WHERE id = 1`); err == nil || !strings.Contains(err.Error(), "READ ONLY") {
		t.Fatalf("UPDATE in a READ ONLY transaction: %v", err)
	}
	mustExec(t, s, `ROLLBACK`)

	// A transaction that writes a row after reading it at its snapshot
	// conflicts if the row changed since (first committer wins).
	mustExec(t, s, `BEGIN`)
	if got := query(t, s, `SELECT v FROM ro_t WHERE id = 1`); got != "10" {
		t.Fatalf("v %q", got)
	}
	mustExec(t, w, `UPDATE ro_t SET v = 11 WHERE id = 1`)
	mustExec(t, s, `UPDATE ro_t SET v = v + 100 WHERE id = 1`)
	if _, err := s.Exec(testCtx(t), `COMMIT`); !errors.Is(err, ErrConflict) {
		t.Fatalf("COMMIT after a concurrent change of the row: %v, want a conflict", err)
	}
	if got := query(t, s, `SELECT v FROM ro_t WHERE id = 1`); got != "11" {
		t.Fatalf("v %q, want the other session's 11", got)
	}

	t1 := s.client.Now()
	query(t, s, fmt.Sprintf(`SELECT v FROM ro_t AS OF TIMESTAMP %d`, t1)) // closes t1
	mustExec(t, w, `UPDATE ro_t SET v = 12 WHERE id = 1`)
	mustExec(t, s, fmt.Sprintf(`START TRANSACTION READ ONLY AS OF TIMESTAMP %d`, t1))
	if got := query(t, s, `SELECT v FROM ro_t WHERE id = 1`); got != "11" {
		t.Fatalf("READ ONLY AS OF %d: v %q, want 11", t1, got)
	}
	mustExec(t, s, `COMMIT`)
}

// A join across tablets, under concurrent writes, always sees one state:
// writers set a.v = n and then b.v = n for their row, so at any one
// timestamp b.v <= a.v <= b.v + 1. A join that read b later than a would
// see b ahead of a.
func TestJoinConsistentUnderWrites(t *testing.T) {
	s := newSession(t)
	const rows = 8
	mustExec(t, s, `CREATE TABLE snap_a (id INT PRIMARY KEY, v INT) SPLIT BETWEEN (0) AND (8) REGIONS 4`)
	mustExec(t, s, `CREATE TABLE snap_b (id INT PRIMARY KEY, v INT) SPLIT BETWEEN (0) AND (8) REGIONS 4`)
	for i := range rows {
		mustExec(t, s, fmt.Sprintf(`INSERT INTO snap_a VALUES (%d, 0); INSERT INTO snap_b VALUES (%d, 0)`, i, i))
	}
	// The writers run until the joins are done: joins checks of the
	// invariant, the last ones after the writers have changed the rows
	// (so the joins read rows being written). Every operation gets its
	// own deadline.
	const joins = 10
	run, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writing atomic.Int32 // writers still running
	defer func() { stop(); wg.Wait() }()
	for i := range rows {
		ws := newSession(t)
		wg.Add(1)
		writing.Add(1)
		go func() {
			defer wg.Done()
			defer writing.Add(-1)
			for n := 1; run.Err() == nil; n++ {
				for _, tbl := range []string{"snap_a", "snap_b"} {
					if _, err := ws.Exec(testCtx(t), fmt.Sprintf(`UPDATE %s SET v = %d WHERE id = %d`, tbl, n, i)); err != nil {
						t.Errorf("writer %d: %v", i, err)
						return
					}
				}
			}
		}()
	}
	checks := 0
	var firstSum, sum int64 = -1, 0
	for checks < joins || (sum == firstSum && writing.Load() > 0) {
		res, err := s.Exec(testCtx(t), `SELECT a.id, a.v, b.v FROM snap_a a JOIN snap_b b ON b.id = a.id`)
		if err != nil {
			t.Fatal(err)
		}
		rs := res[len(res)-1].Rows
		if len(rs) != rows {
			t.Fatalf("join returned %d rows, want %d", len(rs), rows)
		}
		sum = 0
		for _, r := range rs {
			av, bv := r[1].Value.(int64), r[2].Value.(int64)
			if bv > av || av > bv+1 {
				t.Fatalf("row %v: a.v = %d, b.v = %d: not one state (b.v <= a.v <= b.v+1)", r[0], av, bv)
			}
			sum += av
		}
		if firstSum < 0 {
			firstSum = sum
		}
		checks++
	}
	if sum == firstSum {
		t.Fatalf("the writers changed no row while %d joins ran", checks)
	}
	t.Logf("%d consistent joins", checks)
}
