package sqltest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/kvclient"
	sqllite "github.com/shaledb/shale/sql-lite"
)

var (
	flagAtomicSessions = flag.Int("atomic.sessions", 32, "TestAtomicUpdateCounter: concurrent sessions")
	flagAtomicUpdates  = flag.Int("atomic.updates", 10, "TestAtomicUpdateCounter: updates per session (the issue's figure was 100: minutes under -race)")
	flagAtomicClients  = flag.Int("atomic.clients", 1, "TestAtomicUpdateCounter: kvclient.Clients the sessions are spread over (32 = one per session, like 32 shell processes)")
	flagTxnSessions    = flag.Int("txn.sessions", 8, "TestConcurrentTxnOneRow: concurrent sessions")
	flagTxnRounds      = flag.Int("txn.rounds", 25, "TestConcurrentTxnOneRow: transactions per session")
)

// TestAtomicUpdateCounter: many sessions increment one row with a single
// UPDATE each time; every statement is an atomic read-modify-write, so no
// increment is lost and none is applied twice.
func TestAtomicUpdateCounter(t *testing.T) {
	setup := openSession(t)
	createFresh(t, setup, "atomic_accounts", "CREATE TABLE atomic_accounts (id INT PRIMARY KEY, bal BIGINT NOT NULL)")
	mustExec(t, setup, "INSERT INTO atomic_accounts VALUES (1, 0), (2, 0)")
	n, per := *flagAtomicSessions, *flagAtomicUpdates
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var affected atomic.Int64
	clients := newClients(t, *flagAtomicClients)
	for i := 0; i < n; i++ {
		s := openSessionOn(t, clients[i%len(clients)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				res, err := s.Exec(ctx, "UPDATE atomic_accounts SET bal = bal + 1 WHERE id = 1")
				cancel()
				if err != nil {
					errs <- fmt.Errorf("session %d update %d: %w", i, j, err)
					return
				}
				if len(res) != 1 || res[0].RowsAffected != 1 {
					errs <- fmt.Errorf("session %d update %d: want 1 row affected, got %+v", i, j, res)
					return
				}
				affected.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := queryInt(t, setup, "SELECT bal FROM atomic_accounts WHERE id = 1")
	if want := int64(n * per); got != want || affected.Load() != want {
		t.Fatalf("final balance %d after %d successful updates; want exactly %d", got, affected.Load(), want)
	}
	if other := queryInt(t, setup, "SELECT bal FROM atomic_accounts WHERE id = 2"); other != 0 {
		t.Fatalf("row 2 changed to %d", other)
	}
}

var conflictRE = regexp.MustCompile(`(?i)conflict`)

// TestConcurrentTxnOneRow: sessions run BEGIN; read; write two columns
// from what they read; COMMIT, on one row at the same time. Each COMMIT
// either applies both writes or fails with a conflict; a lost update would
// make bal smaller than the number of successful commits, a partial one
// would make n differ from bal.
func TestConcurrentTxnOneRow(t *testing.T) {
	setup := openSession(t)
	createFresh(t, setup, "atomic_txn", "CREATE TABLE atomic_txn (id INT PRIMARY KEY, bal BIGINT NOT NULL, n BIGINT NOT NULL, last VARCHAR(32))")
	mustExec(t, setup, "INSERT INTO atomic_txn VALUES (7, 0, 0, 'none')")
	var commits, conflicts atomic.Int64
	var mu sync.Mutex
	committed := map[string]int64{} // writer tag -> bal it wrote
	var wg sync.WaitGroup
	errs := make(chan error, *flagTxnSessions)
	for i := 0; i < *flagTxnSessions; i++ {
		s := openSession(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < *flagTxnRounds; j++ {
				tag := fmt.Sprintf("s%d-r%d", i, j)
				ok, wrote, err := oneTxnOn(s, "atomic_txn", tag)
				if err != nil {
					errs <- fmt.Errorf("session %d txn %d: %w", i, j, err)
					return
				}
				if ok {
					commits.Add(1)
					mu.Lock()
					committed[tag] = wrote
					mu.Unlock()
				} else {
					conflicts.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := setup.Exec(ctx, "SELECT bal, n, last FROM atomic_txn WHERE id = 7")
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("reading the row: %v %+v", err, res)
	}
	row := res[0].Rows[0]
	bal, _ := strconv.ParseInt(row[0].String(), 10, 64)
	n, _ := strconv.ParseInt(row[1].String(), 10, 64)
	last := row[2].String()
	t.Logf("%d commits, %d conflicts; final bal=%d n=%d last=%s", commits.Load(), conflicts.Load(), bal, n, last)
	if bal != commits.Load() || n != commits.Load() {
		t.Fatalf("final bal=%d n=%d, want both = %d successful commits (lost or partial commit)", bal, n, commits.Load())
	}
	if w, ok := committed[last]; !ok || w != bal {
		t.Fatalf("last writer %q is not a successful commit that wrote bal=%d (committed: %v)", last, bal, ok)
	}
	if commits.Load() == 0 {
		t.Fatal("no transaction committed")
	}
}

// oneTxn runs one read-then-write transaction; ok=false means COMMIT
// reported a conflict (a retryable, clean failure).
func oneTxnOn(s *sqllite.Session, table, tag string) (ok bool, wrote int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.Exec(ctx, "BEGIN; SELECT bal FROM "+table+" WHERE id = 7")
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 || len(res[1].Rows) != 1 {
		return false, 0, fmt.Errorf("BEGIN; SELECT: unexpected results %+v", res)
	}
	bal, err := strconv.ParseInt(res[1].Rows[0][0].String(), 10, 64)
	if err != nil {
		return false, 0, err
	}
	wrote = bal + 1
	if _, err := s.Exec(ctx, fmt.Sprintf("UPDATE %s SET bal = %d, last = '%s' WHERE id = 7; UPDATE %s SET n = n + 1 WHERE id = 7", table, wrote, tag, table)); err != nil {
		return false, 0, err
	}
	_, err = s.Exec(ctx, "COMMIT")
	if err == nil {
		return true, wrote, nil
	}
	if conflictRE.MatchString(err.Error()) {
		// The session must be usable (no transaction left open).
		if _, err2 := s.Exec(ctx, "SELECT 1 FROM "+table+" WHERE id = 7"); err2 != nil {
			return false, 0, fmt.Errorf("after a conflict the session fails: %w", err2)
		}
		return false, 0, nil
	}
	return false, 0, errors.Join(errors.New("COMMIT failed with an error that is not a conflict"), err)
}

// newClients opens n kvclient.Clients on the shared cluster (n <= 1: the
// shared client), closed with the test.
func newClients(t *testing.T, n int) []*kvclient.Client {
	if n <= 1 {
		return []*kvclient.Client{shared.client}
	}
	var out []*kvclient.Client
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cl, err := kvclient.Open(ctx, kvclient.Options{PD: shared.cluster.PDEndpoints()})
		cancel()
		if err != nil {
			t.Fatalf("kvclient.Open: %v", err)
		}
		t.Cleanup(func() { cl.Close() })
		out = append(out, cl)
	}
	return out
}

func openSessionOn(t *testing.T, cl *kvclient.Client) *sqllite.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqllite.Open(ctx, cl)
	if err != nil {
		t.Fatalf("sqllite.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestMixedTxnAndUpdates: on one row, some sessions run read-then-write
// transactions (BEGIN; SELECT; UPDATE SET bal = <read>+1; COMMIT) while
// others run single UPDATE ... SET bal = bal + 1 statements, through two
// clients. A COMMIT must see every UPDATE that happened since its read
// (whatever path the UPDATE took), so the final balance is exactly the
// successful commits plus the updates.
func TestMixedTxnAndUpdates(t *testing.T) {
	setup := openSession(t)
	createFresh(t, setup, "atomic_mixed", "CREATE TABLE atomic_mixed (id INT PRIMARY KEY, bal BIGINT NOT NULL, n BIGINT NOT NULL, last VARCHAR(32))")
	mustExec(t, setup, "INSERT INTO atomic_mixed VALUES (7, 0, 0, 'none')")
	clients := newClients(t, 2)
	var commits, conflicts, updates atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		s := openSessionOn(t, clients[i%2])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if i%2 == 0 {
					ok, _, err := oneTxnOn(s, "atomic_mixed", fmt.Sprintf("s%d-r%d", i, j))
					if err != nil {
						errs <- fmt.Errorf("session %d txn %d: %w", i, j, err)
						return
					}
					if ok {
						commits.Add(1)
					} else {
						conflicts.Add(1)
					}
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				res, err := s.Exec(ctx, "UPDATE atomic_mixed SET bal = bal + 1, n = n + 1 WHERE id = 7")
				cancel()
				if err != nil || len(res) != 1 || res[0].RowsAffected != 1 {
					errs <- fmt.Errorf("session %d update %d: %v %+v", i, j, err, res)
					return
				}
				updates.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	bal := queryInt(t, setup, "SELECT bal FROM atomic_mixed WHERE id = 7")
	n := queryInt(t, setup, "SELECT n FROM atomic_mixed WHERE id = 7")
	want := commits.Load() + updates.Load()
	t.Logf("%d commits, %d conflicts, %d updates; final bal=%d n=%d", commits.Load(), conflicts.Load(), updates.Load(), bal, n)
	if bal != want || n != want {
		t.Fatalf("final bal=%d n=%d, want both = %d commits + %d updates = %d", bal, n, commits.Load(), updates.Load(), want)
	}
}

func queryInt(t *testing.T, s *sqllite.Session, sql string) int64 {
	t.Helper()
	res := mustExec(t, s, sql)
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) != 1 {
		t.Fatalf("%s: want one value, got %+v", sql, res)
	}
	v, err := strconv.ParseInt(res[0].Rows[0][0].String(), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// runConcurrently runs f(session index, iteration) from n sessions, each
// iters times, and fails the test on the first error of each session. The
// sessions alternate between two clients, so that both the in-process and
// the cross-process paths of single-row atomicity are exercised.
func runConcurrently(t *testing.T, n, iters int, f func(s *sqllite.Session, i, j int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	clients := newClients(t, 2)
	for i := 0; i < n; i++ {
		s := openSessionOn(t, clients[i%2])
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < iters; j++ {
				if err := f(s, i, j); err != nil {
					errs <- fmt.Errorf("session %d iteration %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func execCtx(s *sqllite.Session, sql string) ([]*sqllite.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return s.Exec(ctx, sql)
}

// TestConcurrentRangeUpdates: multi-row UPDATEs over overlapping ranges
// apply row by row, each row atomically: no increment of any row is lost.
func TestConcurrentRangeUpdates(t *testing.T) {
	setup := openSession(t)
	createFresh(t, setup, "atomic_range", "CREATE TABLE atomic_range (id INT PRIMARY KEY, v BIGINT NOT NULL)")
	var vals []string
	for i := 0; i < 60; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 0)", i))
	}
	mustExec(t, setup, "INSERT INTO atomic_range VALUES "+strings.Join(vals, ", "))
	const sessions, iters = 4, 4
	runConcurrently(t, sessions, iters, func(s *sqllite.Session, i, j int) error {
		// Sessions 0 and 2 update [0, 40), 1 and 3 update [20, 60).
		lo := 20 * (i % 2)
		res, err := execCtx(s, fmt.Sprintf("UPDATE atomic_range SET v = v + 1 WHERE id >= %d AND id < %d", lo, lo+40))
		if err != nil {
			return err
		}
		if len(res) != 1 || res[0].RowsAffected != 40 {
			return fmt.Errorf("want 40 rows affected, got %+v", res)
		}
		return nil
	})
	res := mustExec(t, setup, "SELECT id, v FROM atomic_range ORDER BY id")
	for _, row := range res[0].Rows {
		id, _ := strconv.Atoi(row[0].String())
		want := sessions / 2 * iters
		if id >= 20 && id < 40 {
			want = sessions * iters
		}
		if row[1].String() != strconv.Itoa(want) {
			t.Errorf("row %d: v = %s, want %d", id, row[1].String(), want)
		}
	}
}

// TestConcurrentInsertSameKey: of many sessions inserting the same key,
// exactly one succeeds; the others get a duplicate-key error.
func TestConcurrentInsertSameKey(t *testing.T) {
	setup := openSession(t)
	createFresh(t, setup, "atomic_ins", "CREATE TABLE atomic_ins (id INT PRIMARY KEY, who INT)")
	var won, dup atomic.Int64
	runConcurrently(t, 8, 10, func(s *sqllite.Session, i, j int) error {
		_, err := execCtx(s, fmt.Sprintf("INSERT INTO atomic_ins VALUES (%d, %d)", j, i))
		switch {
		case err == nil:
			won.Add(1)
		case strings.Contains(strings.ToLower(err.Error()), "duplicate"):
			dup.Add(1)
		default:
			return err
		}
		return nil
	})
	if won.Load() != 10 || dup.Load() != 70 {
		t.Fatalf("%d inserts succeeded and %d were duplicates; want 10 and 70", won.Load(), dup.Load())
	}
	if n := queryInt(t, setup, "SELECT COUNT(*) FROM atomic_ins"); n != 10 {
		t.Fatalf("%d rows, want 10", n)
	}
}

// TestConcurrentUpsert: INSERT ... ON DUPLICATE KEY UPDATE is one atomic
// step: the first creates the row, every later one increments it.
func TestConcurrentUpsert(t *testing.T) {
	setup := openSession(t)
	createFresh(t, setup, "atomic_upsert", "CREATE TABLE atomic_upsert (id INT PRIMARY KEY, n BIGINT NOT NULL)")
	runConcurrently(t, 8, 10, func(s *sqllite.Session, i, j int) error {
		_, err := execCtx(s, "INSERT INTO atomic_upsert VALUES (1, 1) ON DUPLICATE KEY UPDATE n = n + 1")
		return err
	})
	if n := queryInt(t, setup, "SELECT n FROM atomic_upsert WHERE id = 1"); n != 80 {
		t.Fatalf("n = %d after 80 upserts, want 80", n)
	}
}
