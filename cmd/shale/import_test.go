package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testcluster"
)

func runShaleStreams(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

// shale import against a real in-process cluster: JSON progress and
// summary, the bar, a resumed (already finished) job, and a malformed row.
func TestImportCommand(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	pd := strings.Join(c.PDEndpoints(), ",")
	_, err := runShale(t, "table", "--pd", pd, "create", "users", "info")
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
	args := []string{"import", "--pd", pd, "--table", "users", "--raw", "--header", "--row-key", "id",
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

	out, err = runShale(t, "table", "--pd", pd, "lookup", "users", "u0042")
	require.NoError(t, err)
	require.Contains(t, out, `"Name, 42"`)

	// The same command again: the job is done, nothing to do.
	out, _, err = runShaleStreams(t, append(args, "--progress", "bar", in)...)
	require.NoError(t, err)
	require.Contains(t, out, "Imported 300 rows")
	require.Contains(t, out, "resumed")

	// The progress bar on stderr, the summary on stdout.
	_, err = runShale(t, "table", "--pd", pd, "create", "users2", "info")
	require.NoError(t, err)
	out, errOut, err := runShaleStreams(t, "import", "--pd", pd, "--table", "users2", "--raw", "--header", "--row-key", "id",
		"--map", "name=info:name,email=info:email", "--work-dir", filepath.Join(dir, "w3"), in)
	require.NoError(t, err)
	require.Contains(t, errOut, "rows/s")
	require.Contains(t, errOut, "100.0%")
	require.Contains(t, out, "Imported 300 rows (600 cells")
	t.Logf("stderr:\n%s\nstdout:\n%s", errOut, out)

	// A malformed row names file:line:column.
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("id,name,email\nx1,a,b\nx2,\"oops\"x,c\n"), 0o644))
	_, _, err = runShaleStreams(t, "import", "--pd", pd, "--table", "users", "--raw", "--header", "--row-key", "id",
		"--map", "name=info:name", "--work-dir", filepath.Join(dir, "w2"), "--progress", "none", bad)
	require.ErrorContains(t, err, bad+":3:")

	_, _, err = runShaleStreams(t, "import", "--pd", pd, "--table", "users", in)
	require.ErrorContains(t, err, "--raw")
}
