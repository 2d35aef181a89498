package shell_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/sql-lite/shell"
)

// runMain runs the shell's scripts in this process (shell.Main, as
// `shale sql` calls it) and returns stdout, stderr and the error.
func runMain(t *testing.T, o shell.Options) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o.Stdout, o.Stderr = &out, &errOut
	if o.Stdin == nil {
		o.Stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := shell.Main(ctx, o)
	return out.String(), errOut.String(), err
}

// runBinary runs `shale sql args...` and returns stdout, stderr and the
// exit code.
func runBinary(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(proctest.Binary(t), append([]string{"sql", "--log-level", "warn"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// The shell on the real engine and a real in-process cluster: scripts and
// their exit codes, every output format, then the interactive shell on a
// pseudo-terminal.
func TestShellEndToEnd(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	pd := c.PDEndpoints()
	pdFlag := strings.Join(pd, ",")

	t.Run("formats", func(t *testing.T) {
		_, errOut, err := runMain(t, shell.Options{PD: pd, Execute: `
			CREATE TABLE fmt (id BIGINT PRIMARY KEY, name VARCHAR(40), note TEXT, score DOUBLE, ok BOOLEAN);
			INSERT INTO fmt VALUES (1, 'Ada', 'say "hi", then go', 1.5, TRUE),
			                       (2, 'Bob', NULL, -2, FALSE),
			                       (3, NULL, 'two
lines', NULL, NULL);`})
		require.NoError(t, err, errOut)
		const q = "SELECT id, name, note, score, ok FROM fmt ORDER BY id"
		for _, tc := range []struct {
			format shell.Format
			want   string
		}{
			{shell.FormatCSV, "id,name,note,score,ok\n" +
				`1,Ada,"say ""hi"", then go",1.5,true` + "\n" +
				"2,Bob,,-2,false\n" +
				"3,,\"two\nlines\",,\n"},
			{shell.FormatTSV, "id\tname\tnote\tscore\tok\n" +
				"1\tAda\t\"say \"\"hi\"\", then go\"\t1.5\ttrue\n" +
				"2\tBob\t\t-2\tfalse\n" +
				"3\t\t\"two\nlines\"\t\t\n"},
			{shell.FormatJSON, `{"id":1,"name":"Ada","note":"say \"hi\", then go","score":1.5,"ok":true}` + "\n" +
				`{"id":2,"name":"Bob","note":null,"score":-2,"ok":false}` + "\n" +
				`{"id":3,"name":null,"note":"two\nlines","score":null,"ok":null}` + "\n"},
			{shell.FormatTable, `+----+------+-------------------+-------+-------+
| id | name | note              | score | ok    |
+----+------+-------------------+-------+-------+
|  1 | Ada  | say "hi", then go |   1.5 | true  |
|  2 | Bob  | NULL              |    -2 | false |
|  3 | NULL | two\nlines        |  NULL | NULL  |
+----+------+-------------------+-------+-------+
3 rows in set
`},
		} {
			out, errOut, err := runMain(t, shell.Options{PD: pd, Execute: q, Format: tc.format})
			require.NoError(t, err, errOut)
			require.Equal(t, tc.want, out, "format %s", tc.format)
		}
		// The binary's --format flag reaches the same code.
		out, errOut, code := runBinary(t, "", "--pd", pdFlag, "--format", "csv", "-e", "SELECT id, name FROM fmt WHERE id = 3")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "id,name\n3,\n", out)
	})

	t.Run("scripts", func(t *testing.T) {
		dir := t.TempDir()
		script := filepath.Join(dir, "load.sql")
		require.NoError(t, os.WriteFile(script, []byte(
			"CREATE TABLE s (id BIGINT PRIMARY KEY, v VARCHAR(10));\n"+
				"INSERT INTO s VALUES (1, 'one');\n"+
				"INSERT INTO s VALUES (1, 'again');\n"+ // line 3: duplicate key
				"INSERT INTO s VALUES (2, 'two');\n"), 0o644))
		count := func() string {
			out, errOut, code := runBinary(t, "", "--pd", pdFlag, "--format", "csv", "-e", "SELECT COUNT(*) AS n FROM s")
			require.Equal(t, 0, code, errOut)
			return out
		}

		// -f stops at the failing statement, names its line, exits 1.
		out, errOut, code := runBinary(t, "", "--pd", pdFlag, "-f", script)
		require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		require.Contains(t, errOut, "ERROR at "+script+":3: ")
		require.Equal(t, "n\n1\n", count(), "the statement after the failed one did not run")

		// --continue runs the rest and still exits 1.
		_, _, code = runBinary(t, "", "--pd", pdFlag, "-e", "DROP TABLE s")
		require.Equal(t, 0, code)
		out, errOut, code = runBinary(t, "", "--pd", pdFlag, "-f", script, "--continue")
		require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		require.Equal(t, 1, strings.Count(errOut, "ERROR at "), errOut)
		require.Equal(t, "n\n2\n", count())

		// -e: success exits 0; an error exits 1 with the statement's line.
		out, errOut, code = runBinary(t, "", "--pd", pdFlag, "-e", "SELECT v FROM s WHERE id = 2; SELECT v FROM s WHERE id = 1")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "+-----+\n| v   |\n+-----+\n| two |\n+-----+\n1 row in set\n+-----+\n| v   |\n+-----+\n| one |\n+-----+\n1 row in set\n", out)
		out, errOut, code = runBinary(t, "", "--pd", pdFlag, "-e", "SELECT 1;\nSELECT * FROM nosuchtable;\nSELECT 2")
		require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		require.True(t, strings.HasPrefix(errOut, "ERROR at line 2: "), errOut)
		require.NotContains(t, out, "2\n+")

		// Standard input that is not a terminal is a script.
		out, errOut, code = runBinary(t, "SELECT v FROM s\n WHERE id = 1;\n", "--pd", pdFlag, "--format", "tsv")
		require.Equal(t, 0, code, errOut)
		require.Equal(t, "v\none\n", out)

		// A bad flag value is an error before connecting.
		_, errOut, code = runBinary(t, "", "--pd", pdFlag, "--format", "xml", "-e", "SELECT 1")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, `unknown format "xml"`)
	})

	t.Run("demo", func(t *testing.T) {
		out, errOut, err := runMain(t, shell.Options{PD: pd, Demo: true, Format: shell.FormatCSV,
			Execute: "SELECT c.name, o.item FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 2 ORDER BY o.id"})
		require.NoError(t, err, errOut)
		require.Contains(t, errOut, "Demo data loaded")
		require.Equal(t, "name,item\nGrace Hopper,compiler manual\nGrace Hopper,moth trap\nGrace Hopper,notebook\n", out)
		// Loading it again changes nothing.
		_, errOut, err = runMain(t, shell.Options{PD: pd, Demo: true, Execute: shell.DemoQuery})
		require.NoError(t, err, errOut)
	})

	t.Run("interactive", func(t *testing.T) { testInteractive(t, c) })
}

// testInteractive drives `shale sql` on a pseudo-terminal: multi-line
// statements, tab completion of a table name, history (the up arrow, and
// the history file across runs), Ctrl-C dropping a half-typed statement
// and canceling a running one without leaving the shell, the transaction
// prompt, help, Ctrl-D.
func testInteractive(t *testing.T, c *testcluster.Cluster) {
	history := filepath.Join(t.TempDir(), "history")
	args := ptyArgs(c.PDEndpoints(), history)
	term := startTerminal(t, args...)
	term.expect("shale> ")

	// A statement over three lines, with continuation prompts.
	term.send("CREATE TABLE fruits (\r")
	term.expect("    -> ")
	term.send("  id BIGINT PRIMARY KEY,\r")
	term.expect("    -> ")
	term.send("  name VARCHAR(20));\r")
	term.expect("shale> ")
	term.send("INSERT INTO fruits VALUES (1, 'apple'), (2, 'banana');\r")
	term.expect("Query OK, 2 rows affected (")
	term.expect("shale> ")

	// Tab completes the table name: the statement only works if it did.
	term.send("SELECT name FROM fru\t")
	term.expect("fruits")
	term.send(" WHERE id = 2;\r")
	term.expect("| banana |")
	term.expect("1 row in set (")
	term.expect("shale> ")

	// Up arrow recalls the previous statement.
	term.send("\x1b[A")
	term.expect("SELECT name FROM fruits WHERE id = 2;")
	term.send("\r")
	term.expect("| banana |")
	term.expect("shale> ")

	// Ctrl-C drops a half-typed statement: what follows is a new one.
	term.send("SELECT no such\r")
	term.expect("    -> ")
	term.send("thing\x03")
	term.expect("shale> ")
	term.send("SELECT name FROM fruits WHERE id = 1;\r")
	term.expect("| apple |")
	term.expect("shale> ")

	// Ctrl-C cancels a running statement. Without two of the three
	// stores no write can commit, so the INSERT waits until canceled.
	c.StopStore(1)
	c.StopStore(2)
	term.send("INSERT INTO fruits VALUES (3, 'cherry');\r")
	term.waitCooked()
	term.send("\x03")
	term.expect("ERROR: statement canceled")
	term.expect("shale> ")
	c.StartStore(1)
	c.StartStore(2)
	term.send("SELECT name FROM fruits WHERE id = 1;\r")
	term.expect("| apple |")
	term.expect("shale> ")

	// Inside BEGIN ... COMMIT the prompt says so.
	term.send("BEGIN;\r")
	term.expect("shale*> ")
	term.send("UPDATE fruits SET name = 'blueberry' WHERE id = 2;\r")
	term.expect("Query OK, 1 row affected (")
	term.expect("shale*> ")
	term.send("COMMIT;\r")
	term.expect("shale> ")
	term.send("SELECT name FROM fruits WHERE id = 2;\r")
	term.expect("| blueberry |")
	term.expect("shale> ")

	// help, then Ctrl-D leaves with status 0.
	term.send("help\r")
	term.expect(`\q, quit, exit, Ctrl-D`)
	term.expect("shale> ")
	term.send("\x04")
	require.Equal(t, 0, term.wait())

	// The history file survives: a new shell recalls the last statement.
	term = startTerminal(t, args...)
	term.expect("shale> ")
	term.send("\x1b[A")
	term.expect("help")
	term.send("\x1b[A")
	term.expect("SELECT name FROM fruits WHERE id = 2;")
	term.send("\r")
	term.expect("| blueberry |")
	term.expect("shale> ")
	// Ctrl-C at an empty prompt stays in the shell.
	term.send("\x03")
	term.expect("shale> ")
	term.send("exit\r")
	require.Equal(t, 0, term.wait())

	// SIGTERM ends the shell cleanly.
	term = startTerminal(t, args...)
	term.expect("shale> ")
	require.NoError(t, term.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, term.wait())
	hist, err := os.ReadFile(history)
	require.NoError(t, err)
	require.Contains(t, string(hist), "CREATE TABLE fruits (   id BIGINT PRIMARY KEY,   name VARCHAR(20));\n", "a multi-line statement is one history entry")
}
