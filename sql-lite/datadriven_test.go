package sqllite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestDataDriven runs the statement files in testdata/. Each "sql" block
// runs its statements in one session (shared by the file) and prints every
// result: columns and rows, a message, rows affected, or the error.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		s := newSession(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "sql":
				res, err := s.Exec(testCtx(t), d.Input)
				var b strings.Builder
				for _, r := range res {
					b.WriteString(formatResult(r))
				}
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
				}
				return b.String()
			}
			t.Fatalf("unknown command %s", d.Cmd)
			return ""
		})
	})
}

func formatResult(r *Result) string {
	var b strings.Builder
	switch {
	case r.Columns != nil:
		b.WriteString(strings.Join(r.Columns, "|") + "\n")
		for _, row := range r.Rows {
			parts := make([]string, len(row))
			for i, d := range row {
				parts[i] = d.String()
			}
			b.WriteString(strings.Join(parts, "|") + "\n")
		}
		fmt.Fprintf(&b, "(%d rows)\n", len(r.Rows))
	case r.Message != "":
		b.WriteString(r.Message + "\n")
	default:
		fmt.Fprintf(&b, "rows affected: %d\n", r.RowsAffected)
	}
	return b.String()
}
