package sqltest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ddCase is one test case of a datadriven file.
type ddCase struct {
	pos       string // file:line of the directive
	directive string
	args      []string
	input     string
	expected  string
	// expStart, expEnd are the 0-based line range of the expected block
	// (for -rewrite).
	expStart, expEnd int
}

// readDDFile parses the datadriven syntax: a directive line, input lines,
// "----", expected lines up to a blank line (or, after "----\n----", up to
// "----\n----", for output with blank lines). Lines starting with # between
// cases are comments.
func readDDFile(path string) ([]*ddCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var cases []*ddCase
	i := 0
	for i < len(lines) {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		fields := strings.Fields(l)
		c := &ddCase{pos: fmt.Sprintf("%s:%d", path, i+1), directive: fields[0], args: fields[1:]}
		i++
		var in []string
		for i < len(lines) && lines[i] != "----" {
			in = append(in, lines[i])
			i++
		}
		if i >= len(lines) {
			return nil, fmt.Errorf("%s: no ---- after the input", c.pos)
		}
		c.input = strings.TrimSpace(strings.Join(in, "\n"))
		i++ // ----
		var exp []string
		if i < len(lines) && lines[i] == "----" {
			i++
			c.expStart = i - 2
			for i+1 < len(lines) && !(lines[i] == "----" && lines[i+1] == "----") {
				exp = append(exp, lines[i])
				i++
			}
			i += 2
		} else {
			c.expStart = i - 1
			for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
				exp = append(exp, lines[i])
				i++
			}
		}
		c.expEnd = i
		c.expected = strings.Join(exp, "\n")
		cases = append(cases, c)
	}
	return cases, nil
}

// rewriteDDFile replaces each case's expected block with newExp.
func rewriteDDFile(path string, cases []*ddCase, newExp []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	var out []string
	prev := 0
	for k, c := range cases {
		out = append(out, lines[prev:c.expStart]...)
		if strings.Contains(newExp[k], "\n\n") {
			out = append(out, "----", "----", newExp[k], "----", "----")
		} else {
			out = append(out, "----")
			if newExp[k] != "" {
				out = append(out, newExp[k])
			}
		}
		prev = c.expEnd
	}
	out = append(out, lines[prev:]...)
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(strings.Join(out, "\n"))
	if err := bw.Flush(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// TestDDFileRoundTrip checks the reader and the rewriter on the corpus
// itself: rewriting every case with its own expected output must give the
// file back byte for byte (so -rewrite only ever changes expectations).
func TestDDFileRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	gaps, _ := filepath.Glob("testdata/gaps/*.txt")
	for _, f := range append(files, gaps...) {
		cases, err := readDDFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) == 0 {
			t.Fatalf("%s: no cases", f)
		}
		orig, _ := os.ReadFile(f)
		tmp := filepath.Join(t.TempDir(), "x.txt")
		if err := os.WriteFile(tmp, orig, 0o644); err != nil {
			t.Fatal(err)
		}
		var exp []string
		for _, c := range cases {
			exp = append(exp, c.expected)
		}
		if err := rewriteDDFile(tmp, cases, exp); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(tmp)
		if string(got) != string(orig) {
			t.Errorf("%s: rewriting with the same expectations changed the file", f)
		}
	}
}
