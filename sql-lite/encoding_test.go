package sqllite

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
)

// randValue returns a random value of type t (with edge cases).
func randValue(r *rand.Rand, t Type) Datum {
	switch t.Kind {
	case KindInt:
		edges := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 255, 256, -256}
		if r.IntN(4) == 0 {
			return intDatum(edges[r.IntN(len(edges))])
		}
		return intDatum(int64(r.Uint64()) >> r.IntN(64))
	case KindFloat:
		edges := []float64{0, math.Copysign(0, -1), 1, -1, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 0.1, -0.1}
		if r.IntN(4) == 0 {
			return floatDatum(edges[r.IntN(len(edges))])
		}
		return floatDatum((r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(40)-20)))
	case KindDecimal:
		u := r.Int64N(pow10[t.Prec]*2-1) - (pow10[t.Prec] - 1)
		return decDatum(new(big.Rat).SetFrac64(u, pow10[t.Scale]), t.Scale)
	case KindString:
		alphabet := []rune{0, 1, 'a', 'b', 'é', 0xFF, '\u4e16'}
		n := r.IntN(5)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alphabet[r.IntN(len(alphabet))]
		}
		return strDatum(string(rs))
	case KindBytes:
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = []byte{0, 1, 0xFF, 0xFE, 'a'}[r.IntN(5)]
		}
		return bytesDatum(b)
	case KindBool:
		return boolDatum(r.IntN(2) == 1)
	case KindTime:
		return timeDatum(time.UnixMicro(r.Int64N(1<<50) - 1<<49))
	}
	panic("type")
}

// Bytewise order of encodings equals SQL order, for keys (also as a prefix
// of a longer key) and for cell values, and decoding inverts encoding.
func TestEncodingPreservesOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(testutils.Seed(t), 7))
	types := []Type{
		{Kind: KindInt, Name: "BIGINT"}, {Kind: KindFloat, Name: "DOUBLE"},
		{Kind: KindDecimal, Name: "DECIMAL", Prec: 18, Scale: 4}, {Kind: KindDecimal, Name: "DECIMAL", Prec: 5, Scale: 0},
		{Kind: KindString, Name: "TEXT"}, {Kind: KindBytes, Name: "BLOB"},
		{Kind: KindBool, Name: "BOOLEAN"}, {Kind: KindTime, Name: "TIMESTAMP"},
	}
	sign := func(c int) int { return cmp3(c < 0, c > 0) }
	for _, typ := range types {
		for i := 0; i < 1000; i++ {
			a, b := randValue(r, typ), randValue(r, typ)
			want, err := compare(a, b)
			if err != nil {
				t.Fatal(err)
			}
			for _, inKey := range []bool{true, false} {
				ea, eb := encodeValue(nil, a, typ, inKey), encodeValue(nil, b, typ, inKey)
				if got := bytes.Compare(ea, eb); sign(got) != sign(want) {
					t.Fatalf("%s inKey=%v: %v vs %v: bytes %d, SQL %d", typ, inKey, a, b, got, want)
				}
				d, rest, err := decodeValue(ea, typ, inKey)
				if err != nil || len(rest) != 0 {
					t.Fatalf("%s decode %v: %v rest %d", typ, a, err, len(rest))
				}
				if c, _ := compare(d, a); c != 0 {
					t.Fatalf("%s round trip %v -> %v", typ, a, d)
				}
			}
			// Composite keys: (a, x) vs (b, y) order by a then x.
			x, y := randValue(r, types[4]), randValue(r, types[4])
			ka := encodeValue(encodeValue(nil, a, typ, true), x, types[4], true)
			kb := encodeValue(encodeValue(nil, b, typ, true), y, types[4], true)
			w := want
			if w == 0 {
				w, _ = compare(x, y)
			}
			if got := bytes.Compare(ka, kb); sign(got) != sign(w) {
				t.Fatalf("%s composite (%v,%q) vs (%v,%q): bytes %d, SQL %d", typ, a, x, b, y, got, w)
			}
		}
	}
}

