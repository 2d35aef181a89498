package shell

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// wordList is a fixed WordSource for completion tests.
type wordList map[string][]string

func (w wordList) TableNames(context.Context) ([]string, error) {
	var out []string
	for t := range w {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

func (w wordList) ColumnNames(_ context.Context, table string) ([]string, error) {
	return w[table], nil
}

func complete(c *completer, line string) []string {
	return completeAt(c, line, len([]rune(line)))
}

func completeAt(c *completer, line string, pos int) []string {
	suffixes, n := c.Do([]rune(line), pos)
	word := string([]rune(line)[pos-n : pos])
	var out []string
	for _, s := range suffixes {
		out = append(out, word+string(s))
	}
	return out
}

func TestCompleter(t *testing.T) {
	src := wordList{"customers": {"id", "name", "city"}, "orders": {"customer_id", "id", "item"}, "cities": {"zip"}}
	c := &completer{src: src}
	// Keywords keep the case the user types.
	require.Equal(t, []string{"SELECT", "SET"}, complete(c, "SE"))
	require.Equal(t, []string{"select", "set"}, complete(c, "se"))
	// After FROM/JOIN/INTO/UPDATE/\d only tables.
	require.Equal(t, []string{"cities", "customers"}, complete(c, "SELECT * FROM c"))
	require.Equal(t, []string{"orders"}, complete(c, "select * from customers join o"))
	require.Equal(t, []string{"customers"}, complete(c, `\d cu`))
	// Columns of the tables the statement names, tables and keywords.
	require.Equal(t, []string{"customer_id", "customers"}, complete(c, "SELECT name FROM customers JOIN orders WHERE cu"))
	require.Equal(t, []string{"cities", "city"}, complete(c, "SELECT name FROM customers JOIN orders WHERE ci"))
	require.Equal(t, []string{"id", "if", "ignore", "in", "inner", "insert", "int", "into", "is", "item"}, complete(c, "SELECT name FROM customers JOIN orders WHERE i"))
	// t.col.
	require.Equal(t, []string{"orders.customer_id"}, complete(c, "SELECT orders.cu"))
	// An alias: the columns of the tables the line names, after the cursor too.
	require.Equal(t, []string{"o.customer_id"}, completeAt(c, "SELECT o.cu FROM orders o", len("SELECT o.cu")))
	// Nothing matches.
	require.Empty(t, complete(c, "SELECT qqq"))
}

func TestCompleterSeesEarlierLines(t *testing.T) {
	src := wordList{"customers": {"id", "name", "city"}}
	c := &completer{src: src, pending: func() string { return "SELECT *\nFROM customers\n" }}
	require.Equal(t, []string{"name"}, complete(c, "WHERE na"))
}

func TestCompleterShellCommands(t *testing.T) {
	c := &completer{src: wordList{}}
	require.Equal(t, []string{`\format`}, complete(c, `\fo`))
	require.Equal(t, []string{`\d`, `\demo`, `\dt`}, complete(c, `\d`))
}
