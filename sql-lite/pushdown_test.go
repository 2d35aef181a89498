package sqllite

import (
	"fmt"
	"strings"
	"testing"
)

// A selective filter on non-key columns runs on the tablet servers: only
// matching rows reach the client.
func TestPushdownShipsOnlyMatchingRows(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE pd_rows (id INT PRIMARY KEY, v INT, tag VARCHAR(10))`)
	var vals []string
	for i := 0; i < 300; i++ {
		tag := "NULL"
		if i%3 == 0 {
			tag = fmt.Sprintf("'t%d'", i%7)
		}
		vals = append(vals, fmt.Sprintf("(%d, %d, %s)", i, i%100, tag))
	}
	mustExec(t, s, `INSERT INTO pd_rows VALUES `+strings.Join(vals, ","))
	cases := []struct {
		where string
		want  int
	}{
		{"v = 7", 3},
		{"v < 2 AND tag IS NOT NULL", 2}, // i in {0,1,100,101,200,201} with i%3==0: 0, 201
		{"tag LIKE 't1%'", 14},
		{"NOT (v >= 1) OR v IN (98, 99)", 9},
		{"v BETWEEN 10 AND 11 AND id >= 100", 4},
	}
	for _, c := range cases {
		before := s.rowsRead
		got := query(t, s, "SELECT COUNT(*) FROM pd_rows WHERE "+c.where)
		read := s.rowsRead - before
		if got != fmt.Sprint(c.want) {
			t.Fatalf("%s: count %s, want %d", c.where, got, c.want)
		}
		if read != int64(c.want) {
			t.Fatalf("%s: %d rows crossed the network for %d matches (filter not pushed down)", c.where, read, c.want)
		}
	}
	// Not pushable (a function of the column): every row is shipped.
	before := s.rowsRead
	if got := query(t, s, "SELECT COUNT(*) FROM pd_rows WHERE v + 0 = 7"); got != "3" {
		t.Fatalf("count %s", got)
	}
	if read := s.rowsRead - before; read != 300 {
		t.Fatalf("client-side filter read %d rows, want 300", read)
	}
	// The scan limit counts filtered rows.
	before = s.rowsRead
	if got := query(t, s, "SELECT id FROM pd_rows WHERE v = 5 LIMIT 2"); got != "5\n105" {
		t.Fatalf("got %q", got)
	}
	if read := s.rowsRead - before; read != 2 {
		t.Fatalf("LIMIT 2 with a pushed filter read %d rows", read)
	}
	// Key ranges are scanned, not the table.
	before = s.rowsRead
	if got := query(t, s, "SELECT COUNT(*) FROM pd_rows WHERE id >= 10 AND id < 20"); got != "10" {
		t.Fatalf("count %s", got)
	}
	if read := s.rowsRead - before; read != 10 {
		t.Fatalf("range scan read %d rows", read)
	}
}