func TestConvertChecks(t *testing.T) {
	intT := Type{Kind: KindInt, Name: "INT"}
	cases := []struct {
		v  Datum
		t  Type
		ok bool
		s  string
	}{
		{intDatum(5), intT, true, "5"},
		{intDatum(1 << 40), intT, false, ""},
		{floatDatum(2.0), intT, true, "2"},
		{floatDatum(2.5), intT, false, ""},
		{strDatum(" 42 "), intT, true, "42"},
		{strDatum("4x"), intT, false, ""},
		{strDatum("1.005"), Type{Kind: KindDecimal, Name: "DECIMAL", Prec: 5, Scale: 2}, true, "1.01"},
		{strDatum("-1.005"), Type{Kind: KindDecimal, Name: "DECIMAL", Prec: 5, Scale: 2}, true, "-1.01"},
		{intDatum(1000), Type{Kind: KindDecimal, Name: "DECIMAL", Prec: 5, Scale: 2}, false, ""},
		{strDatum("héllo"), Type{Kind: KindString, Name: "VARCHAR", Len: 5}, true, "héllo"},
		{strDatum("héllo!"), Type{Kind: KindString, Name: "VARCHAR", Len: 5}, false, ""},
		{strDatum("2024-02-29 10:00:00.123456"), Type{Kind: KindTime, Name: "TIMESTAMP"}, true, "2024-02-29 10:00:00.123456"},
		{strDatum("2023-02-29"), Type{Kind: KindTime, Name: "TIMESTAMP"}, false, ""},
		{intDatum(1), Type{Kind: KindBool, Name: "BOOLEAN"}, true, "true"},
		{floatDatum(math.Inf(1)), Type{Kind: KindFloat, Name: "DOUBLE"}, false, ""},
		{bytesDatum([]byte{0xff}), Type{Kind: KindString, Name: "TEXT"}, false, ""},
	}
	for _, c := range cases {
		got, err := convert(c.v, c.t, "c")
		if (err == nil) != c.ok {
			t.Fatalf("convert %v to %s: err %v, want ok=%v", c.v, c.t, err, c.ok)
		}
		if err != nil {
			var e *Error
			if !asError(err, &e) || e.Code != CodeType {
				t.Fatalf("convert %v to %s: %v is not a type error", c.v, c.t, err)
			}
			continue
		}
		if got.String() != c.s {
			t.Fatalf("convert %v to %s = %s, want %s", c.v, c.t, got, c.s)
		}
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

func TestLike(t *testing.T) {
	cases := []struct {
		s, p string
		want bool
	}{
		{"abc", "a%", true}, {"abc", "%c", true}, {"abc", "_b_", true}, {"abc", "a_", false},
		{"a%c", `a\%c`, true}, {"abc", `a\%c`, false}, {"", "%", true}, {"é", "_", true},
		{"aXbXc", "a%b%c", true}, {"ab", "a%b%c", false},
	}
	for _, c := range cases {
		if got := likeMatch(c.s, c.p, '\\'); got != c.want {
			t.Fatalf("%q LIKE %q = %v", c.s, c.p, got)
		}
	}
}

// likeRef is the obvious recursive LIKE matcher (exponential at worst): the
// reference for TestLikeRandom.
func likeRef(s, p []rune, esc rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch {
	case p[0] == esc && len(p) > 1:
		return len(s) > 0 && s[0] == p[1] && likeRef(s[1:], p[2:], esc)
	case p[0] == '%':
		for i := 0; i <= len(s); i++ {
			if likeRef(s[i:], p[1:], esc) {
				return true
			}
		}
		return false
	case p[0] == '_':
		return len(s) > 0 && likeRef(s[1:], p[1:], esc)
	}
	return len(s) > 0 && s[0] == p[0] && likeRef(s[1:], p[1:], esc)
}

// Random short patterns agree with the reference matcher.
func TestLikeRandom(t *testing.T) {
	seed := testutils.Seed(t)
	r := rand.New(rand.NewPCG(seed, 0))
	gen := func(alpha []rune, n int) string {
		out := make([]rune, r.IntN(n+1))
		for i := range out {
			out[i] = alpha[r.IntN(len(alpha))]
		}
		return string(out)
	}
	for range 20000 {
		s := gen([]rune("abé%"), 10)
		p := gen([]rune(`abé%_\`), 8)
		if got, want := likeMatch(s, p, '\\'), likeRef([]rune(s), []rune(p), '\\'); got != want {
			t.Fatalf("seed %d: %q LIKE %q = %v, want %v", seed, s, p, got, want)
		}
	}
}

// A pattern with many %s against a long string that almost matches is
// polynomial: a backtracking matcher would take longer than the universe.
func TestLikePathological(t *testing.T) {
	s := strings.Repeat("a", 5000)
	p := strings.Repeat("%a", 12) + "%b"
	done := make(chan bool, 1)
	go func() { done <- likeMatch(s, p, '\\') }()
	select {
	case got := <-done:
		if got {
			t.Fatalf("a...a LIKE %q = true", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("a...a LIKE %q did not finish in 20s", p)
	}
	if !likeMatch(s+"b", p, '\\') {
		t.Fatalf("a...ab LIKE %q = false", p)
	}
}
