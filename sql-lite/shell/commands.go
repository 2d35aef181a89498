package shell

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// command is a shell command (not SQL): help, \q, \dt, ...
type command struct {
	name string // canonical name: help, quit, tables, describe, format, timing, demo
	arg  string
}

// commandHelp documents every shell command, in the order help prints them.
var commandHelp = [][2]string{
	{`help [TOPIC], \?, \h`, "show this help, or the syntax of a statement (help SELECT)"},
	{`\q, quit, exit, Ctrl-D`, "leave the shell"},
	{`\dt, \d`, "list tables (SHOW TABLES)"},
	{`\d TABLE`, "describe a table's columns (DESCRIBE TABLE)"},
	{`\format [table|csv|tsv|json]`, "show or set the output format"},
	{`\timing`, "turn the statement timing on or off"},
	{`\demo`, "create and fill the sample tables customers and orders"},
	{`Ctrl-C`, "cancel the running statement, or drop the statement being typed"},
	{`Tab`, "complete a keyword, table or column name"},
	{`Up/Down, Ctrl-R`, "walk or search the history (kept in ~/.shale_sql_history)"},
}

// statementHelp is the syntax summary `help TOPIC` prints.
var statementHelp = map[string]string{
	"CREATE": `CREATE TABLE [IF NOT EXISTS] name (col TYPE [NOT NULL] [DEFAULT v], ..., PRIMARY KEY (col, ...))
  Types: BIGINT INT SMALLINT DOUBLE FLOAT DECIMAL(p,s) VARCHAR(n) CHAR(n) TEXT
         VARBINARY(n) BLOB BOOLEAN TIMESTAMP DATETIME
  The primary key (required) is the row key: ranges on it are tablet scans.`,
	"DROP":     `DROP TABLE [IF EXISTS] name`,
	"ALTER":    `ALTER TABLE name ADD [COLUMN] col TYPE [DEFAULT v] | DROP [COLUMN] col`,
	"SHOW":     `SHOW TABLES | SHOW CREATE TABLE name`,
	"DESCRIBE": `DESCRIBE name (or \d name)`,
	"INSERT": `INSERT [IGNORE] INTO name [(col, ...)] VALUES (v, ...), ...
  [ON DUPLICATE KEY UPDATE col = expr, ...]
  A duplicate primary key is an error for that row (skipped with IGNORE).`,
	"REPLACE": `REPLACE INTO name [(col, ...)] VALUES (v, ...), ...`,
	"UPDATE": `UPDATE name SET col = expr, ... [WHERE cond]
  Each row is updated atomically (read-modify-write on the row).`,
	"DELETE": `DELETE FROM name [WHERE cond]`,
	"SELECT": `SELECT [DISTINCT] expr [AS alias], ... FROM t [[INNER|LEFT] JOIN u ON t.a = u.b]
  [WHERE cond] [GROUP BY expr, ...] [HAVING cond] [ORDER BY expr [ASC|DESC], ...]
  [LIMIT n [OFFSET m]]
  Aggregates: COUNT SUM MIN MAX AVG. Conditions: = <> < <= > >= AND OR NOT LIKE IN
  BETWEEN IS [NOT] NULL CASE.`,
	"EXPLAIN": `EXPLAIN SELECT ...   shows scan ranges, pushed-down predicates and join kinds`,
	"BEGIN":   `BEGIN; ...statements on one row...; COMMIT (or ROLLBACK)`,
}

// parseCommand recognizes a shell command typed at the start of a
// statement. A trailing ';' is allowed (`exit;`).
func parseCommand(line string) (command, bool) {
	t := strings.TrimSpace(line)
	t = strings.TrimSpace(strings.TrimSuffix(t, ";"))
	word, arg, _ := strings.Cut(t, " ")
	arg = strings.TrimSpace(arg)
	switch strings.ToLower(word) {
	case "help", `\?`, `\h`, "?":
		return command{name: "help", arg: arg}, true
	case `\q`, "quit", "exit":
		if arg == "" {
			return command{name: "quit"}, true
		}
	case `\dt`:
		return command{name: "tables"}, true
	case `\d`:
		if arg == "" {
			return command{name: "tables"}, true
		}
		return command{name: "describe", arg: arg}, true
	case `\format`:
		return command{name: "format", arg: arg}, true
	case `\timing`:
		return command{name: "timing"}, true
	case `\demo`:
		return command{name: "demo"}, true
	}
	if strings.HasPrefix(t, `\`) {
		return command{name: "unknown", arg: word}, true
	}
	return command{}, false
}

// command runs a shell command.
func (s *Shell) command(ctx context.Context, c command) error {
	switch c.name {
	case "help":
		s.help(c.arg)
	case "tables":
		return s.run(ctx, "SHOW TABLES")
	case "describe":
		return s.run(ctx, "DESCRIBE "+c.arg)
	case "format":
		if c.arg == "" {
			fmt.Fprintf(s.out, "format: %s\n", s.format)
			return nil
		}
		f, err := ParseFormat(c.arg)
		if err != nil {
			return err
		}
		s.format = f
		fmt.Fprintf(s.out, "format: %s\n", f)
	case "timing":
		s.timing = !s.timing
		fmt.Fprintf(s.out, "timing: %s\n", map[bool]string{true: "on", false: "off"}[s.timing])
	case "demo":
		return LoadDemo(ctx, s.db, s.out)
	default:
		return fmt.Errorf(`unknown command %s: type "help" for the list`, c.arg)
	}
	return nil
}

func (s *Shell) help(topic string) {
	if topic != "" {
		word := strings.ToUpper(strings.Fields(topic)[0])
		if word == "DESC" {
			word = "DESCRIBE"
		}
		if h, ok := statementHelp[word]; ok {
			fmt.Fprintln(s.out, h)
			return
		}
		fmt.Fprintf(s.out, "No help on %q. Topics: %s\n", topic, strings.Join(helpTopics(), " "))
		return
	}
	var b strings.Builder
	b.WriteString("SQL statements end with ';' and may span lines. Shell commands:\n")
	for _, h := range commandHelp {
		fmt.Fprintf(&b, "  %-30s %s\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "Statements (help TOPIC for the syntax): %s\n", strings.Join(helpTopics(), " "))
	fmt.Fprint(s.out, b.String())
}

func helpTopics() []string {
	var out []string
	for k := range statementHelp {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
