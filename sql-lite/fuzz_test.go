package sqllite

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shaledb/shale/internal/testutils"
)

// Random expressions over every type never panic (an internal error) and
// WHERE results agree between the pushed-down and the client-only path.
func TestRandomExpressions(t *testing.T) {
	r := rand.New(rand.NewPCG(testutils.Seed(t), 3))
	s := newSession(t)
	mustExec(t, s, `CREATE TABLE fz (id INT PRIMARY KEY, i INT, f DOUBLE, d DECIMAL(8,2), s VARCHAR(8), b BOOLEAN, ts TIMESTAMP, bl BLOB)`)
	var rows []string
	for k := 0; k < 40; k++ {
		pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s, %s, %s)", k,
			pick("NULL", "0", "1", "-7", "42", "2147483647"),
			pick("NULL", "0", "1.5", "-2.25", "1e10"),
			pick("NULL", "0", "3.14", "-99.5"),
			pick("NULL", "''", "'a'", "'abc'", "'b%'", "'Z'"),
			pick("NULL", "TRUE", "FALSE"),
			pick("NULL", "'2020-01-01'", "'1999-12-31 23:59:59'"),
			pick("NULL", "x'00'", "x'ff01'")))
	}
	mustExec(t, s, `INSERT INTO fz VALUES `+strings.Join(rows, ","))
	cols := []string{"id", "i", "f", "d", "s", "b", "ts", "bl"}
	lits := []string{"NULL", "0", "1", "-1", "2.5", "'a'", "'abc'", "''", "TRUE", "'2020-01-01'", "x'00'", "1e10"}
	var gen func(depth int) string
	gen = func(depth int) string {
		if depth <= 0 || r.IntN(3) == 0 {
			if r.IntN(2) == 0 {
				return cols[r.IntN(len(cols))]
			}
			return lits[r.IntN(len(lits))]
		}
		a, b := gen(depth-1), gen(depth-1)
		switch r.IntN(12) {
		case 0:
			return fmt.Sprintf("(%s %s %s)", a, []string{"=", "<>", "<", "<=", ">", ">=", "<=>"}[r.IntN(7)], b)
		case 1:
			return fmt.Sprintf("(%s %s %s)", a, []string{"AND", "OR", "XOR"}[r.IntN(3)], b)
		case 2:
			return "NOT " + a
		case 3:
			return fmt.Sprintf("(%s %s %s)", a, []string{"+", "-", "*", "/", "%", "DIV"}[r.IntN(6)], b)
		case 4:
			return fmt.Sprintf("(%s IS %sNULL)", a, []string{"", "NOT "}[r.IntN(2)])
		case 5:
			return fmt.Sprintf("(%s %sIN (%s, %s))", a, []string{"", "NOT "}[r.IntN(2)], b, gen(0))
		case 6:
			return fmt.Sprintf("(%s %sBETWEEN %s AND %s)", a, []string{"", "NOT "}[r.IntN(2)], b, gen(0))
		case 7:
			return fmt.Sprintf("(%s %sLIKE %s)", a, []string{"", "NOT "}[r.IntN(2)], []string{"'a%'", "'%b%'", "'_'", "b"}[r.IntN(4)])
		case 8:
			return fmt.Sprintf("CASE WHEN %s THEN %s ELSE %s END", a, b, gen(0))
		case 9:
			return fmt.Sprintf("%s(%s)", []string{"UPPER", "LENGTH", "ABS", "ROUND", "COALESCE", "HEX", "SIGN", "REVERSE"}[r.IntN(8)], a)
		case 10:
			return fmt.Sprintf("CAST(%s AS %s)", a, []string{"SIGNED", "CHAR", "DECIMAL(6,1)", "DOUBLE", "DATETIME"}[r.IntN(5)])
		default:
			return fmt.Sprintf("GREATEST(%s, %s)", a, b)
		}
	}
	// 100 filters of up to 3 levels use every operator and function of
	// the generator many times over; each run draws new ones (the seed is
	// logged).
	const filters = 100
	okCount := 0
	for n := 0; n < filters; n++ {
		e := gen(3)
		q := "SELECT id FROM fz WHERE " + e
		res, err := s.Exec(testCtx(t), q)
		if errors.Is(err, ErrInternal) {
			t.Fatalf("%s: %v", q, err)
		}
		if err != nil {
			continue
		}
		// The same query evaluated only on the client.
		pushdownEnabled = false
		res2, err := s.Exec(testCtx(t), q)
		pushdownEnabled = true
		if err != nil {
			// Type errors are raised per row, and the client sees more
			// rows without pushdown.
			if errors.Is(err, ErrInternal) || !errors.Is(err, ErrType) {
				t.Fatalf("%s: %v without pushdown", q, err)
			}
			continue
		}
		if a, b := render(res[0]), render(res2[0]); a != b {
			t.Fatalf("%s\nreturned %q with pushdown, %q without", q, a, b)
		}
		okCount++
		if _, err := s.Exec(testCtx(t), "SELECT "+e+", COUNT(*) FROM fz GROUP BY 1 ORDER BY 1"); errors.Is(err, ErrInternal) {
			t.Fatalf("%s: %v", e, err)
		}
	}
	t.Logf("%d of %d random filters ran without a type error", okCount, filters)
}
