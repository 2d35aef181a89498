package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/tablefmt"
)

// shale table against a real in-process cluster.
func TestTableCommand(t *testing.T) {
	pd := sharedPD(t)
	dropAtEnd(t, pd, "users")
	tbl := func(args ...string) (string, error) {
		t.Helper()
		return runShale(t, append([]string{"table", "--pd", pd}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := tbl(args...)
		require.NoError(t, err, "shale table %v", args)
		return out
	}

	// create, ls, describe.
	require.Empty(t, must("create", "users", "info:maxversions=3", "stats:maxage=24h", "--split", "m"))
	_, err := tbl("create", "users", "info")
	require.ErrorIs(t, err, kvclient.ErrTableExists)
	out := must("ls")
	require.Contains(t, strings.Split(out, "\n"), "users", out)
	require.Equal(t, ""+
		"FAMILY  MAX VERSIONS  MAX AGE\n"+
		"info    3             -\n"+
		"stats   -             24h\n"+
		"\n"+
		"SPLIT ROWS\n"+
		"\"m\"\n",
		must("describe", "users"))

	// set two cells in one mutation; lookup prints them cbt-style.
	require.Empty(t, must("set", "users", "alice", "info:name=Alice", "stats:visits=a=b:c"))
	must("set", "users", "bob", "info:name=Bob")
	must("set", "users", "zed", "info:name=Zed") // after the split row
	// A bound on the whole, not a latency target: the client retries
	// within it, and -race on a loaded machine is slow.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kc, err := kvclient.Open(ctx, kvclient.Options{PD: strings.Split(pd, ",")})
	require.NoError(t, err)
	defer kc.Close()
	users, err := kc.Table(ctx, "users")
	require.NoError(t, err)
	ts := func(row string) string {
		t.Helper()
		r, err := users.Get(ctx, []byte(row))
		require.NoError(t, err)
		require.NotNil(t, r)
		return time.UnixMicro(r.Cells[0].Timestamp).UTC().Format("2006/01/02-15:04:05.000000")
	}
	aliceTS, bobTS, zedTS := ts("alice"), ts("bob"), ts("zed")
	r, err := users.Get(ctx, []byte("alice"))
	require.NoError(t, err)
	require.Len(t, r.Cells, 2)
	require.Equal(t, r.Cells[0].Timestamp, r.Cells[1].Timestamp, "one atomic mutation, one commit timestamp")

	alice := "alice\n" +
		"  info:name @ " + aliceTS + "\n" +
		"    \"Alice\"\n" +
		"  stats:visits @ " + aliceTS + "\n" +
		"    \"a=b:c\"\n"
	bob := "bob\n  info:name @ " + bobTS + "\n    \"Bob\"\n"
	zed := "zed\n  info:name @ " + zedTS + "\n    \"Zed\"\n"
	require.Equal(t, alice, must("lookup", "users", "alice"))

	// read: every row is preceded by a dash line; start/end/count bound it.
	dash := strings.Repeat("-", 40) + "\n"
	require.Equal(t, dash+alice+dash+bob+dash+zed, must("read", "users"))
	require.Equal(t, dash+bob, must("read", "users", "start=b", "end=c"))
	require.Equal(t, dash+bob+dash+zed, must("read", "users", "start=b"))
	require.Equal(t, dash+alice+dash+bob, must("read", "users", "end=m"))
	require.Equal(t, dash+bob, must("read", "users", "start=b", "count=1"))
	require.Equal(t, "", must("read", "users", "start=c", "end=d"))

	// deleterow, then lookup fails.
	must("deleterow", "users", "alice")
	_, err = tbl("lookup", "users", "alice")
	require.ErrorIs(t, err, errRowNotFound)
	require.Contains(t, err.Error(), "row not found")
	require.Equal(t, dash+bob+dash+zed, must("read", "users"))

	// Unknown tables: the kvclient error.
	for _, args := range [][]string{
		{"describe", "nope"},
		{"drop", "nope"},
		{"lookup", "nope", "r"},
		{"set", "nope", "r", "f:q=v"},
		{"read", "nope"},
		{"deleterow", "nope", "r"},
	} {
		_, err := tbl(args...)
		require.ErrorIs(t, err, kvclient.ErrTableNotFound, "%v", args)
		require.Contains(t, err.Error(), kvclient.ErrTableNotFound.Error(), "%v", args)
	}
	// Unknown family: the server's reason.
	_, err = tbl("set", "users", "r", "nofam:q=v")
	require.ErrorIs(t, err, kvclient.ErrInvalidArgument)

	// drop, then ls no longer lists it.
	must("drop", "users")
	out = must("ls")
	require.NotContains(t, strings.Split(out, "\n"), "users", out)
}

// Argument errors are reported before connecting (the --pd address is
// never dialled).
func TestTableArgumentErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "t"}, "want NAME FAMILY[:POLICY]..., got 1 argument(s)"},
		{[]string{"create", "t", ":maxversions=1"}, "empty family name"},
		{[]string{"create", "t", "f:"}, "empty GC policy"},
		{[]string{"create", "t", "f:maxversions"}, `policy "maxversions" is not KEY=VALUE`},
		{[]string{"create", "t", "f:maxversions=0"}, "want an integer >= 1"},
		{[]string{"create", "t", "f:maxversions=x"}, "want an integer >= 1"},
		{[]string{"create", "t", "f:maxage=3 days"}, "want a Go duration"},
		{[]string{"create", "t", "f:maxage=-1h"}, "must be positive"},
		{[]string{"create", "t", "f:maxage=1us"}, "granularity"},
		{[]string{"create", "t", "f:ttl=1h"}, `unknown policy "ttl"`},
		{[]string{"create", "t", "f:maxage=1h,maxage=2h"}, "maxage given more than once"},
		{[]string{"create", "t", "f", "f:maxversions=2"}, `family "f" given more than once`},
		{[]string{"create", "t", "f", "--split", ""}, "split row must not be empty"},
		{[]string{"create", "", "f"}, "table NAME must not be empty"},
		{[]string{"set", "t", "r"}, "want NAME ROW FAMILY:QUALIFIER=VALUE[@TS]..., got 2 argument(s)"},
		{[]string{"set", "t", "r", "fq=v"}, `bad cell "fq=v": missing ':'`},
		{[]string{"set", "t", "r", "f:q"}, `bad cell "f:q": missing '='`},
		{[]string{"set", "t", "r", ":q=v"}, "empty family"},
		{[]string{"set", "t", "", "f:q=v"}, "ROW must not be empty"},
		{[]string{"lookup", "t"}, "want NAME ROW, got 1 argument(s)"},
		{[]string{"read", "t", "from=a"}, `unknown key "from"`},
		{[]string{"read", "t", "a"}, "want KEY=VALUE with KEY one of start=, end=, prefix="},
		{[]string{"read", "t", "count=0"}, "want an integer >= 1"},
		{[]string{"read", "t", "start=b", "end=a"}, "must sort before"},
		{[]string{"read", "t", "start=a", "start=b"}, "start= given more than once"},
		{[]string{"describe"}, "want NAME, got 0 argument(s)"},
		{[]string{"ls", "x"}, "want no arguments"},
		{[]string{"bogus"}, `unknown command "bogus"`},
	} {
		_, err := runShale(t, append([]string{"table", "--pd", "127.0.0.1:1"}, tc.args...)...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}

	// --help works everywhere and shows examples.
	for _, sub := range []string{"", "create", "ls", "describe", "drop", "set", "lookup", "read", "deleterow"} {
		args := []string{"table"}
		if sub != "" {
			args = append(args, sub)
		}
		out, err := runShale(t, append(args, "--help")...)
		require.NoError(t, err, sub)
		require.Contains(t, out, "Examples:", sub)
	}
}

