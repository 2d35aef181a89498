package sqllite

import (
	"context"
	"fmt"
	"github.com/shaledb/shale/internal/authz"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shaledb/shale/kvclient"
)

// Session is one SQL connection: it owns the open transaction (if any) and
// caches the catalog. It is not safe for concurrent use; open one per
// shell or goroutine.
type Session struct {
	client *kvclient.Client
	parser *parser.Parser
	cache  *catalogCache
	txn    *txnState
	// fresh makes lookups check the catalog (statements that write); seen
	// holds the tables checked by the running statement.
	fresh bool
	seen  map[string]*table
	// parsed caches the ASTs of recent statement texts (repeated
	// statements skip the parser).
	parsed map[string][]ast.StmtNode
	// point is the running prepared statement's plan reuse (Stmt.Exec
	// sets it; execSelect uses it for that statement only).
	point *pointPlan
	// explaining is set while EXPLAIN plans a statement (plans describe
	// themselves only then).
	explaining bool
	// unbound are a prepared statement's parameters while Stmt.Columns
	// plans it (their type is the bound value's, unknown then).
	unbound map[*driver.ValueExpr]bool
	// rowsRead counts rows received from the tablet servers (tests use it
	// to check that filters are pushed down).
	rowsRead int64
	// access, when set (ActAs), checks every statement's permissions.
	access *actingUser
	// readTS is the running SELECT's read timestamp (asof.go; 0: reads
	// are of the latest data, as DML's are).
	readTS int64
	// readImplicit: readTS is the statement's own (not AS OF TIMESTAMP
	// nor a transaction's snapshot).
	readImplicit bool
}

// RowsRead returns how many rows this session's table reads (scans and
// key lookups) have received from the tablet servers so far: with filters
// pushed down, rows a WHERE rejects are never received. Lookup-join reads
// are not counted.
func (s *Session) RowsRead() int64 { return s.rowsRead }

// Open starts a session on a kvclient.Client (which the caller keeps
// owning and closes).
func Open(ctx context.Context, client *kvclient.Client) (*Session, error) {
	return &Session{client: client, parser: parser.New(), cache: cacheFor(client), parsed: map[string][]ast.StmtNode{}}, nil
}

// Close ends the session, rolling back an open transaction.
func (s *Session) Close() error {
	s.txn = nil
	return nil
}

// InTransaction reports whether a BEGIN is open.
func (s *Session) InTransaction() bool { return s.txn != nil }

// Result is the outcome of one statement. Queries fill Columns and Rows;
// writes fill RowsAffected; DDL and transaction control fill Message.
type Result struct {
	Columns []string
	// Types holds, for a SELECT, each column's declared type when the
	// column is a plain table column, else the type of the computed
	// column's values when the expression fixes it (COUNT(*): BIGINT;
	// a comparison: BOOLEAN); the zero Type when only the values tell
	// (their kinds are then its only type). SHOW and EXPLAIN columns are
	// text with no type Name. Nil for other statements. Stmt.Columns
	// returns the same types without running the statement. (The MySQL
	// wire layer reports column types from it.)
	Types        []Type
	Rows         [][]Datum
	RowsAffected int64
	Message      string
}

const (
	maxCachedSQL   = 4096
	maxCachedStmts = 256
)

var parseErrRE = regexp.MustCompile(`line (\d+) column (\d+)(.*)`)

// parse parses sql into statements, reporting errors with line and column.
func (s *Session) parse(sql string) ([]ast.StmtNode, error) {
	if stmts, ok := s.parsed[sql]; ok {
		return stmts, nil // ASTs are never modified after parsing
	}
	stmts, _, err := s.parser.Parse(sql, "", "")
	// The parser reuses the returned slice's array on its next Parse.
	stmts = append([]ast.StmtNode(nil), stmts...)
	if err == nil && len(sql) <= maxCachedSQL {
		if len(s.parsed) >= maxCachedStmts {
			clear(s.parsed)
		}
		s.parsed[sql] = stmts
	}
	if err != nil {
		return nil, parseErr(err)
	}
	return stmts, nil
}

// parseErr turns a parser error into a CodeParse error with its line and
// column.
func parseErr(err error) *Error {
	msg := err.Error()
	e := &Error{Code: CodeParse, Msg: msg, Cause: err}
	if m := parseErrRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Col, _ = strconv.Atoi(m[2])
		e.Msg = "syntax error" + strings.TrimRight(m[3], " ")
	}
	return e
}

