package sqllite

import (
	"context"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shaledb/shale/internal/authz"
)

// actingUser is who a session acts as and what decides for it.
type actingUser struct {
	a  *authz.Authorizer
	id authz.Identity
}

// ActAs makes the session check every statement, before it runs, against
// the grants of id (the user the SQL endpoint authenticated), as
// internal/authz's SQL table classifies it. Without ActAs a session checks
// nothing (the shell, tests, and the endpoint in insecure mode).
func (s *Session) ActAs(a *authz.Authorizer, id authz.Identity) { s.access = &actingUser{a: a, id: id} }

// checkAccess decides st for the session's user: its kind (SELECT,
// INSERT, ...) and every table it names. A statement naming a table that
// does not exist is left to fail as it would.
func (s *Session) checkAccess(ctx context.Context, st ast.StmtNode) error {
	if s.access == nil {
		return nil
	}
	kind := stmtName(st)
	var ids []uint64
	for _, name := range tablesOf(st) {
		if id, ok := s.tableID(ctx, name); ok {
			ids = append(ids, id)
		}
	}
	if err := s.access.a.CheckSQL(s.access.id, kind, ids...); err != nil {
		return &Error{Code: CodePermission, Msg: errMessage(err), Cause: err}
	}
	return nil
}

func errMessage(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "desc = "); ok {
		return after
	}
	return msg
}

func (s *Session) tableID(ctx context.Context, name string) (uint64, bool) {
	name = strings.ToLower(name)
	if t, _ := s.cache.get(name); t != nil {
		return t.info.ID, true
	}
	info, err := s.client.DescribeTable(ctx, name)
	if err != nil {
		return 0, false
	}
	return info.ID, true
}

// tablesOf lists the tables a statement names (information_schema aside).
func tablesOf(st ast.StmtNode) []string {
	c := &tableCollector{}
	st.Accept(c)
	return c.names
}

type tableCollector struct{ names []string }

func (c *tableCollector) Enter(n ast.Node) (ast.Node, bool) {
	if t, ok := n.(*ast.TableName); ok && t.Schema.L != "information_schema" {
		c.names = append(c.names, t.Name.O)
	}
	return n, false
}

func (c *tableCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }
