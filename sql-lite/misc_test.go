package sqllite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// SPLIT AT pre-splits the table at the encoded keys, and rows still come
// back in key order across the tablets.
func TestSplitAtPreSplits(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE split_t (id INT PRIMARY KEY, v INT) COMMENT 'SPLIT AT (-10), (0), (100)'`)
	tb, err := s.lookup(testCtx(t), "split_t")
	if err != nil {
		t.Fatal(err)
	}
	locs, err := tb.kv.Tablets(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var starts [][]byte
	for _, l := range locs {
		starts = append(starts, l.StartRow)
	}
	for _, v := range []int64{-10, 0, 100} {
		k := encodeValue(nil, intDatum(v), tb.cols[0].Type, true)
		found := false
		for _, st := range starts {
			found = found || bytes.Equal(st, k)
		}
		if !found {
			t.Fatalf("no tablet starts at %d (starts %x)", v, starts)
		}
	}
	mustExec(t, s, `INSERT INTO split_t VALUES (150, 1), (-20, 2), (5, 3), (-5, 4), (0, 5)`)
	if got := query(t, s, `SELECT id FROM split_t`); got != "-20\n-5\n0\n5\n150" {
		t.Fatalf("scan across tablets: %q", got)
	}
	if got := query(t, s, `SELECT id FROM split_t ORDER BY id DESC LIMIT 3`); got != "150\n5\n0" {
		t.Fatalf("reverse scan across tablets: %q", got)
	}
	if got := query(t, s, `SELECT id FROM split_t WHERE id BETWEEN -6 AND 6`); got != "-5\n0\n5" {
		t.Fatalf("range across tablets: %q", got)
	}
}

// Canceling the context stops a running statement with an error.
func TestCancelStopsStatement(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE cancel_t (id INT PRIMARY KEY, v INT)`)
	var vals []string
	for i := 0; i < 500; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", i, i))
	}
	mustExec(t, s, `INSERT INTO cancel_t VALUES `+strings.Join(vals, ","))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Exec(ctx, `UPDATE cancel_t SET v = v + 1`)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled statement: %v", err)
	}
	// The session stays usable.
	if got := query(t, s, `SELECT COUNT(*) FROM cancel_t WHERE v = id`); got == "" {
		t.Fatalf("no answer after cancel")
	}
}

// Errors are typed and matched with errors.Is.
func TestErrorCodes(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE err_t (id INT PRIMARY KEY, n VARCHAR(2) NOT NULL)`)
	cases := []struct {
		sql  string
		want error
	}{
		{`SELEC 1`, ErrParse},
		{`SELECT * FROM nope`, ErrUnknownTable},
		{`SELECT zz FROM err_t`, ErrUnknownColumn},
		{`CREATE TABLE err_t (id INT PRIMARY KEY)`, ErrTableExists},
		{`INSERT INTO err_t VALUES (1, 'abc')`, ErrType},
		{`SELECT * FROM err_t WHERE id IN (SELECT 1)`, ErrNotSupported},
		{`INSERT INTO err_t VALUES (1, NULL)`, ErrConstraint},
	}
	for _, c := range cases {
		_, err := s.Exec(testCtx(t), c.sql)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.sql, err, c.want)
		}
	}
	mustExec(t, s, `INSERT INTO err_t VALUES (1, 'a')`)
	if _, err := s.Exec(testCtx(t), `INSERT INTO err_t VALUES (1, 'b')`); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate: %v", err)
	}
	_, err := s.Exec(testCtx(t), "SELECT 1;\nSELECT id FROM err_t WHERE\n  id = = 1")
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Col == 0 {
		t.Fatalf("parse error position: %#v", err)
	}
}

// A large INSERT writes rows concurrently; a duplicate fails the statement
// and the error counts exactly the rows that were written.
func TestConcurrentMultiRowInsert(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE mins_t (id INT PRIMARY KEY, v INT); INSERT INTO mins_t VALUES (250, 0)`)
	var vals []string
	for i := 0; i < 400; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", i, i))
	}
	_, err := s.Exec(testCtx(t), `INSERT INTO mins_t VALUES `+strings.Join(vals, ","))
	if !errors.Is(err, ErrDuplicateKey) || !strings.Contains(err.Error(), "row 251 of 400") {
		t.Fatalf("insert with a duplicate: %v", err)
	}
	n := query(t, s, `SELECT COUNT(*) - 1 FROM mins_t`)
	if !strings.Contains(err.Error(), " "+n+" rows of this statement were written") {
		t.Fatalf("error %q, but %s rows were written", err, n)
	}
	if got := query(t, s, `SELECT v FROM mins_t WHERE id = 250`); got != "0" {
		t.Fatalf("duplicate row overwritten: %s", got)
	}
	mustExec(t, s, `INSERT IGNORE INTO mins_t VALUES `+strings.Join(vals, ","))
	if got := query(t, s, `SELECT COUNT(*), SUM(v) FROM mins_t`); got != "400|79550" {
		t.Fatalf("after INSERT IGNORE: %s", got)
	}
}
