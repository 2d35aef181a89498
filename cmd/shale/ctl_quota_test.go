package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

func TestCtlQuota(t *testing.T) {
	addr := sharedPD(t)
	cl, err := pdclient.New([]string{addr}, 0)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() }) // after the cleanups below
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cl.CreateUser(ctx, &pdpb.CreateUserRequest{Name: "alice"})
	require.NoError(t, err)
	// The shared cluster outlives the test: leave it without the user
	// and the table (the table's quota goes with it).
	t.Cleanup(func() { _, _ = cl.DropUser(context.Background(), &pdpb.DropUserRequest{Name: "alice"}) })
	dropAtEnd(t, addr, "qt")
	_, err = cl.CreateTable(ctx, &pdpb.CreateTableRequest{Name: "qt", Families: []*metapb.FamilySchema{{Name: "f"}}})
	require.NoError(t, err)
	run := func(args ...string) (string, error) {
		t.Helper()
		out, stderr, err := runCtlCmd(t, addr, append([]string{"quota"}, args...)...)
		if err != nil {
			return stderr, err
		}
		return out, nil
	}

	out, err := run("set", "--user", "alice", "--write-rps", "100", "--read-bytes", "10MiB")
	require.NoError(t, err, out)
	require.Equal(t, "quota of user alice: write-rps=100 read-bytes=10MiB\n", out)
	// Set merges; limits not given are kept.
	out, err = run("set", "--user", "alice", "--read-rps", "50")
	require.NoError(t, err, out)
	require.Equal(t, "quota of user alice: read-rps=50 write-rps=100 read-bytes=10MiB\n", out)
	out, err = run("set", "--table", "qt", "--write-bytes", "1.5GB/s")
	require.NoError(t, err, out)
	out, err = run("show")
	require.NoError(t, err)
	require.Equal(t, "SUBJECT     READ-RPS  WRITE-RPS  READ-BYTES  WRITE-BYTES\n"+
		"table qt    -         -          -           1500000000B/s\n"+
		"user alice  50        100        10MiB/s     -\n", out)
	var rows []quotaRow
	ctlJSON(t, addr, &rows, "quota", "show")
	require.Equal(t, []quotaRow{{Table: "qt", WriteBytes: 1_500_000_000}, {User: "alice", ReadRPS: 50, WriteRPS: 100, ReadBytes: 10 << 20}}, rows)
	out, err = run("rm", "--table", "qt")
	require.NoError(t, err, out)

	// Bad input: a typed error naming the problem, nothing changed.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "--user", "alice", "--write-rps", "-5"}, "negative"},
		{[]string{"set", "--user", "alice", "--write-bytes", "5 parsecs"}, "unknown unit"},
		{[]string{"set", "--user", "alice", "--read-rps", "99999999999"}, "above the largest"},
		{[]string{"set", "--user", "alice"}, "at least one limit"},
		{[]string{"set", "--user", "alice", "--table", "qt", "--read-rps", "1"}, "either a table or a user"},
		{[]string{"set", "--user", "bob", "--read-rps", "1"}, `user "bob" does not exist`},
		{[]string{"set", "--table", "nope", "--read-rps", "1"}, `table "nope" does not exist`},
		{[]string{"rm", "--user", "alice", "--limit", "write-qps"}, `unknown limit "write-qps"`},
		{[]string{"rm", "--table", "qt"}, `table "qt" has no quota`},
	} {
		out, err := run(tc.args...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error()+out, tc.want, "%v", tc.args)
	}
	rows = nil
	ctlJSON(t, addr, &rows, "quota", "show")
	require.Equal(t, []quotaRow{{User: "alice", ReadRPS: 50, WriteRPS: 100, ReadBytes: 10 << 20}}, rows)

	out, err = run("rm", "--user", "alice", "--limit", "read-rps,read-bytes")
	require.NoError(t, err, out)
	rows = nil
	ctlJSON(t, addr, &rows, "quota", "show")
	require.Equal(t, []quotaRow{{User: "alice", WriteRPS: 100}}, rows)
	out, err = run("rm", "--user", "alice")
	require.NoError(t, err, out)
	require.Equal(t, "quota of user alice removed\n", out)
	rows = nil
	ctlJSON(t, addr, &rows, "quota", "show")
	require.Empty(t, rows)
}
