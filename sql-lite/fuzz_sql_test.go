package sqllite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// FuzzSQL puts arbitrary statements through the parser and the planner
// (EXPLAIN of every SELECT, INSERT, REPLACE, UPDATE and DELETE, against a
// real table) and runs the SELECTs: none may panic (execStmt reports a
// recovered panic as ErrInternal) or run past its deadline. Other
// statements (DDL, SHOW) are parsed only: running them would change the
// cluster's catalog under the next input.
func FuzzSQL(f *testing.F) {
	s := newSession(f)
	mustExec(f, s, "CREATE TABLE fz_plan (id INT PRIMARY KEY, a INT, s VARCHAR(20), d DOUBLE, b BLOB)")
	mustExec(f, s, "INSERT INTO fz_plan VALUES (1, 10, 'x', 1.5, x'00'), (2, NULL, 'yz', -2, NULL), (3, 30, NULL, NULL, x'ff')")
	for _, q := range []string{
		"SELECT * FROM fz_plan WHERE id = 1",
		"SELECT a, COUNT(*) FROM fz_plan GROUP BY a HAVING COUNT(*) > 0 ORDER BY a DESC LIMIT 2",
		"SELECT x.id, y.s FROM fz_plan x JOIN fz_plan y ON x.id = y.a WHERE x.s LIKE 'x%'",
		"SELECT id FROM fz_plan WHERE id IN (1, 2) AND d BETWEEN -3 AND 3 OR s IS NULL",
		"SELECT CAST(a AS CHAR), HEX(b), COALESCE(s, 'n') FROM fz_plan ORDER BY 1",
		"INSERT INTO fz_plan (id, a) VALUES (4, 1) ON DUPLICATE KEY UPDATE a = a + 1",
		"UPDATE fz_plan SET a = a * 2 WHERE id > 1 LIMIT 1",
		"DELETE FROM fz_plan WHERE s = 'q'",
		"REPLACE INTO fz_plan VALUES (5, 5, 'r', 0, NULL)",
		"SELECT (SELECT MAX(id) FROM fz_plan) + 1",
		"CREATE TABLE t2 (k VARCHAR(10) PRIMARY KEY, v INT) SPLIT AT ('m')",
		"SELECT 1; SELECT 2",
		"SELECT * FROM fz_plan WHERE id = ?",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := s.parse(sql)
		if err != nil {
			return
		}
		for _, st := range stmts {
			run := explainable(st)
			if run == nil {
				continue
			}
			for _, q := range run {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := s.runStmt(ctx, q)
				cancel()
				if errors.Is(err, ErrInternal) {
					t.Fatalf("%q: %v", sql, err)
				}
			}
		}
	})
}

// explainable returns the statements FuzzSQL runs for st: EXPLAIN of a
// data statement, and a SELECT itself; nil for the rest.
func explainable(st ast.StmtNode) []ast.StmtNode {
	switch st.(type) {
	case *ast.SelectStmt:
		return []ast.StmtNode{&ast.ExplainStmt{Stmt: st, Format: "row"}, st}
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt:
		return []ast.StmtNode{&ast.ExplainStmt{Stmt: st, Format: "row"}}
	}
	return nil
}
