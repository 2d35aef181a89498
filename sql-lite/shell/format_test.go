package shell

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sqllite "github.com/shaledb/shale/sql-lite"
)

func intD(v int64) sqllite.Datum     { return sqllite.Datum{Kind: sqllite.KindInt, Value: v} }
func strD(v string) sqllite.Datum    { return sqllite.Datum{Kind: sqllite.KindString, Value: v} }
func floatD(v float64) sqllite.Datum { return sqllite.Datum{Kind: sqllite.KindFloat, Value: v} }
func boolD(v bool) sqllite.Datum     { return sqllite.Datum{Kind: sqllite.KindBool, Value: v} }

var null sqllite.Datum

// sample has the values the formats treat specially: NULL, quotes, the
// delimiters, line breaks, numbers, a decimal, a boolean.
var sample = &sqllite.Result{
	Columns: []string{"id", "name", "note", "score", "price", "ok"},
	Rows: [][]sqllite.Datum{
		{intD(1), strD("Ada"), strD(`say "hi", then go`), floatD(1.5), {Kind: sqllite.KindDecimal, Value: big.NewRat(9, 2), Scale: 2}, boolD(true)},
		{intD(20), strD("Bob\tTab"), null, floatD(-2), null, boolD(false)},
		{intD(300), null, strD("two\nlines"), null, {Kind: sqllite.KindDecimal, Value: big.NewRat(10, 1), Scale: 2}, null},
	},
}

func format(t *testing.T, f Format, r *sqllite.Result, elapsed time.Duration) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, writeResult(&b, f, r, elapsed))
	return b.String()
}

func TestFormatTable(t *testing.T) {
	require.Equal(t, `+-----+----------+-------------------+-------+-------+-------+
| id  | name     | note              | score | price | ok    |
+-----+----------+-------------------+-------+-------+-------+
|   1 | Ada      | say "hi", then go |   1.5 |  4.50 | true  |
|  20 | Bob\tTab | NULL              |    -2 |  NULL | false |
| 300 | NULL     | two\nlines        |  NULL | 10.00 | NULL  |
+-----+----------+-------------------+-------+-------+-------+
3 rows in set
`, format(t, FormatTable, sample, -1))
	one := &sqllite.Result{Columns: []string{"n"}, Rows: [][]sqllite.Datum{{intD(7)}}}
	require.Equal(t, "+---+\n| n |\n+---+\n| 7 |\n+---+\n1 row in set (0.250 sec)\n", format(t, FormatTable, one, 250*time.Millisecond))
	require.Equal(t, "Empty set\n", format(t, FormatTable, &sqllite.Result{Columns: []string{"n"}}, -1))
	require.Equal(t, "Query OK, 1 row affected\n", format(t, FormatTable, &sqllite.Result{RowsAffected: 1}, -1))
	require.Equal(t, "Query OK, 0 rows affected (0.001 sec)\n", format(t, FormatTable, &sqllite.Result{}, time.Millisecond))
	require.Equal(t, "Table created\n", format(t, FormatTable, &sqllite.Result{Message: "Table created"}, -1))
}

func TestFormatCSV(t *testing.T) {
	require.Equal(t, "id,name,note,score,price,ok\n"+
		`1,Ada,"say ""hi"", then go",1.5,4.50,true`+"\n"+
		"20,Bob\tTab,,-2,,false\n"+
		"300,,\"two\nlines\",,10.00,\n", format(t, FormatCSV, sample, time.Second))
	// Writes print nothing: the output is data only.
	require.Equal(t, "", format(t, FormatCSV, &sqllite.Result{RowsAffected: 3}, -1))
	require.Equal(t, "n\n", format(t, FormatCSV, &sqllite.Result{Columns: []string{"n"}}, -1))
}

func TestFormatTSV(t *testing.T) {
	require.Equal(t, "id\tname\tnote\tscore\tprice\tok\n"+
		"1\tAda\t\"say \"\"hi\"\", then go\"\t1.5\t4.50\ttrue\n"+
		"20\t\"Bob\tTab\"\t\t-2\t\tfalse\n"+
		"300\t\t\"two\nlines\"\t\t10.00\t\n", format(t, FormatTSV, sample, -1))
}

func TestFormatJSON(t *testing.T) {
	require.Equal(t, `{"id":1,"name":"Ada","note":"say \"hi\", then go","score":1.5,"price":4.50,"ok":true}
{"id":20,"name":"Bob\tTab","note":null,"score":-2,"price":null,"ok":false}
{"id":300,"name":null,"note":"two\nlines","score":null,"price":10.00,"ok":null}
`, format(t, FormatJSON, sample, -1))
	require.Equal(t, "{\"rows_affected\":2}\n", format(t, FormatJSON, &sqllite.Result{RowsAffected: 2}, -1))
	require.Equal(t, "{\"message\":\"Table \\\"t\\\" created\"}\n", format(t, FormatJSON, &sqllite.Result{Message: `Table "t" created`}, -1))
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"table", "CSV", "tsv", "json"} {
		_, err := ParseFormat(s)
		require.NoError(t, err)
	}
	_, err := ParseFormat("xml")
	require.EqualError(t, err, `unknown format "xml": want table, csv, tsv or json`)
}

// A column of NULLs, or of numbers and text, is left-aligned; one of
// numbers (and NULLs) is right-aligned.
func TestFormatTableAlignment(t *testing.T) {
	r := &sqllite.Result{
		Columns: []string{"nums", "nulls", "mixed"},
		Rows: [][]sqllite.Datum{
			{intD(5), null, strD("x")},
			{null, null, intD(12345)},
		},
	}
	require.Equal(t, `+------+-------+-------+
| nums | nulls | mixed |
+------+-------+-------+
|    5 | NULL  | x     |
| NULL | NULL  | 12345 |
+------+-------+-------+
2 rows in set
`, format(t, FormatTable, r, -1))
}
