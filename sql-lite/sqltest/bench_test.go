package sqltest

// Benchmarks of issue 8 (run by hand, e.g.
//   go test -run '^$' -bench . -benchtime 3s ./sql-lite/sqltest/ -bench.rows 100000
// sizes by flags, small defaults):
//
//   BenchmarkPointSelect/sql  SELECT v FROM t WHERE id = <literal> through
//                             Session.Exec (each text is parsed)
//   BenchmarkPointSelect/prepared  the same through Session.Prepare once
//                             and Stmt.Exec(id) per row
//   BenchmarkPointSelect/raw  kvclient Table.Get of the same rows' keys
//   BenchmarkSelectiveScan/pushed  a scan with a 1%-selective predicate;
//                             reports rows returned and rows shipped
//                             (Session.RowsRead; issue: <= 2x returned)
//   BenchmarkSelectiveScan/client  the same rows through an expression not
//                             pushed down: every row is shipped
//   BenchmarkLookupJoin       orders JOIN customers ON o.cust = c.id

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/kvclient"
	sqllite "github.com/shaledb/shale/sql-lite"
)

var (
	flagBenchRows      = flag.Int("bench.rows", 2000, "rows in the point-SELECT and selective-scan tables")
	flagBenchJoinOuter = flag.Int("bench.joinouter", 1000, "lookup join: rows of the outer (orders) table")
	flagBenchJoinInner = flag.Int("bench.joininner", 10000, "lookup join: rows of the inner (customers) table")
)

var benchTables sync.Map // name -> struct{}

// loadBench creates table name with ddl and n rows from row(i) once per
// test binary, inserting in batches from 4 sessions.
func loadBench(b *testing.B, name, ddl string, n int, row func(i int) string) {
	if _, ok := benchTables.Load(name); ok {
		return
	}
	s := openSession(b)
	mustExec(b, s, ddl)
	const batch = 500
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		ws := openSession(b)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := w * batch; start < n; start += 4 * batch {
				var vals []string
				for i := start; i < min(start+batch, n); i++ {
					vals = append(vals, row(i))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				_, err := ws.Exec(ctx, fmt.Sprintf("INSERT INTO %s VALUES %s", name, strings.Join(vals, ", ")))
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("loading %s: %v", name, err)
	}
	benchTables.Store(name, struct{}{})
}

func benchExec(b *testing.B, s *sqllite.Session, sql string) *sqllite.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := s.Exec(ctx, sql)
	if err != nil {
		b.Fatalf("%s: %v", sql, err)
	}
	if len(res) != 1 {
		b.Fatalf("%s: %d results", sql, len(res))
	}
	return res[0]
}

func BenchmarkPointSelect(b *testing.B) {
	n := *flagBenchRows
	name := fmt.Sprintf("bench_point_%d", n)
	loadBench(b, name, fmt.Sprintf("CREATE TABLE %s (id BIGINT PRIMARY KEY, v VARCHAR(100))", name), n, func(i int) string {
		return fmt.Sprintf("(%d, 'value-%d-%s')", i, i, strings.Repeat("x", 40))
	})
	b.Run("sql", func(b *testing.B) {
		s := openSession(b)
		r := rand.New(rand.NewPCG(1, 2))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res := benchExec(b, s, "SELECT v FROM "+name+" WHERE id = "+strconv.Itoa(r.IntN(n)))
			if len(res.Rows) != 1 {
				b.Fatalf("point select returned %d rows", len(res.Rows))
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		s := openSession(b)
		ctx := context.Background()
		st, err := s.Prepare(ctx, "SELECT v FROM "+name+" WHERE id = ?")
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := st.Exec(ctx, r.IntN(n))
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Rows) != 1 {
				b.Fatalf("point select returned %d rows", len(res.Rows))
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		ctx := context.Background()
		tbl, err := shared.client.Table(ctx, name)
		if err != nil {
			b.Fatalf("the SQL table %s is not a Shale table of that name: %v", name, err)
		}
		// The same rows: their keys as the SQL layer encoded them.
		var keys [][]byte
		sc := tbl.Scan(ctx, kvclient.ScanOptions{})
		for sc.Next() {
			keys = append(keys, append([]byte(nil), sc.Row().Key...))
		}
		if err := sc.Err(); err != nil {
			b.Fatal(err)
		}
		sc.Close()
		if len(keys) != n {
			b.Fatalf("scanned %d keys, want %d", len(keys), n)
		}
		r := rand.New(rand.NewPCG(1, 2))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			row, err := tbl.Get(ctx, keys[r.IntN(n)])
			if err != nil || row == nil {
				b.Fatalf("Get: %v %v", row, err)
			}
		}
	})
}

func BenchmarkSelectiveScan(b *testing.B) {
	n := *flagBenchRows
	name := fmt.Sprintf("bench_scan_%d", n)
	loadBench(b, name, fmt.Sprintf("CREATE TABLE %s (id BIGINT PRIMARY KEY, sel INT, pad VARCHAR(100))", name), n, func(i int) string {
		return fmt.Sprintf("(%d, %d, '%s-%d')", i, i%100, strings.Repeat("p", 60), i)
	})
	s := openSession(b)
	want := 0
	for i := 0; i < n; i++ {
		if i%100 == 7 {
			want++
		}
	}
	// "pushed": a predicate the tablet servers can evaluate. "client":
	// the same rows through an expression the engine does not push down,
	// so every row crosses the network. Session.RowsRead counts the rows
	// received from the tablet servers.
	for _, c := range []struct{ name, where string }{{"pushed", "sel = 7"}, {"client", "sel + 0 = 7"}} {
		b.Run(c.name, func(b *testing.B) {
			q := "SELECT id, pad FROM " + name + " WHERE " + c.where
			var shipped int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				before := s.RowsRead()
				res := benchExec(b, s, q)
				shipped += s.RowsRead() - before
				if len(res.Rows) != want {
					b.Fatalf("selective scan returned %d rows, want %d", len(res.Rows), want)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(want), "rows-returned/op")
			b.ReportMetric(float64(shipped)/float64(b.N), "rows-shipped/op")
			if want > 0 {
				b.ReportMetric(float64(shipped)/float64(b.N)/float64(want), "shipped/returned")
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows-scanned/s")
		})
	}
}

func BenchmarkLookupJoin(b *testing.B) {
	outer, inner := *flagBenchJoinOuter, *flagBenchJoinInner
	cust := fmt.Sprintf("bench_cust_%d", inner)
	ord := fmt.Sprintf("bench_ord_%d_%d", outer, inner)
	loadBench(b, cust, fmt.Sprintf("CREATE TABLE %s (id BIGINT PRIMARY KEY, name VARCHAR(32))", cust), inner, func(i int) string {
		return fmt.Sprintf("(%d, 'customer-%d')", i, i)
	})
	loadBench(b, ord, fmt.Sprintf("CREATE TABLE %s (oid BIGINT PRIMARY KEY, cust BIGINT, amount INT)", ord), outer, func(i int) string {
		return fmt.Sprintf("(%d, %d, %d)", i, (i*7919)%inner, i%1000)
	})
	s := openSession(b)
	q := fmt.Sprintf("SELECT o.oid, c.name FROM %s o JOIN %s c ON o.cust = c.id", ord, cust)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := benchExec(b, s, q)
		if len(res.Rows) != outer {
			b.Fatalf("join returned %d rows, want %d", len(res.Rows), outer)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(outer), "rows/op")
	b.ReportMetric(float64(outer)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
