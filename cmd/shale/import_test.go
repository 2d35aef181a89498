package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runShaleStreams(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	// Synchronized: the in-process cluster's goroutines log through
	// slog's default, which the command points at errOut.
	var out, errOut syncBuffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// shale import against a real in-process cluster: JSON progress and
// summary, the bar, a resumed (already finished) job, and a malformed row.
func TestImportCommand(t *testing.T) {
	pd := sharedPD(t)
	dropAtEnd(t, pd, "imp_users", "imp_users2")
	_, err := runShale(t, "table", "--pd", pd, "create", "imp_users", "info")
	require.NoError(t, err)
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("id,name,email\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&csv, "u%04d,\"Name, %d\",u%d@example.com\n", i, i, i)
	}
	in := filepath.Join(dir, "users.csv")
	require.NoError(t, os.WriteFile(in, []byte(csv.String()), 0o644))
	work := filepath.Join(dir, "work")
	args := []string{"import", "--pd", pd, "--table", "imp_users", "--raw", "--header", "--row-key", "id",
		"--map", "name=info:name,email=info:email", "--work-dir", work, "--sst-size", "8192", "--split-size", "16384"}

	out, _, err := runShaleStreams(t, append(args, "--progress", "json", in)...)
	require.NoError(t, err)
	var sawProgress bool
	var summary map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		if _, ok := m["progress"]; ok {
			sawProgress = true
		}
		if s, ok := m["summary"]; ok {
			require.NoError(t, json.Unmarshal(s, &summary))
		}
	}
	require.True(t, sawProgress)
	require.EqualValues(t, 300, summary["rows"])
	require.EqualValues(t, 600, summary["cells"])
	require.EqualValues(t, 300, summary["verified_rows"])

	out, err = runShale(t, "table", "--pd", pd, "lookup", "imp_users", "u0042")
	require.NoError(t, err)
	require.Contains(t, out, `"Name, 42"`)

	// The same command again: the job is done, nothing to do.
	out, _, err = runShaleStreams(t, append(args, "--progress", "bar", in)...)
	require.NoError(t, err)
	require.Contains(t, out, "Imported 300 rows")
	require.Contains(t, out, "resumed")

	// The progress bar on stderr, the summary on stdout.
	_, err = runShale(t, "table", "--pd", pd, "create", "imp_users2", "info")
	require.NoError(t, err)
	out, errOut, err := runShaleStreams(t, "import", "--pd", pd, "--table", "imp_users2", "--raw", "--header", "--row-key", "id",
		"--map", "name=info:name,email=info:email", "--work-dir", filepath.Join(dir, "w3"), in)
	require.NoError(t, err)
	require.Contains(t, errOut, "rows/s")
	require.Contains(t, errOut, "100.0%")
	require.Contains(t, out, "Imported 300 rows (600 cells")
	t.Logf("stderr:\n%s\nstdout:\n%s", errOut, out)

	// A malformed row names file:line:column.
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("id,name,email\nx1,a,b\nx2,\"oops\"x,c\n"), 0o644))
	_, _, err = runShaleStreams(t, "import", "--pd", pd, "--table", "imp_users", "--raw", "--header", "--row-key", "id",
		"--map", "name=info:name", "--work-dir", filepath.Join(dir, "w2"), "--progress", "none", bad)
	require.ErrorContains(t, err, bad+":3:")

	_, _, err = runShaleStreams(t, "import", "--pd", pd, "--table", "imp_users", "--work-dir", filepath.Join(dir, "w4"), in)
	require.ErrorContains(t, err, "--raw")
}

