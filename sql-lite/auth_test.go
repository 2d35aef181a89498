package sqllite

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// authPolicy is PD's current users and grants.
func authPolicy(t *testing.T) *authz.Policy {
	cl, err := pdclient.New(testPD, 0)
	require.NoError(t, err)
	defer cl.Close()
	resp, err := cl.GetAuth(context.Background(), &pdpb.GetAuthRequest{})
	require.NoError(t, err)
	return authz.NewPolicy(resp.State)
}

func canDo(t *testing.T, user string, c authz.Class, table uint64) bool {
	return authPolicy(t).Check(authz.Identity{User: user}, c, []authz.Target{{TableID: table}}) == nil
}

func TestCreateUserGrantRevoke(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE sqlauth (id BIGINT PRIMARY KEY)`)
	tbl, err := testClient.Table(testCtx(t), "sqlauth")
	require.NoError(t, err)
	tid := tbl.Info().ID

	mustExec(t, s, `CREATE USER 'sqlalice'@'%' IDENTIFIED BY 'pw one'`)
	mustExec(t, s, `CREATE USER IF NOT EXISTS sqlalice`)
	_, err = s.Exec(testCtx(t), `CREATE USER sqlalice`)
	require.ErrorContains(t, err, "already exists")
	require.NoError(t, authz.CheckPassword(authPolicy(t).User("sqlalice").PasswordHash, "pw one"))

	mustExec(t, s, `GRANT SELECT ON sqlauth TO sqlalice`)
	require.True(t, canDo(t, "sqlalice", authz.DataRead, tid))
	require.False(t, canDo(t, "sqlalice", authz.DataWrite, tid))
	mustExec(t, s, `GRANT SELECT, INSERT ON sqlauth TO sqlalice`)
	require.True(t, canDo(t, "sqlalice", authz.DataWrite, tid))
	mustExec(t, s, `REVOKE INSERT ON sqlauth FROM sqlalice`)
	require.False(t, canDo(t, "sqlalice", authz.DataRead, tid), "REVOKE removes the grant on the table")

	mustExec(t, s, `CREATE ROLE sqlreaders`)
	mustExec(t, s, `GRANT SELECT ON sqlauth TO sqlreaders`)
	mustExec(t, s, `GRANT sqlreaders TO sqlalice`)
	require.True(t, canDo(t, "sqlalice", authz.DataRead, tid))
	mustExec(t, s, `REVOKE sqlreaders FROM sqlalice`)
	require.False(t, canDo(t, "sqlalice", authz.DataRead, tid))

	mustExec(t, s, `GRANT ALL ON *.* TO sqlalice`)
	require.True(t, canDo(t, "sqlalice", authz.ClusterAdmin, 0))
	mustExec(t, s, `REVOKE ALL ON *.* FROM sqlalice`)
	require.False(t, canDo(t, "sqlalice", authz.ClusterAdmin, 0))

	mustExec(t, s, `ALTER USER sqlalice IDENTIFIED BY 'pw two'`)
	require.NoError(t, authz.CheckPassword(authPolicy(t).User("sqlalice").PasswordHash, "pw two"))
	mustExec(t, s, `SET PASSWORD FOR sqlalice = 'pw three'`)
	require.NoError(t, authz.CheckPassword(authPolicy(t).User("sqlalice").PasswordHash, "pw three"))

	for _, bad := range []string{
		`GRANT SELECT ON somedb.* TO sqlalice`,
		`GRANT SELECT ON *.* TO sqlalice`,
		`GRANT SUPER ON *.* TO sqlalice`,
		`GRANT SELECT (id) ON sqlauth TO sqlalice`,
		`GRANT SELECT ON nosuchtable TO sqlalice`,
	} {
		_, err := s.Exec(testCtx(t), bad)
		require.Error(t, err, bad)
	}
	mustExec(t, s, `DROP USER sqlalice`)
	require.Nil(t, authPolicy(t).User("sqlalice"))
	mustExec(t, s, `DROP USER IF EXISTS sqlalice`)
	_, err = s.Exec(testCtx(t), `DROP USER sqlalice`)
	require.ErrorContains(t, err, "does not exist")
}

type fixedPolicy struct{ p *authz.Policy }

func (f fixedPolicy) Policy() (*authz.Policy, error) { return f.p, nil }

// A session acting as a user runs only what the user's grants allow, and
// checks before anything runs.
func TestSessionActsAsUser(t *testing.T) {
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE actas (id BIGINT PRIMARY KEY, v VARCHAR(10))`)
	mustExec(t, s, `CREATE TABLE actas_other (id BIGINT PRIMARY KEY)`)
	mustExec(t, s, `INSERT INTO actas VALUES (1, 'one')`)
	tbl, err := testClient.Table(testCtx(t), "actas")
	require.NoError(t, err)
	st, err := authz.Edit(nil, func(st *pdpb.AuthState) error {
		return authz.GrantPermission(st, "rita", &pdpb.AuthGrant{Permission: pdpb.AuthPermission_READ, On: &pdpb.AuthGrant_TableId{TableId: tbl.Info().ID}})
	})
	require.NoError(t, err)
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: fixedPolicy{authz.NewPolicy(st)}})
	require.NoError(t, err)

	rita, err := Open(context.Background(), testClient)
	require.NoError(t, err)
	rita.ActAs(a, authz.Identity{User: "rita"})
	require.Equal(t, "1|one", query(t, rita, `SELECT * FROM actas`))
	require.Equal(t, "2", query(t, rita, `SELECT 1 + 1`))
	for _, stmt := range []string{
		`INSERT INTO actas VALUES (2, 'two')`,
		`UPDATE actas SET v = 'uno' WHERE id = 1`,
		`DELETE FROM actas`,
		`SELECT * FROM actas_other`,
		`SELECT * FROM actas JOIN actas_other ON actas.id = actas_other.id`,
		`CREATE TABLE rita_t (id BIGINT PRIMARY KEY)`,
		`DROP TABLE actas`,
		`ALTER TABLE actas ADD COLUMN w BIGINT`,
		`CREATE USER eve`,
	} {
		_, err := rita.Exec(testCtx(t), stmt)
		require.ErrorIs(t, err, ErrPermission, stmt)
	}
	require.Equal(t, "1|one", query(t, s, `SELECT * FROM actas`), "nothing was applied")
}
