package sqllite

import (
	"context"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/auth"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/proto/pdpb"
)

// CREATE USER, DROP USER, ALTER USER / SET PASSWORD, GRANT and REVOKE on
// Shale's model (docs/security.md, "Users, roles and authorization"):
// users and roles live in PD; a table privilege maps to read (SELECT),
// write (INSERT, UPDATE, DELETE) or admin (ALL, ALTER, CREATE, DROP,
// INDEX); ALL on *.* is the cluster admin grant. Host names are ignored
// (a user is one name cluster-wide).

func (s *Session) execAuth(ctx context.Context, st ast.StmtNode) (*Result, error) {
	switch x := st.(type) {
	case *ast.CreateUserStmt:
		return s.createUsers(ctx, x)
	case *ast.DropUserStmt:
		return s.dropUsers(ctx, x)
	case *ast.AlterUserStmt:
		return s.alterUsers(ctx, x)
	case *ast.SetPwdStmt:
		if x.User == nil {
			return nil, notSupported("SET PASSWORD without FOR user")
		}
		return s.setPassword(ctx, x.User.Username, x.Password)
	case *ast.GrantStmt:
		if x.WithGrant {
			return nil, notSupported("WITH GRANT OPTION (only cluster admins grant)")
		}
		return s.grantPrivs(ctx, x.Privs, x.Level, x.Users, true)
	case *ast.RevokeStmt:
		return s.grantPrivs(ctx, x.Privs, x.Level, x.Users, false)
	case *ast.GrantRoleStmt:
		return s.roleMembers(ctx, x.Roles, x.Users, true)
	case *ast.RevokeRoleStmt:
		return s.roleMembers(ctx, x.Roles, x.Users, false)
	}
	return nil, notSupported("statement %s", stmtName(st))
}

// password is the clear-text password of an IDENTIFIED BY clause.
func password(opt *ast.AuthOption) (string, error) {
	switch {
	case opt == nil:
		return "", nil
	case opt.ByHashString || opt.AuthPlugin != "":
		return "", notSupported("IDENTIFIED WITH or BY PASSWORD (give the password: IDENTIFIED BY 'password')")
	}
	return opt.AuthString, nil
}

func (s *Session) createUsers(ctx context.Context, x *ast.CreateUserStmt) (*Result, error) {
	var names []string
	for _, spec := range x.Specs {
		name := spec.User.Username
		if x.IsCreateRole {
			// Roles exist once they hold a grant or a member.
			names = append(names, name)
			continue
		}
		pw, err := password(spec.AuthOpt)
		if err != nil {
			return nil, err
		}
		if err := s.client.CreateUser(ctx, name, pw); err != nil {
			if x.IfNotExists && isAlreadyExists(err) {
				continue
			}
			return nil, authErr(err)
		}
		names = append(names, name)
	}
	what := map[bool]string{true: "role", false: "user"}[x.IsCreateRole]
	return &Result{Message: fmt.Sprintf("%s %s created", what, strings.Join(names, ", "))}, nil
}

func (s *Session) dropUsers(ctx context.Context, x *ast.DropUserStmt) (*Result, error) {
	if x.IsDropRole {
		return nil, notSupported("DROP ROLE (revoke its grants and members instead)")
	}
	var names []string
	for _, u := range x.UserList {
		if err := s.client.DropUser(ctx, u.Username); err != nil {
			if x.IfExists && isNotFound(err) {
				continue
			}
			return nil, authErr(err)
		}
		names = append(names, u.Username)
	}
	return &Result{Message: "dropped user " + strings.Join(names, ", ")}, nil
}

func (s *Session) alterUsers(ctx context.Context, x *ast.AlterUserStmt) (*Result, error) {
	for _, spec := range x.Specs {
		if spec.AuthOpt == nil {
			return nil, notSupported("ALTER USER without IDENTIFIED BY")
		}
		pw, err := password(spec.AuthOpt)
		if err != nil {
			return nil, err
		}
		if _, err := s.setPassword(ctx, spec.User.Username, pw); err != nil {
			return nil, err
		}
	}
	return &Result{Message: "password changed"}, nil
}

