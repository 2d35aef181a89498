// Package mysqlwire serves sql-lite over the MySQL client/server protocol,
// so that the mysql/mariadb command-line client, Go's database/sql with
// go-sql-driver/mysql and other MySQL drivers can use Shale's SQL layer.
//
// The protocol itself (handshake, mysql_native_password and
// caching_sha2_password authentication, packet framing, COM_* dispatch,
// binary parameters of COM_STMT_EXECUTE) is go-mysql-org/go-mysql's server
// package; this package adds:
//
//   - server.go: the listener, bounded connections (max connections, max
//     packet size checked on the frame headers before the library
//     allocates, COM_STMT_SEND_LONG_DATA refused, handshake and idle
//     timeouts, a recover per connection so that a malformed packet never
//     takes the process down);
//   - handler.go: one sqllite.Session per connection; COM_QUERY through
//     Session.Exec, COM_STMT_PREPARE/EXECUTE through Session.Prepare and
//     Stmt.Exec;
//   - session.go: what drivers send on connect and what the engine does not
//     implement (SELECT @@version and other system variables, SET NAMES,
//     SET autocommit, other session variables, USE, SHOW DATABASES, SHOW
//     VARIABLES, SHOW WARNINGS);
//   - infoschema.go: information_schema.tables and .columns, built from
//     the catalog and filtered by a small evaluator;
//   - prepare.go: the prepare response's column definitions (Stmt.Columns,
//     put in place of the library's empty ones) and the parameter types of
//     executes that send none (C clients' re-executes), under the library;
//   - result.go: result sets with MySQL column types (from Result.Types
//     where the statement fixes them, from the values otherwise), in the
//     text and the binary row formats;
//   - errors.go: sql-lite errors as MySQL error codes and SQLSTATEs.
//
// The user-facing reference is docs/sql.md ("MySQL protocol").
package mysqlwire
