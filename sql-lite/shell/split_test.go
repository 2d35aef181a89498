package shell

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		src   string
		stmts []statement
		rest  string
		blank bool
	}{
		{src: "", blank: true},
		{src: "SELECT 1", rest: "SELECT 1"},
		{src: "SELECT 1;", stmts: []statement{{"SELECT 1", 1}}, blank: true},
		{src: "SELECT 1; SELECT 2;\n", stmts: []statement{{"SELECT 1", 1}, {"SELECT 2", 1}}, rest: "\n", blank: true},
		{src: "\n\nSELECT\n 1;", stmts: []statement{{"SELECT\n 1", 3}}, blank: true},
		{src: ";;  ;", blank: true},
		{src: "SELECT 'a;b';", stmts: []statement{{"SELECT 'a;b'", 1}}, blank: true},
		{src: `SELECT 'it''s;', "x;y", ` + "`c;d`" + `;`, stmts: []statement{{`SELECT 'it''s;', "x;y", ` + "`c;d`", 1}}, blank: true},
		{src: `SELECT 'a\';b';`, stmts: []statement{{`SELECT 'a\';b'`, 1}}, blank: true},
		{src: "SELECT 'open;\n", rest: "SELECT 'open;\n"},
		{src: "-- a comment; still\nSELECT 1; # trailing; comment\n", stmts: []statement{{"-- a comment; still\nSELECT 1", 2}}, rest: " # trailing; comment\n", blank: true},
		{src: "/* multi\n; line */ SELECT 2;", stmts: []statement{{"/* multi\n; line */ SELECT 2", 2}}, blank: true},
		{src: "/* unfinished ;", rest: "/* unfinished ;"},
		{src: "SELECT 5--3;", stmts: []statement{{"SELECT 5--3", 1}}, blank: true}, // -- needs a space after it
		{src: "-- only a comment\n", rest: "-- only a comment\n", blank: true},
	} {
		stmts, rest, blank := splitStatements(tc.src)
		require.Equal(t, tc.stmts, stmts, "src %q", tc.src)
		require.Equal(t, tc.rest, rest, "src %q", tc.src)
		require.Equal(t, tc.blank, blank, "src %q", tc.src)
	}
}

func TestSplitScript(t *testing.T) {
	require.Equal(t, []statement{{"CREATE TABLE t (a INT)", 1}, {"SELECT\n 1", 3}},
		splitScript("CREATE TABLE t (a INT);\n\nSELECT\n 1"))
	require.Equal(t, []statement{{"SELECT 1", 1}}, splitScript("SELECT 1;\n-- done\n"))
	require.Equal(t, []statement{{"SELECT 'x", 2}}, splitScript("\nSELECT 'x"))
	require.Empty(t, splitScript("  \n"))
}
