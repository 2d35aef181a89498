package shell

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// Format is how results are printed.
type Format string

// The output formats of --format.
const (
	FormatTable Format = "table" // aligned, bordered columns, row counts
	FormatCSV   Format = "csv"   // RFC 4180, header row, NULL as an empty field
	FormatTSV   Format = "tsv"   // as csv with tabs
	FormatJSON  Format = "json"  // one JSON object per row and line
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatTable, FormatCSV, FormatTSV, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want table, csv, tsv or json", s)
}

// writeResult prints one statement's result. elapsed < 0 leaves the timing
// out (scripts print none, so that their output is reproducible).
func writeResult(w io.Writer, f Format, r *sqllite.Result, elapsed time.Duration) error {
	switch f {
	case FormatCSV, FormatTSV:
		if r.Columns == nil {
			return nil // writes and DDL print nothing in data formats
		}
		return writeDelimited(w, f, r)
	case FormatJSON:
		return writeJSON(w, r)
	default:
		return writeTable(w, r, elapsed)
	}
}

func timing(elapsed time.Duration) string {
	if elapsed < 0 {
		return ""
	}
	return fmt.Sprintf(" (%.3f sec)", elapsed.Seconds())
}

// writeTable prints a query's rows as a bordered table followed by the row
// count, or a write's "Query OK" line, or a DDL statement's message.
func writeTable(w io.Writer, r *sqllite.Result, elapsed time.Duration) error {
	if r.Columns == nil {
		var msg string
		switch {
		case r.Message != "":
			msg = r.Message + timing(elapsed)
		default:
			msg = fmt.Sprintf("Query OK, %s affected%s", plural(r.RowsAffected, "row"), timing(elapsed))
		}
		_, err := fmt.Fprintln(w, msg)
		return err
	}
	if len(r.Rows) == 0 {
		_, err := fmt.Fprintf(w, "Empty set%s\n", timing(elapsed))
		return err
	}
	widths := make([]int, len(r.Columns))
	for i, c := range r.Columns {
		widths[i] = utf8.RuneCountInString(c)
	}
	cells := make([][]string, len(r.Rows))
	// A column is right-aligned when it holds numbers (and NULLs) only.
	right := make([]bool, len(r.Columns))
	numeric := make([]int, len(r.Columns)) // -1: a non-number seen

	for ri, row := range r.Rows {
		cells[ri] = make([]string, len(r.Columns))
		for ci := range r.Columns {
			var d sqllite.Datum
			if ci < len(row) {
				d = row[ci]
			}
			s := displayText(d)
			cells[ri][ci] = s
			widths[ci] = max(widths[ci], utf8.RuneCountInString(s))
			switch {
			case d.IsNull() || numeric[ci] < 0:
			case isNumber(d.Value):
				numeric[ci]++
			default:
				numeric[ci] = -1
			}
		}
	}
	for i, n := range numeric {
		right[i] = n > 0
	}
	var b strings.Builder
	border := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	line := func(vals []string, alignRight []bool) {
		b.WriteByte('|')
		for i, v := range vals {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(v))
			if alignRight != nil && alignRight[i] {
				b.WriteString(" " + pad + v + " |")
			} else {
				b.WriteString(" " + v + pad + " |")
			}
		}
		b.WriteByte('\n')
	}
	border()
	line(r.Columns, nil)
	border()
	for _, row := range cells {
		line(row, right)
	}
	border()
	fmt.Fprintf(&b, "%s in set%s\n", plural(int64(len(r.Rows)), "row"), timing(elapsed))
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.FormatInt(n, 10) + " " + word + "s"
}

// displayText is a value as the table shows it: NULL as NULL, and line
// breaks and tabs escaped so that a row stays on one line.
func displayText(d sqllite.Datum) string {
	if d.IsNull() {
		return "NULL"
	}
	return strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(d.String())
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, *big.Rat:
		return true
	}
	return false
}

// writeDelimited prints a header row and the rows through encoding/csv
// (RFC 4180 quoting); NULL is an empty field.
func writeDelimited(w io.Writer, f Format, r *sqllite.Result) error {
	cw := csv.NewWriter(w)
	if f == FormatTSV {
		cw.Comma = '\t'
	}
	if err := cw.Write(r.Columns); err != nil {
		return err
	}
	rec := make([]string, len(r.Columns))
	for _, row := range r.Rows {
		for i := range rec {
			rec[i] = ""
			if i < len(row) && !row[i].IsNull() {
				rec[i] = row[i].String()
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON prints one object per row and line (JSON Lines), keys in
// column order; numbers and booleans stay JSON numbers and booleans, NULL
// is null, everything else is its display string. Writes print
// {"rows_affected":N}, DDL {"message":"..."}.
func writeJSON(w io.Writer, r *sqllite.Result) error {
	var b strings.Builder
	if r.Columns == nil {
		if r.Message != "" {
			b.WriteString(`{"message":` + jsonString(r.Message) + "}\n")
		} else {
			fmt.Fprintf(&b, "{\"rows_affected\":%d}\n", r.RowsAffected)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	for _, row := range r.Rows {
		b.WriteByte('{')
		for i, c := range r.Columns {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(c))
			b.WriteByte(':')
			var d sqllite.Datum
			if i < len(row) {
				d = row[i]
			}
			b.WriteString(jsonValue(d))
		}
		b.WriteString("}\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func jsonString(s string) string {
	out, _ := json.Marshal(s) // a string always marshals
	return string(out)
}

func jsonValue(d sqllite.Datum) string {
	if d.IsNull() {
		return "null"
	}
	switch v := d.Value.(type) {
	case bool:
		return strconv.FormatBool(v)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v)
	case *big.Rat:
		return d.String() // exact, as shown (JSON numbers are decimal text)
	case float32, float64:
		f := fmt.Sprint(v)
		if x, err := strconv.ParseFloat(f, 64); err == nil && !math.IsInf(x, 0) && !math.IsNaN(x) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	return jsonString(d.String())
}