// shale import into a SQL table: fields converted to the column types,
// absent columns take their DEFAULT, NULLs, a row that existed before the
// import, every row compared through SQL afterwards, SQL writes on imported
// rows, and bad fields named by file:line:column.
func TestImportSQLTable(t *testing.T) {
	pd := sharedPD(t)
	dropSQLAtEnd(t, pd, "acct")
	sql := func(stmts string) string {
		t.Helper()
		out, _, err := runShaleStreams(t, "sql", "--pd", pd, "--format", "csv", "-e", stmts)
		require.NoError(t, err)
		return out
	}
	sql("CREATE TABLE acct (region VARCHAR(8), id BIGINT, bal BIGINT NOT NULL, note TEXT, active BOOLEAN DEFAULT TRUE, PRIMARY KEY (region, id));" +
		"INSERT INTO acct VALUES ('zz', 1, 5, 'before', FALSE)")

	dir := t.TempDir()
	var in, want strings.Builder
	in.WriteString("id,region,bal,note\n") // another column order than the table's
	want.WriteString("region,id,bal,note,active\n")
	type row struct {
		region string
		id     int
		line   string
	}
	var rows []row
	for i := 0; i < 200; i++ {
		region := []string{"eu", "us", "ap"}[i%3]
		note, noteOut := fmt.Sprintf("n%d", i), fmt.Sprintf("n%d", i)
		if i%7 == 0 {
			note, noteOut = `\N`, ""
		} else if i%11 == 0 {
			note, noteOut = "", "" // an empty string, not NULL
		}
		fmt.Fprintf(&in, "%d,%s,%d,%s\n", i, region, i*10-500, note)
		rows = append(rows, row{region, i, fmt.Sprintf("%s,%d,%d,%s,true\n", region, i, i*10-500, noteOut)})
	}
	rows = append(rows, row{"zz", 1, "zz,1,5,before,false\n"})
	slices.SortFunc(rows, func(a, b row) int {
		if a.region != b.region {
			return strings.Compare(a.region, b.region)
		}
		return a.id - b.id
	})
	for _, r := range rows {
		want.WriteString(r.line)
	}
	file := filepath.Join(dir, "acct.csv")
	require.NoError(t, os.WriteFile(file, []byte(in.String()), 0o644))
	out, _, err := runShaleStreams(t, "import", "--pd", pd, "--table", "acct", "--header", "--null", `\N`,
		"--work-dir", filepath.Join(dir, "w"), "--progress", "json", file)
	require.NoError(t, err)
	require.Contains(t, out, `"verified_rows":200`)

	require.Equal(t, want.String(), sql("SELECT region, id, bal, note, active FROM acct ORDER BY region, id"))
	// CSV shows NULL and '' alike: count them apart. i%7 == 0: NULL (29
	// rows); otherwise i%11 == 0: '' (16 rows).
	require.Equal(t, "n\n29\n", sql("SELECT COUNT(*) AS n FROM acct WHERE note IS NULL"))
	require.Equal(t, "n\n16\n", sql("SELECT COUNT(*) AS n FROM acct WHERE note = ''"))
	// Imported rows are ordinary SQL rows: their version cell lets
	// single-row writes apply.
	sql("UPDATE acct SET bal = bal + 1 WHERE region = 'eu' AND id = 3")
	require.Equal(t, "bal\n-469\n", sql("SELECT bal FROM acct WHERE region = 'eu' AND id = 3"))

	for _, tc := range []struct{ name, body, want string }{
		{"type", "id,region,bal\n1,eu,7\n2,eu,seven\n", "bad.csv:3:6"},
		{"not null", "id,region,bal\n1,eu,\\N\n", "bad.csv:2:6"},
		{"unknown column", "id,region,balance\n1,eu,7\n", `no column "balance"`},
		{"missing key column", "id,bal\n1,7\n", "primary key column region"},
	} {
		bad := filepath.Join(dir, "bad.csv")
		require.NoError(t, os.WriteFile(bad, []byte(tc.body), 0o644))
		_, _, err := runShaleStreams(t, "import", "--pd", pd, "--table", "acct", "--header", "--null", `\N`,
			"--work-dir", filepath.Join(dir, "w-"+strings.ReplaceAll(tc.name, " ", "-")), "--progress", "none", bad)
		require.ErrorContains(t, err, tc.want, tc.name)
	}
	// A raw mapping into a SQL table, or no mapping into a raw table, is refused.
	_, _, err = runShaleStreams(t, "import", "--pd", pd, "--table", "acct", "--row-key", "id", "--work-dir", filepath.Join(dir, "w5"), file)
	require.ErrorContains(t, err, "add --raw")
}
