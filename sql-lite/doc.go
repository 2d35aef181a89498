// Package sqllite is Shale's SQL-ish layer. Its directory is sql-lite (with
// a hyphen, which is not a valid package name, hence "sqllite"). It owns
// parsing (through a parser library), mapping tables onto the Bigtable
// model, planning and execution over kvclient (scans, simple joins), the
// interactive shell and the bulk importer's table encoding. It never
// imports tabletserver or placementdriver: storage is not its concern.
package sqllite
