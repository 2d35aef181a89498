package sqltest

// The statement corpus. Files in testdata/ use the datadriven syntax
// (github.com/cockroachdb/datadriven; read here by a small reader of our
// own, ddfile_test.go, so that the package needs no new module):
//
//	# comment
//	<directive> [arg ...]
//	<SQL, one or more lines>
//	----
//	<expected output>
//	<blank line>
//
// Directives:
//
// Any directive may carry "gap" (used in testdata/gaps/ only, see
// TestCorpusKnownGaps).
//
// Any directive may also carry client=NAME: its session then runs on a
// kvclient.Client of its own (like a shell in another process).
//
//	exec [session=NAME] [nocount]
//	    Runs the SQL (any number of statements). Prints, per result, the
//	    rows of a query (as `query` does), or "ok" for a statement that
//	    affected no rows, or "N rows affected"; with nocount every non-query
//	    prints "ok" (for REPLACE / ON DUPLICATE KEY UPDATE, whose counts are
//	    a MySQL convention we do not pin). An error prints "error: MSG" and
//	    fails the case unless the expected output says so.
//	query [session=NAME] [rowsort]
//	    Like exec. Output: a header line with the column names, then one
//	    line per row, values separated by " | ". rowsort sorts the rows
//	    (for queries whose order SQL leaves open). NULL prints as NULL, the
//	    empty string as '', a double in the shortest form that rounds to
//	    15 significant digits (3.0 prints as 3), a DECIMAL without
//	    trailing fraction zeros, a Go bool as true/false.
//	error [session=NAME]
//	    The SQL must fail. Each expected line is a case-insensitive regular
//	    expression that must match the error message (so the corpus pins
//	    what a message must say, e.g. the line and column of a parse error
//	    or the table's name, not its exact wording).
//	match [session=NAME]
//	    The SQL must succeed; its output (as exec prints it) must match
//	    every expected line, a case-insensitive multi-line regular
//	    expression; a line starting with "!" must NOT match. For output
//	    whose wording is the engine's choice: EXPLAIN, DESCRIBE, SHOW.
//
// Each file gets fresh sessions (the default one and any named ones) on the
// shared cluster; tables persist across files, so every file uses its own
// table names. -rewrite regenerates the expected output of exec and query
// cases (never of error and match cases, which are written by hand); read
// the diff: the corpus must say what is right, not what the engine prints.

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/kvclient"
	sqllite "github.com/shaledb/shale/sql-lite"
)

var flagRewrite = flag.Bool("rewrite", false, "regenerate the expected output of exec/query cases in testdata/*.txt")

func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files in testdata/ (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runCorpusFile(t, f, *flagRewrite)
		})
	}
}

// TestCorpusKnownGaps runs testdata/gaps/*.txt: cases with correct
// expectations that the engine does not meet yet, marked with the argument
// "gap" (other cases there are setup and must pass). Each gap case must
// still fail; one that passes means the gap was closed, and it must move
// into the main corpus so that it is guarded from then on.
func TestCorpusKnownGaps(t *testing.T) {
	files, err := filepath.Glob("testdata/gaps/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Log("no known gaps: testdata/gaps/ is empty")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			cases, err := readDDFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := newCorpusRunner(t)
			dropCreated(t, r.session("default"), cases)
			gaps := 0
			for _, c := range cases {
				got := r.run(c)
				ok, why := c.check(got)
				switch {
				case !c.hasArg("gap") && !ok:
					t.Errorf("%s: setup case failed (%s):\n%s\n----\n%s", c.pos, why, c.input, got)
				case c.hasArg("gap") && ok:
					t.Errorf("%s: known gap now passes: move the case to the main corpus", c.pos)
				case c.hasArg("gap"):
					gaps++
					t.Logf("%s: known gap, still failing (%s):\n%s\n----\n%s", c.pos, why, c.input, got)
				}
			}
			if gaps == 0 {
				t.Errorf("%s has no case marked gap", f)
			}
		})
	}
}

func runCorpusFile(t *testing.T, path string, rewrite bool) {
	cases, err := readDDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := newCorpusRunner(t)
	dropCreated(t, r.session("default"), cases)
	var newExpected []string
	for _, c := range cases {
		got := r.run(c)
		ok, why := c.check(got)
		if testing.Verbose() && (c.directive == "error" || c.directive == "match") {
			// Hand-written patterns: show what they were matched against.
			t.Logf("%s: %s\n%s", c.pos, c.input, got)
		}
		if rewrite && (c.directive == "exec" || c.directive == "query") {
			newExpected = append(newExpected, got)
			continue
		}
		newExpected = append(newExpected, c.expected)
		if !ok {
			t.Errorf("%s: %s\n%s %s\n%s\n----\nexpected:\n%s\n----\ngot:\n%s", c.pos, why, c.directive, strings.Join(c.args, " "), c.input, c.expected, got)
		}
	}
	if rewrite {
		if err := rewriteDDFile(path, cases, newExpected); err != nil {
			t.Fatal(err)
		}
	}
}

type corpusRunner struct {
	t        *testing.T
	sessions map[string]*sqllite.Session
	clients  map[string]*kvclient.Client
}

func newCorpusRunner(t *testing.T) *corpusRunner {
	return &corpusRunner{t: t, sessions: map[string]*sqllite.Session{}, clients: map[string]*kvclient.Client{"default": shared.client}}
}

