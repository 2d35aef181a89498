// Package sqltest holds the verification suites of sql-lite (package
// sqllite), kept apart from the engine so that they check it only through
// its public API (sqllite.Open, Session.Exec, Result, Datum):
//
//   - corpus_test.go runs the statement corpus in testdata/ (datadriven
//     syntax, see the file comment there) against a real in-process cluster;
//     testdata/gaps/ holds cases with correct expectations that the engine
//     does not meet yet.
//   - diff_test.go generates random tables, data and queries and compares
//     Shale's answers with SQLite's (the Debian sqlite3 CLI).
//   - atomic_test.go checks single-row atomicity under concurrency.
//   - bench_test.go has the benchmarks of issue 8 (point SELECT vs raw Get,
//     selective scan, lookup join).
//
// All tests of one binary share one in-process cluster, started in TestMain.
package sqltest