// The cbt verbs and read arguments against a real in-process cluster:
// createtable/deletetable, count, read prefix=/regex=/columns=/keys-only=,
// and set with @TS.
func TestTableCbtVerbs(t *testing.T) {
	pd := sharedPD(t)
	dropAtEnd(t, pd, "t")
	must := func(args ...string) string {
		t.Helper()
		out, err := runShale(t, append([]string{"table", "--pd", pd}, args...)...)
		require.NoError(t, err, "shale table %v", args)
		return out
	}
	must("createtable", "t", "a", "b", "--split", "row5")
	for i := 0; i < 10; i++ {
		must("set", "t", fmt.Sprintf("row%d", i), fmt.Sprintf("a:x=v%d", i), "b:y=w")
	}
	must("set", "t", "other", "a:x=1@1700000000000000", "a:mail=me@host")

	require.Equal(t, "11\n", must("count", "t"))
	require.Equal(t, "10\n", must("count", "t", "prefix=row"))
	require.Equal(t, "3\n", must("count", "t", "regex=row[2-4]"))
	require.Equal(t, "2\n", must("count", "t", "start=row3", "end=row5"))

	sep := tablefmt.RowSeparator + "\n"
	require.Equal(t, sep+"row3\n"+sep+"row7\n", must("read", "t", "regex=row[37]", "keys-only=true"))
	require.Equal(t, sep+"row8\n", must("read", "t", "prefix=row", "regex=row[89]", "count=1", "keys-only=true"))
	out := must("read", "t", "prefix=row9", "columns=b")
	require.Contains(t, out, "  b:y @ ")
	require.NotContains(t, out, "a:x")
	out = must("read", "t", "prefix=other", "columns=a:x")
	require.Contains(t, out, "  a:x @ 2023/11/14-22:13:20.000000\n    \"1\"\n", "set with @TS wrote at TS")
	require.NotContains(t, out, "a:mail")
	require.Contains(t, must("lookup", "t", "other"), `"me@host"`, "an @ not followed by digits only is part of the value")

	for _, bad := range [][]string{
		{"read", "t", "regex=("},
		{"read", "t", "prefix=row", "start=a"},
		{"read", "t", "keys-only=maybe"},
		{"read", "t", "columns=:x"},
		{"count", "t", "count=3"},
	} {
		_, err := runShale(t, append([]string{"table", "--pd", pd}, bad...)...)
		require.Error(t, err, "%v", bad)
	}
	must("deletetable", "t")
	_, err := runShale(t, "table", "--pd", pd, "count", "t")
	require.ErrorIs(t, err, kvclient.ErrTableNotFound)
}