func (r *corpusRunner) session(name string) *sqllite.Session {
	return r.sessionOn("default", name)
}

// sessionOn returns session name on client (each client name other than
// "default" is its own kvclient.Client, like another shell process).
func (r *corpusRunner) sessionOn(client, name string) *sqllite.Session {
	key := client + "/" + name
	s, ok := r.sessions[key]
	if !ok {
		cl, ok := r.clients[client]
		if !ok {
			cl = newClients(r.t, 2)[1]
			r.clients[client] = cl
		}
		s = openSessionOn(r.t, cl)
		r.sessions[key] = s
	}
	return s
}

// run executes one case and renders what happened.
func (r *corpusRunner) run(c *ddCase) string {
	opts := map[string]string{}
	for _, a := range c.args {
		k, v, _ := strings.Cut(a, "=")
		opts[k] = v
	}
	sess, client := opts["session"], opts["client"]
	if sess == "" {
		sess = "default"
	}
	if client == "" {
		client = "default"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := r.sessionOn(client, sess).Exec(ctx, c.input)
	_, nocount := opts["nocount"]
	_, rowsort := opts["rowsort"]
	var b strings.Builder
	renderResults(&b, res, nocount, rowsort)
	if err != nil {
		if c.directive == "error" {
			return err.Error()
		}
		fmt.Fprintf(&b, "error: %v\n", err)
	} else if c.directive == "error" {
		return "no error; output:\n" + b.String()
	}
	return strings.TrimRight(b.String(), "\n")
}

// check compares a case's rendered outcome with its expectation.
func (c *ddCase) check(got string) (bool, string) {
	switch c.directive {
	case "exec", "query":
		if got == c.expected {
			return true, ""
		}
		return false, "output differs"
	case "error":
		if strings.HasPrefix(got, "no error; output:") {
			return false, "statement succeeded, want an error"
		}
		return matchAll(c.expected, got)
	case "match":
		if strings.Contains(got, "error: ") {
			return false, "statement failed"
		}
		return matchAll(c.expected, got)
	}
	return false, "unknown directive " + c.directive
}

var createRE = regexp.MustCompile(`(?i)\bcreate\s+table\s+(?:if\s+not\s+exists\s+)?` + "`?" + `(\w+)`)

// dropCreated drops the tables a file creates, left by an earlier run of
// the same binary (go test -count N), so that every run starts clean.
func dropCreated(t *testing.T, s *sqllite.Session, cases []*ddCase) {
	seen := map[string]bool{}
	for _, c := range cases {
		for _, m := range createRE.FindAllStringSubmatch(c.input, -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				mustExec(t, s, "DROP TABLE IF EXISTS "+m[1])
			}
		}
	}
}

func (c *ddCase) hasArg(a string) bool {
	for _, x := range c.args {
		if x == a {
			return true
		}
	}
	return false
}

func matchAll(patterns, got string) (bool, string) {
	for _, p := range strings.Split(patterns, "\n") {
		if p == "" {
			continue
		}
		neg := strings.HasPrefix(p, "!")
		re, err := regexp.Compile("(?im)" + strings.TrimPrefix(p, "!"))
		if err != nil {
			return false, fmt.Sprintf("bad pattern %q: %v", p, err)
		}
		if re.MatchString(got) == neg {
			if neg {
				return false, fmt.Sprintf("output matches %q, which it must not", p)
			}
			return false, fmt.Sprintf("output does not match %q", p)
		}
	}
	return true, ""
}

func renderResults(b *strings.Builder, res []*sqllite.Result, nocount, rowsort bool) {
	for _, r := range res {
		if r == nil {
			b.WriteString("<nil result>\n")
			continue
		}
		if len(r.Columns) > 0 {
			b.WriteString(strings.Join(r.Columns, " | "))
			b.WriteByte('\n')
			lines := make([]string, len(r.Rows))
			for i, row := range r.Rows {
				cells := make([]string, len(row))
				for j, d := range row {
					cells[j] = renderDatum(d)
				}
				lines[i] = strings.Join(cells, " | ")
			}
			if rowsort {
				sort.Strings(lines)
			}
			for _, l := range lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
			continue
		}
		if nocount || r.RowsAffected == 0 {
			b.WriteString("ok\n")
		} else {
			fmt.Fprintf(b, "%d rows affected\n", r.RowsAffected)
		}
	}
}

// renderDatum prints one value in the corpus's canonical form.
func renderDatum(d sqllite.Datum) string {
	if d.IsNull() {
		return "NULL"
	}
	if d.Value != nil {
		v := reflect.ValueOf(d.Value)
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			return formatFloat(v.Float())
		case reflect.Bool:
			return strconv.FormatBool(v.Bool())
		case reflect.String:
			if v.String() == "" {
				return "''"
			}
		}
	}
	s := d.String()
	if _, ok := d.Value.(*big.Rat); ok && strings.Contains(s, ".") {
		// DECIMAL: the value, not the scale (AVG of integers is
		// DECIMAL(…,4) in MySQL, a float in SQLite: both print 20).
		s = strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
	}
	if s == "" {
		return "''"
	}
	return s
}

// formatFloat prints f rounded to 15 significant digits, shortest form,
// so that 0.1+0.2 prints 0.3 and 3.0 prints 3.
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
	return strconv.FormatFloat(r, 'g', -1, 64)
}
