package shell

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"
)

// WordSource lists the names the completer offers besides keywords;
// *sqllite.Session implements it.
type WordSource interface {
	TableNames(ctx context.Context) ([]string, error)
	ColumnNames(ctx context.Context, table string) ([]string, error)
}

// keywords are the SQL words the completer offers (the statements and
// clauses the engine supports, its types and common functions).
var keywords = []string{
	"ADD", "ALL", "ALTER", "AND", "AS", "ASC", "AT", "AVG", "BEGIN", "BETWEEN",
	"BIGINT", "BLOB", "BOOLEAN", "BY", "CASE", "CHAR", "COALESCE", "COLUMN",
	"COMMIT", "COUNT", "CREATE", "DATETIME", "DECIMAL", "DEFAULT", "DELETE",
	"DESC", "DESCRIBE", "DISTINCT", "DOUBLE", "DROP", "DUPLICATE", "ELSE", "END",
	"EXISTS", "EXPLAIN", "FALSE", "FLOAT", "FROM", "GROUP", "HAVING", "IF",
	"IGNORE", "IN", "INNER", "INSERT", "INT", "INTO", "IS", "JOIN", "KEY",
	"LEFT", "LENGTH", "LIKE", "LIMIT", "LOWER", "MAX", "MIN", "NOT", "NULL",
	"OFFSET", "ON", "OR", "ORDER", "PRIMARY", "REPLACE", "ROLLBACK", "SELECT",
	"SET", "SHOW", "SMALLINT", "SPLIT", "SUM", "TABLE", "TABLES", "TEXT", "THEN",
	"TIMESTAMP", "TRUE", "UPDATE", "UPPER", "USING", "VALUES", "VARBINARY",
	"VARCHAR", "WHEN", "WHERE",
}

// shellCommands are the backslash commands, for completion.
var shellCommands = []string{`\?`, `\d`, `\demo`, `\dt`, `\format`, `\h`, `\q`, `\timing`}

// tableContext are the words after which only a table name makes sense.
var tableContext = []string{"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "DESCRIBE", "DESC", `\D`, "EXISTS"}

// completer implements readline.AutoCompleter. Besides the line being
// edited it sees the earlier lines of the statement in progress (pending),
// so that columns of a table named on a previous line are offered.
type completer struct {
	src     WordSource
	pending func() string
	timeout time.Duration
}

// Do returns the candidates' remaining runes after the word before pos and
// that word's length, as readline.AutoCompleter wants.
func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	before := string(line[:pos])
	stmt := before
	if c.pending != nil {
		stmt = c.pending() + "\n" + before
	}
	word := lastWord(before)
	cands := c.candidates(stmt[:len(stmt)-len(word)], word, string(line))
	out := make([][]rune, 0, len(cands))
	for _, cand := range cands {
		out = append(out, []rune(cand[len(word):]))
	}
	return out, len([]rune(word))
}

// candidates returns the completions of word (full words that start with
// it, case-insensitively, spelled in word's case for keywords). prefix is
// the statement before word; all is the whole statement text, used to find
// the tables it mentions.
func (c *completer) candidates(prefix, word, all string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeoutOr())
	defer cancel()
	var tables []string
	if c.src != nil {
		tables, _ = c.src.TableNames(ctx) // completion is best effort
	}
	var cands []string
	add := func(s string) {
		if len(s) >= len(word) && strings.EqualFold(s[:len(word)], word) && !slices.Contains(cands, s) {
			cands = append(cands, s)
		}
	}
	if strings.HasPrefix(word, `\`) && strings.TrimSpace(prefix) == "" {
		for _, cmd := range shellCommands {
			add(cmd)
		}
		return cands
	}
	qualifier, part, dotted := strings.Cut(word, ".")
	if dotted {
		// t.col: the columns of table t (or of the statement's tables when
		// t is an alias).
		var cols []string
		if tbl := findFold(tables, qualifier); tbl != "" {
			cols = c.columns(ctx, []string{tbl})
		} else {
			cols = c.columns(ctx, mentioned(prefix+" "+all, tables))
		}
		for _, col := range cols {
			if len(col) >= len(part) && strings.EqualFold(col[:len(part)], part) {
				cands = append(cands, qualifier+"."+col)
			}
		}
		slices.Sort(cands)
		return slices.Compact(cands)
	}
	prev := strings.ToUpper(lastWord(strings.TrimRightFunc(prefix, unicode.IsSpace)))
	if strings.TrimSpace(prefix) != "" && slices.Contains(tableContext, prev) && !strings.HasSuffix(strings.TrimRightFunc(prefix, unicode.IsSpace), ",") {
		for _, t := range tables {
			add(t)
		}
		slices.Sort(cands)
		return cands
	}
	for _, t := range tables {
		add(t)
	}
	for _, col := range c.columns(ctx, mentioned(prefix+" "+all, tables)) {
		add(col)
	}
	lower := word != "" && strings.ToLower(word) == word
	for _, k := range keywords {
		if lower {
			k = strings.ToLower(k)
		}
		add(k)
	}
	slices.Sort(cands)
	return cands
}

func (c *completer) timeoutOr() time.Duration {
	if c.timeout > 0 {
		return c.timeout
	}
	return 2 * time.Second
}

// columns lists the columns of tables, each once.
func (c *completer) columns(ctx context.Context, tables []string) []string {
	var out []string
	if c.src == nil {
		return nil
	}
	for _, t := range tables {
		cols, _ := c.src.ColumnNames(ctx, t)
		for _, col := range cols {
			if !slices.Contains(out, col) {
				out = append(out, col)
			}
		}
	}
	return out
}

// mentioned returns the tables whose names appear as words in text.
func mentioned(text string, tables []string) []string {
	words := strings.FieldsFunc(text, func(r rune) bool { return !isWordRune(r) })
	var out []string
	for _, t := range tables {
		for _, w := range words {
			if strings.EqualFold(w, t) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func findFold(names []string, s string) string {
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return n
		}
	}
	return ""
}

// lastWord returns the identifier (letters, digits, _, $, a dot for
// table.column, a leading backslash for shell commands) that ends s.
func lastWord(s string) string {
	i := len(s)
	for i > 0 {
		r := rune(s[i-1])
		if !(isWordRune(r) || r == '.' || r >= 0x80) {
			break
		}
		i--
	}
	if i > 0 && s[i-1] == '\\' {
		i--
	}
	return s[i:]
}

func isWordRune(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}
