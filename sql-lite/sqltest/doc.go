// Package sqltest holds the verification suites of sql-lite (package
// sqllite), kept apart from the engine so that they check it only through
// its public API (sqllite.Open, Session.Exec, Result, Datum, TableNames,
// ColumnNames) and the MySQL protocol:
//
//   - corpus_test.go runs the statement corpus in testdata/*.txt
//     (datadriven syntax, described there) against a real in-process
//     cluster; testdata/gaps/ holds cases, with correct expectations, that
//     the engine does not meet yet (TestCorpusKnownGaps requires them to
//     still fail, so a fixed gap is moved into the corpus).
//   - diff_test.go generates random tables, data, queries and writes and
//     compares Shale's answers with SQLite's (the Debian sqlite3 CLI,
//     installed by the test when missing; scripts/install-tools.sh ci
//     installs it too). wire_test.go runs the same test through the MySQL
//     protocol (sql-lite/mysqlwire, queried with go-sql-driver/mysql).
//   - atomic_test.go checks single-row atomicity under concurrency
//     (32 x 100 UPDATEs of one row; concurrent BEGIN ... COMMIT).
//   - misc_test.go: canceled statements, writes during schema changes,
//     completion sources.
//   - bench_test.go has the benchmarks of issue 8 (point SELECT vs raw Get,
//     selective scan with rows shipped, lookup join).
//
// All tests of one binary share one in-process cluster, started in TestMain
// (one store by default; -stores 3 for a replicated one).
//
// Running:
//
//	go test -count=1 ./sql-lite/sqltest/
//	go test -count=1 -run 'TestCorpus$/select' ./sql-lite/sqltest/ -rewrite   # then read the diff
//	SHALE_TEST_SEED=N go test -count=1 -run TestDifferentialSQLite -v ./sql-lite/sqltest/ -diff.size 30 -diff.queries 200
//	go test -count=1 -run '^$' -bench . ./sql-lite/sqltest/ -bench.rows 1000000
package sqltest