func (s *Session) setPassword(ctx context.Context, user, pw string) (*Result, error) {
	if err := s.client.SetPassword(ctx, user, pw); err != nil {
		return nil, authErr(err)
	}
	return &Result{Message: "password of " + user + " changed"}, nil
}

// permission maps MySQL privileges to Shale's level (the highest named).
func permission(privs []*ast.PrivElem) (pdpb.AuthPermission, error) {
	p := pdpb.AuthPermission_AUTH_PERMISSION_UNSPECIFIED
	for _, e := range privs {
		var q pdpb.AuthPermission
		switch e.Priv {
		case mysql.SelectPriv:
			q = pdpb.AuthPermission_READ
		case mysql.InsertPriv, mysql.UpdatePriv, mysql.DeletePriv:
			q = pdpb.AuthPermission_WRITE
		case mysql.AllPriv, mysql.AlterPriv, mysql.CreatePriv, mysql.DropPriv, mysql.IndexPriv:
			q = pdpb.AuthPermission_ADMIN
		default:
			return 0, notSupported("privilege %s (Shale has SELECT, INSERT, UPDATE, DELETE, ALTER and ALL)", strings.ToUpper(e.Priv.String()))
		}
		if len(e.Cols) > 0 {
			return 0, notSupported("column privileges")
		}
		p = max(p, q)
	}
	return p, nil
}

// grantPrivs runs GRANT (grant) or REVOKE. REVOKE removes the user's
// grant on the object whatever its level.
func (s *Session) grantPrivs(ctx context.Context, privs []*ast.PrivElem, level *ast.GrantLevel, users []*ast.UserSpec, grant bool) (*Result, error) {
	perm, err := permission(privs)
	if err != nil {
		return nil, err
	}
	g := &pdpb.AuthGrant{Permission: perm}
	table := ""
	switch {
	case level.Level == ast.GrantLevelTable:
		table = level.TableName
	case level.Level == ast.GrantLevelGlobal && perm == pdpb.AuthPermission_ADMIN:
		g.Permission, g.On = pdpb.AuthPermission_ADMIN, &pdpb.AuthGrant_Cluster{Cluster: true}
	default:
		return nil, notSupported("privileges on a database or on *.* other than ALL (grant on a table, or ALL ON *.* for cluster admin)")
	}
	if !grant {
		g.Permission = 0
	}
	for _, u := range users {
		if u.AuthOpt != nil {
			return nil, notSupported("IDENTIFIED BY in GRANT (use CREATE USER)")
		}
		name := u.User.Username
		if grant {
			err = s.client.Grant(ctx, &pdpb.GrantRequest{Role: name, Grant: g, Table: table})
		} else {
			err = s.client.Revoke(ctx, &pdpb.RevokeRequest{Role: name, Grant: g, Table: table})
		}
		if err != nil {
			return nil, authErr(err)
		}
	}
	return &Result{Message: map[bool]string{true: "granted", false: "revoked"}[grant]}, nil
}

// roleMembers runs GRANT role TO user (add) or REVOKE role FROM user.
func (s *Session) roleMembers(ctx context.Context, roles []*auth.RoleIdentity, users []*auth.UserIdentity, add bool) (*Result, error) {
	for _, r := range roles {
		for _, u := range users {
			var err error
			if add {
				err = s.client.Grant(ctx, &pdpb.GrantRequest{Role: r.Username, Member: u.Username})
			} else {
				err = s.client.Revoke(ctx, &pdpb.RevokeRequest{Role: r.Username, Member: u.Username})
			}
			if err != nil {
				return nil, authErr(err)
			}
		}
	}
	return &Result{Message: map[bool]string{true: "granted", false: "revoked"}[add]}, nil
}

func authErr(err error) error { return &Error{Code: CodeStorage, Msg: err.Error(), Cause: err} }

func isAlreadyExists(err error) bool { return status.Code(err) == codes.AlreadyExists }
func isNotFound(err error) bool      { return status.Code(err) == codes.NotFound }