// Exec parses and runs every statement in sql, in order, and returns one
// Result per statement. It stops at the first failing statement and returns
// the results before it with the error. Canceling ctx cancels the running
// statement.
func (s *Session) Exec(ctx context.Context, sql string) ([]*Result, error) {
	stmts, err := s.parse(sql)
	if err != nil {
		return nil, err
	}
	var out []*Result
	for _, st := range stmts {
		r, err := s.runStmt(ctx, st)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// runStmt runs one parsed statement, reporting a cancellation as such.
func (s *Session) runStmt(ctx context.Context, st ast.StmtNode) (*Result, error) {
	if err := s.checkAccess(ctx, st); err != nil {
		return nil, err
	}
	if s.access != nil { // the tablet servers charge the statement to the user's quotas
		ctx = authz.OnBehalfOf(ctx, s.access.id.User)
	}
	r, err := s.execStmt(ctx, st)
	if err != nil && ctx.Err() != nil {
		return nil, &Error{Code: CodeStorage, Msg: "statement canceled: " + ctx.Err().Error(), Cause: ctx.Err()}
	}
	return r, err
}

func (s *Session) execStmt(ctx context.Context, st ast.StmtNode) (res *Result, err error) {
	defer func() {
		// A bug must not take the shell down: report it as an error.
		if r := recover(); r != nil {
			res, err = nil, &Error{Code: CodeInternal, Msg: fmt.Sprintf("%v (please report this statement)\n%s", r, debug.Stack())}
		}
	}()
	s.seen = map[string]*table{}
	_, isSelect := st.(*ast.SelectStmt)
	s.fresh = !isSelect
	defer func() { s.seen, s.fresh = nil, false }()
	switch x := st.(type) {
	case *ast.SelectStmt:
		return s.execSelect(ctx, x)
	case *ast.InsertStmt:
		if err := refuseAsOf(x.Table); err != nil {
			return nil, err
		}
		return s.execInsert(ctx, x)
	case *ast.UpdateStmt:
		if err := refuseAsOf(x.TableRefs); err != nil {
			return nil, err
		}
		return s.execUpdate(ctx, x)
	case *ast.DeleteStmt:
		if err := refuseAsOf(x.TableRefs); err != nil {
			return nil, err
		}
		return s.execDelete(ctx, x)
	case *ast.BeginStmt:
		return s.begin(x)
	case *ast.CommitStmt:
		return s.commit(ctx)
	case *ast.RollbackStmt:
		return s.rollback(x)
	case *ast.CreateTableStmt:
		return s.noTxn(ctx, func() (*Result, error) { return s.createTable(ctx, x) })
	case *ast.DropTableStmt:
		return s.noTxn(ctx, func() (*Result, error) { return s.dropTable(ctx, x) })
	case *ast.AlterTableStmt:
		return s.noTxn(ctx, func() (*Result, error) { return s.alterTable(ctx, x) })
	case *ast.CreateUserStmt, *ast.DropUserStmt, *ast.AlterUserStmt, *ast.SetPwdStmt, *ast.GrantStmt, *ast.RevokeStmt, *ast.GrantRoleStmt, *ast.RevokeRoleStmt:
		return s.noTxn(ctx, func() (*Result, error) { return s.execAuth(ctx, x) })
	case *ast.ShowStmt:
		return s.show(ctx, x)
	case *ast.ExplainStmt:
		if sh, ok := x.Stmt.(*ast.ShowStmt); ok {
			return s.show(ctx, sh)
		}
		if x.Analyze {
			return nil, notSupported("EXPLAIN ANALYZE")
		}
		return s.explain(ctx, x.Stmt)
	case *ast.UseStmt:
		return nil, notSupported("USE (Shale has one database)")
	case *ast.CreateIndexStmt:
		return nil, notSupported("CREATE INDEX (secondary indexes)")
	case *ast.TruncateTableStmt:
		return nil, notSupported("TRUNCATE TABLE (use DELETE FROM)")
	case *ast.SetOprStmt:
		return nil, notSupported("UNION / INTERSECT / EXCEPT")
	case *ast.SetStmt:
		return nil, notSupported("SET")
	}
	return nil, notSupported("statement %s", stmtName(st))
}

func stmtName(st ast.StmtNode) string {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(typeName(st), "Stmt"), "*ast."), "ast.")
	return strings.ToUpper(t)
}

func typeName(v any) string {
	return typeString(v)
}

func (s *Session) noTxn(ctx context.Context, f func() (*Result, error)) (*Result, error) {
	if s.txn != nil {
		return nil, errf(CodeTransaction, "schema changes are not allowed inside a transaction; COMMIT or ROLLBACK first")
	}
	return f()
}

// TableNames lists the SQL tables, for completion.
func (s *Session) TableNames(ctx context.Context) ([]string, error) {
	infos, err := s.client.ListTables(ctx)
	if err != nil {
		return nil, storageErr(err, "list tables")
	}
	var out []string
	for _, ti := range infos {
		if len(ti.SQLSchema) > 0 {
			out = append(out, ti.Name)
		}
	}
	sortStrings(out)
	return out, nil
}

// ColumnNames lists a table's columns in order, for completion.
func (s *Session) ColumnNames(ctx context.Context, table string) ([]string, error) {
	t, err := s.lookup(ctx, table)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.Name
	}
	return out, nil
}
