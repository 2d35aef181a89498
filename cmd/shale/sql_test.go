package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/sql-lite/shell"
)

// shale sql in this process: -e runs, a failed statement is reported once
// (by the shell) and returned as shell.ErrStatementFailed, so that main
// exits 1; bad flags are errors. The shell package's tests cover the
// shell itself, exit codes of the real binary and the pseudo-terminal.
func TestSQLCommand(t *testing.T) {
	pd := sharedPD(t)
	dropSQLAtEnd(t, pd, "sqlcmd")
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"sql", "--pd", pd, "--format", "csv", "-e",
		"CREATE TABLE sqlcmd (k VARCHAR(10) PRIMARY KEY, v BIGINT); INSERT INTO sqlcmd VALUES ('a', 1), ('b', NULL); SELECT * FROM sqlcmd"})
	require.NoError(t, root.Execute(), errOut.String())
	require.Equal(t, "k,v\na,1\nb,\n", out.String())

	root = newRootCommand()
	out.Reset()
	errOut.Reset()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"sql", "--pd", pd, "-e", "SELECT * FROM sqlcmd;\nSELECT * FROM missing"})
	err := root.Execute()
	require.ErrorIs(t, err, shell.ErrStatementFailed)
	require.Equal(t, 1, strings.Count(errOut.String(), "ERROR at line 2: "), errOut.String())
	require.NotContains(t, errOut.String(), "Error: ")

	_, err = runShale(t, "sql", "--pd", pd, "--format", "yaml", "-e", "SELECT 1")
	require.ErrorContains(t, err, `unknown format "yaml"`)
}

// `shale playground --sql --demo` with SQL on standard input: the playground
// starts, loads the demo tables, runs the script on its cluster and stops
// when the shell ends, with the shell's exit status.
func TestPlaygroundSQL(t *testing.T) {
	t.Parallel()
	// Built before the clock starts: a cold build alone can take minutes
	// while the rest of the suite runs.
	bin := proctest.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(stdin string) (string, string, error) {
		cmd := exec.CommandContext(ctx, bin, "playground", "--sql", "--demo", "--log-level", "warn")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}
	out, errOut, err := run("SELECT c.name, o.item FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 3;\n")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Contains(t, out, "pd: 127.0.0.1:")
	require.Contains(t, out, "| Alan Turing | chess set |")
	require.Contains(t, errOut, "Demo data loaded")

	out, errOut, err = run("SELECT * FROM nope;\n")
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stdout:\n%s\nstderr:\n%s", out, errOut)
	require.Equal(t, 1, ee.ExitCode())
	require.Contains(t, errOut, "ERROR at line 1: ")
	require.NotContains(t, errOut, "Error: ")
}
