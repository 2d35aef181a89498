package sqltest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCancelStatement: a statement run with a canceled context stops with
// an error that says so, and the session (also one inside a transaction)
// keeps working.
func TestCancelStatement(t *testing.T) {
	s := openSession(t)
	createFresh(t, s, "misc_cancel", "CREATE TABLE misc_cancel (id INT PRIMARY KEY, v INT)")
	var vals []string
	for i := 0; i < 500; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", i, i%7))
	}
	mustExec(t, s, "INSERT INTO misc_cancel VALUES "+strings.Join(vals, ", "))

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, q := range []string{
		"SELECT COUNT(*) FROM misc_cancel WHERE v > 2",
		"UPDATE misc_cancel SET v = v + 1 WHERE v = 3",
		"SELECT id FROM misc_cancel WHERE id = 5",
	} {
		_, err := s.Exec(canceled, q)
		if err == nil {
			t.Fatalf("%s with a canceled context: no error", q)
		}
		if !errors.Is(err, context.Canceled) && !strings.Contains(strings.ToLower(err.Error()), "cancel") {
			t.Fatalf("%s with a canceled context: the error does not say it was canceled: %v", q, err)
		}
	}
	// Nothing was updated, and the session works.
	if n := queryInt(t, s, "SELECT COUNT(*) FROM misc_cancel WHERE v = 4"); n != 71 {
		t.Fatalf("rows with v = 4: %d, want 71 (the canceled UPDATE must not have run)", n)
	}
	mustExec(t, s, "BEGIN; UPDATE misc_cancel SET v = 100 WHERE id = 1")
	if _, err := s.Exec(canceled, "SELECT v FROM misc_cancel WHERE id = 1"); err == nil {
		t.Fatal("canceled SELECT inside a transaction: no error")
	}
	mustExec(t, s, "COMMIT")
	if v := queryInt(t, s, "SELECT v FROM misc_cancel WHERE id = 1"); v != 100 {
		t.Fatalf("after COMMIT v = %d, want 100", v)
	}
}

// TestWritesDuringSchemaChanges: sessions insert rows while another one
// adds and drops columns. Inserts may fail with a retryable error (a
// conflict with the schema change), but an insert reported as done must be
// there, with its value, afterwards.
func TestWritesDuringSchemaChanges(t *testing.T) {
	s := openSession(t)
	createFresh(t, s, "misc_ddl", "CREATE TABLE misc_ddl (id INT PRIMARY KEY, v INT)")
	const writers, per = 4, 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+1)
	inserted := make([][]int, writers)
	for w := 0; w < writers; w++ {
		ws := openSession(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				id := w*1000 + i
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					_, err := ws.Exec(ctx, fmt.Sprintf("INSERT INTO misc_ddl (id, v) VALUES (%d, %d)", id, id*3))
					cancel()
					if err == nil {
						inserted[w] = append(inserted[w], id)
						break
					}
					if attempt < 20 && strings.Contains(strings.ToLower(err.Error()), "retry") {
						continue
					}
					errs <- fmt.Errorf("insert %d: %w", id, err)
					return
				}
			}
		}()
	}
	ddl := openSession(t)
	go func() {
		defer close(done)
		for i := 0; i < 6; i++ {
			for _, st := range []string{
				fmt.Sprintf("ALTER TABLE misc_ddl ADD COLUMN c%d VARCHAR(8)", i),
				fmt.Sprintf("ALTER TABLE misc_ddl DROP COLUMN c%d", i),
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				_, err := ddl.Exec(ctx, st)
				cancel()
				if err != nil && !strings.Contains(strings.ToLower(err.Error()), "retry") {
					errs <- fmt.Errorf("%s: %w", st, err)
					return
				}
			}
		}
	}()
	wg.Wait()
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for w := range inserted {
		total += len(inserted[w])
		for _, id := range inserted[w] {
			if v := queryInt(t, s, fmt.Sprintf("SELECT v FROM misc_ddl WHERE id = %d", id)); v != int64(id*3) {
				t.Errorf("row %d: v = %d, want %d", id, v, id*3)
			}
		}
	}
	if n := queryInt(t, s, "SELECT COUNT(*) FROM misc_ddl"); n != int64(total) {
		t.Fatalf("%d rows in the table, %d inserts reported done", n, total)
	}
}

// TestCompletionLists: the shell's completion sources list the SQL tables
// and a table's columns in order, and follow DDL.
func TestCompletionLists(t *testing.T) {
	s := openSession(t)
	createFresh(t, s, "misc_comp", "CREATE TABLE misc_comp (id INT PRIMARY KEY, b VARCHAR(4), a INT)")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := s.TableNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(names, "misc_comp") {
		t.Fatalf("TableNames %v lacks misc_comp", names)
	}
	if contains(names, "kv") {
		t.Fatalf("TableNames %v lists the raw KV table, which is not a SQL table", names)
	}
	cols, err := s.ColumnNames(ctx, "misc_comp")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cols, ",") != "id,b,a" {
		t.Fatalf("ColumnNames = %v, want [id b a]", cols)
	}
	mustExec(t, s, "ALTER TABLE misc_comp ADD COLUMN z INT; ALTER TABLE misc_comp DROP COLUMN b")
	if cols, err = s.ColumnNames(ctx, "misc_comp"); err != nil || strings.Join(cols, ",") != "id,a,z" {
		t.Fatalf("after ALTER: ColumnNames = %v (%v), want [id a z]", cols, err)
	}
	mustExec(t, s, "DROP TABLE misc_comp")
	if names, err = s.TableNames(ctx); err != nil || contains(names, "misc_comp") {
		t.Fatalf("after DROP: TableNames = %v (%v)", names, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCatalogFromPD: the schema (types, NOT NULL, defaults) lives in the
// PD catalog, so a session on another client (another process, in real
// use) enforces it without having seen the CREATE TABLE.
func TestCatalogFromPD(t *testing.T) {
	s := openSession(t)
	createFresh(t, s, "misc_cat", "CREATE TABLE misc_cat (id INT PRIMARY KEY, name VARCHAR(5) NOT NULL, qty INT DEFAULT 3)")
	other := openSessionOn(t, newClients(t, 2)[1])
	mustExec(t, other, "INSERT INTO misc_cat (id, name) VALUES (1, 'abc')")
	if q := queryInt(t, s, "SELECT qty FROM misc_cat WHERE id = 1"); q != 3 {
		t.Fatalf("default from the catalog: qty = %d, want 3", q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, bad := range []string{
		"INSERT INTO misc_cat (id) VALUES (2)",
		"INSERT INTO misc_cat VALUES (2, 'toolong', 1)",
		"INSERT INTO misc_cat VALUES (2, 'x', 'y')",
	} {
		if _, err := other.Exec(ctx, bad); err == nil {
			t.Errorf("%s: accepted by a session on another client", bad)
		}
	}
	if n := queryInt(t, s, "SELECT COUNT(*) FROM misc_cat"); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}
