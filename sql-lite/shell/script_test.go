package shell

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// echoDB answers every statement with its text as the message and fails
// the statements that start with FAIL; it tests the script driver alone
// (the end-to-end tests use the real engine).
type echoDB struct {
	wordList
	ran []string
}

func (e *echoDB) Exec(_ context.Context, sql string) ([]*sqllite.Result, error) {
	e.ran = append(e.ran, sql)
	if strings.HasPrefix(sql, "FAIL") {
		return nil, errors.New("boom: " + sql)
	}
	return []*sqllite.Result{{Message: sql}}, nil
}

func TestRunScript(t *testing.T) {
	const script = "ONE;\nFAIL two;\n\n  THREE\n;\nFOUR"
	for _, tc := range []struct {
		cont     bool
		ran      []string
		out, err string
	}{
		{cont: false, ran: []string{"ONE", "FAIL two"}, out: "ONE\n", err: "ERROR at f.sql:2: boom: FAIL two\n"},
		{cont: true, ran: []string{"ONE", "FAIL two", "THREE", "FOUR"}, out: "ONE\nTHREE\nFOUR\n", err: "ERROR at f.sql:2: boom: FAIL two\n"},
	} {
		db := &echoDB{}
		var out, errOut bytes.Buffer
		sh := &Shell{db: db, out: &out, errOut: &errOut, format: FormatTable, cont: tc.cont}
		err := sh.RunScript(context.Background(), "f.sql", script)
		require.ErrorIs(t, err, ErrStatementFailed)
		require.Equal(t, tc.ran, db.ran)
		require.Equal(t, tc.out, out.String())
		require.Equal(t, tc.err, errOut.String())
	}
	db := &echoDB{}
	var out, errOut bytes.Buffer
	sh := &Shell{db: db, out: &out, errOut: &errOut, format: FormatTable}
	require.NoError(t, sh.RunScript(context.Background(), "", "A; B"))
	require.Equal(t, "A\nB\n", out.String())
	require.ErrorIs(t, sh.RunScript(context.Background(), "", "\nFAIL x;"), ErrStatementFailed)
	require.Equal(t, "ERROR at line 2: boom: FAIL x\n", errOut.String())
}

func TestParseCommand(t *testing.T) {
	for line, want := range map[string]command{
		"help":        {name: "help"},
		`\?`:          {name: "help"},
		"help select": {name: "help", arg: "select"},
		`\q`:          {name: "quit"},
		"exit;":       {name: "quit"},
		" quit ":      {name: "quit"},
		`\dt`:         {name: "tables"},
		`\d`:          {name: "tables"},
		`\d orders`:   {name: "describe", arg: "orders"},
		`\format csv`: {name: "format", arg: "csv"},
		`\timing`:     {name: "timing"},
		`\demo`:       {name: "demo"},
		`\x`:          {name: "unknown", arg: `\x`},
	} {
		got, ok := parseCommand(line)
		require.True(t, ok, line)
		require.Equal(t, want, got, line)
	}
	for _, line := range []string{"SELECT 1;", "exit now", "helpme", ""} {
		_, ok := parseCommand(line)
		require.False(t, ok, line)
	}
}

// help lists every shell command; help TOPIC prints a statement's syntax.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	sh := &Shell{db: &echoDB{}, out: &out, errOut: &out, format: FormatTable}
	require.NoError(t, sh.command(context.Background(), command{name: "help"}))
	for _, h := range commandHelp {
		require.Contains(t, out.String(), h[0])
		require.Contains(t, out.String(), h[1])
	}
	for topic := range statementHelp {
		require.Contains(t, out.String(), topic)
	}
	for topic := range statementHelp {
		out.Reset()
		require.NoError(t, sh.command(context.Background(), command{name: "help", arg: strings.ToLower(topic)}))
		require.Equal(t, statementHelp[topic]+"\n", out.String())
	}
	out.Reset()
	require.NoError(t, sh.command(context.Background(), command{name: "help", arg: "frobnicate"}))
	require.Contains(t, out.String(), `No help on "frobnicate". Topics: ALTER BEGIN`)
	require.EqualError(t, sh.command(context.Background(), command{name: "unknown", arg: `\x`}), `unknown command \x: type "help" for the list`)
}
