// Package sqllite is Shale's SQL-ish layer. Its directory is sql-lite (with
// a hyphen, which is not a valid package name, hence "sqllite"). It owns
// parsing (through a parser library), mapping tables onto the Bigtable
// model, planning and execution over kvclient (scans, simple joins), the
// interactive shell and the bulk importer's table encoding. It never
// imports tabletserver or placementdriver: storage is not its concern.
//
// The engine (this package) maps tables onto Shale tables (catalog.go,
// types.go for the order-preserving encoding), compiles expressions
// (expr.go, agg.go), plans access paths, pushdown and joins (plan.go,
// pushdown.go, select.go), and writes rows atomically through
// check-and-mutate on a per-row version cell (dml.go, txn.go).
// Prepared statements (prepare.go) parse once and replace each ? marker
// with a literal node whose value each Exec sets; a prepared point SELECT
// also reuses its plan while the table's schema is unchanged. The user-facing
// reference is docs/sql.md.
package sqllite