// cbt's family verbs change a live table: createfamily takes writes at
// once, setgcpolicy shows in describe and applies to reads, deletefamily
// hides the family's cells from the next read; bad policies are refused.
func TestTableFamilyVerbs(t *testing.T) {
	pd := sharedPD(t)
	dropAtEnd(t, pd, "ft")
	run := func(args ...string) (string, error) {
		return runShale(t, append([]string{"table", "--pd", pd}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		require.NoError(t, err, "shale table %v", args)
		return out
	}
	must("create", "ft", "a")
	must("createfamily", "ft", "b:maxversions=2")
	must("set", "ft", "r", "a:x=1", "b:y=w")
	require.Contains(t, must("describe", "ft"), "b")
	must("setgcpolicy", "ft", "a", "maxversions=1", "or", "maxage=24h")
	out := must("describe", "ft")
	require.Regexp(t, `(?m)^a +1 +24h$`, out)
	must("deletefamily", "ft", "b")
	out = must("lookup", "ft", "r")
	require.NotContains(t, out, "b:y", "a deleted family is not read")
	require.Contains(t, out, "a:x")
	_, err := run("createfamily", "ft", "b")
	require.ErrorContains(t, err, "cannot be used again")
	must("setgcpolicy", "ft", "a", "never")
	for _, bad := range [][]string{
		{"setgcpolicy", "ft", "a", "maxversions=1", "and", "maxage=1h"},
		{"setgcpolicy", "ft", "a", "sometimes"},
		{"setgcpolicy", "ft", "nope", "maxversions=1"},
		{"deletefamily", "ft", "nope"},
		{"createfamily", "ft", "a"},
	} {
		_, err := run(bad...)
		require.Error(t, err, "%v", bad)
	}
}
