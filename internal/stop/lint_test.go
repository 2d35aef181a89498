package stop

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ownedDirs are the server packages (with their subpackages) whose
// goroutines all run under a Stopper: a raw go statement there fails
// TestGoroutinesRunUnderStopper unless it carries a shortLivedMarker.
var ownedDirs = []string{
	"tabletserver/node",
	"placementdriver",
	"importer",
	"kvclient/thriftgw",
	"cmd/shale",
	"tabletserver/store",
}

// shortLivedMarker, followed by a reason, allows one go statement: on its
// line or the line above.
const shortLivedMarker = "//stop:short-lived"

func TestGoroutinesRunUnderStopper(t *testing.T) {
	root := moduleRoot(t)
	var bad []string
	for _, dir := range ownedDirs {
		bad = append(bad, rawGoStatements(t, root, dir)...)
	}
	if len(bad) > 0 {
		t.Errorf("raw go statements outside internal/stop: start them with a stop.Stopper (RunAsyncTask, "+
			"Every, Group), or, for a goroutine joined at once, mark it %q plus why:\n%s",
			shortLivedMarker, strings.Join(bad, "\n"))
	}
}

// TestRawGoStatementsCheck runs the check on made-up files: an unmarked go
// statement, one marked without a reason, one marked with a reason, and a
// test file (not checked).
func TestRawGoStatementsCheck(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pkg", "sub")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	write := func(name, src string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644))
	}
	write("a.go", `package sub

func f(ch chan int) {
	go func() { ch <- 1 }()
	//stop:short-lived
	go func() { ch <- 2 }()
	//stop:short-lived joined below, bounded by a timer
	go func() { ch <- 3 }()
	go func() { ch <- 4 }() //stop:short-lived same line works too
}
`)
	write("a_test.go", "package sub\n\nfunc g() { go func() {}() }\n")
	got := rawGoStatements(t, root, "pkg")
	require.Equal(t, []string{
		filepath.Join("pkg", "sub", "a.go") + ":4: go statement",
		filepath.Join("pkg", "sub", "a.go") + ":6: go statement (" + shortLivedMarker + " needs a reason)",
	}, got)
}

// rawGoStatements lists "file:line: ..." for the unallowed go statements in
// the non-test Go files under root/dir.
func rawGoStatements(t *testing.T, root, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		markers := map[int]string{} // line → text after the marker
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if rest, ok := strings.CutPrefix(c.Text, shortLivedMarker); ok {
					markers[fset.Position(c.Pos()).Line] = strings.TrimSpace(rest)
				}
			}
		}
		rel, _ := filepath.Rel(root, path)
		ast.Inspect(f, func(n ast.Node) bool {
			g, ok := n.(*ast.GoStmt)
			if !ok {
				return true
			}
			line := fset.Position(g.Pos()).Line
			why, marked := markers[line]
			if !marked {
				why, marked = markers[line-1]
			}
			switch {
			case !marked:
				out = append(out, fmt.Sprintf("%s:%d: go statement", rel, line))
			case why == "":
				out = append(out, fmt.Sprintf("%s:%d: go statement (%s needs a reason)", rel, line, shortLivedMarker))
			}
			return true
		})
		return nil
	})
	require.NoError(t, err, "checking %s (a package moved? update ownedDirs)", dir)
	return out
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "internal/stop is expected two levels below the module root")
	return root
}
