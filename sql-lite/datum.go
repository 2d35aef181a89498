package sqllite

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is the type of a Datum's value.
type Kind uint8

// Value kinds. KindNull is the zero Kind.
const (
	KindNull    Kind = iota
	KindInt          // Value is int64
	KindFloat        // Value is float64
	KindDecimal      // Value is *big.Rat (exact); Scale digits are shown
	KindString       // Value is string
	KindBytes        // Value is []byte
	KindBool         // Value is bool
	KindTime         // Value is time.Time (UTC, microsecond precision)
)

var kindNames = [...]string{"NULL", "INT", "FLOAT", "DECIMAL", "STRING", "BYTES", "BOOL", "TIMESTAMP"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// TimeFormat is how TIMESTAMP values are shown and parsed (UTC).
const TimeFormat = "2006-01-02 15:04:05.999999"

// Datum is one SQL value. The zero Datum is NULL.
type Datum struct {
	Kind  Kind
	Value any
	// Scale is the number of fraction digits a DECIMAL shows.
	Scale int
}

// IsNull reports whether d is SQL NULL.
func (d Datum) IsNull() bool { return d.Kind == KindNull }

// String renders d for display; NULL renders as "NULL".
func (d Datum) String() string {
	switch d.Kind {
	case KindInt:
		return strconv.FormatInt(d.Value.(int64), 10)
	case KindFloat:
		return formatFloat(d.Value.(float64))
	case KindDecimal:
		return d.Value.(*big.Rat).FloatString(d.Scale)
	case KindString:
		return d.Value.(string)
	case KindBytes:
		b := d.Value.([]byte)
		if utf8.Valid(b) && printable(b) {
			return string(b)
		}
		return "0x" + hex.EncodeToString(b)
	case KindBool:
		if d.Value.(bool) {
			return "true"
		}
		return "false"
	case KindTime:
		return d.Value.(time.Time).UTC().Format(TimeFormat)
	}
	return "NULL"
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' {
			return false
		}
	}
	return true
}

// formatFloat prints the shortest form that reads back exactly, without
// an exponent for ordinary magnitudes (as MySQL shows DOUBLE).
func formatFloat(f float64) string {
	if a := math.Abs(f); a == 0 || (a >= 1e-6 && a < 1e15) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Constructors.
func intDatum(v int64) Datum     { return Datum{Kind: KindInt, Value: v} }
func floatDatum(v float64) Datum { return Datum{Kind: KindFloat, Value: v} }
func strDatum(v string) Datum    { return Datum{Kind: KindString, Value: v} }
func bytesDatum(v []byte) Datum  { return Datum{Kind: KindBytes, Value: v} }
func boolDatum(v bool) Datum     { return Datum{Kind: KindBool, Value: v} }
func timeDatum(v time.Time) Datum {
	return Datum{Kind: KindTime, Value: v.UTC().Truncate(time.Microsecond)}
}
func decDatum(r *big.Rat, scale int) Datum { return Datum{Kind: KindDecimal, Value: r, Scale: scale} }

var nullDatum = Datum{}

// truth is three-valued: -1 unknown (NULL), 0 false, 1 true.
type truth int8

const (
	tUnknown truth = -1
	tFalse   truth = 0
	tTrue    truth = 1
)

func truthDatum(t truth) Datum {
	if t == tUnknown {
		return nullDatum
	}
	return boolDatum(t == tTrue)
}

// truthOf converts a value to a truth value (MySQL: non-zero numbers are
// true; strings are parsed as numbers).
func truthOf(d Datum) (truth, error) {
	switch d.Kind {
	case KindNull:
		return tUnknown, nil
	case KindBool:
		if d.Value.(bool) {
			return tTrue, nil
		}
		return tFalse, nil
	case KindInt:
		return b2t(d.Value.(int64) != 0), nil
	case KindFloat:
		return b2t(d.Value.(float64) != 0), nil
	case KindDecimal:
		return b2t(d.Value.(*big.Rat).Sign() != 0), nil
	case KindString:
		f, err := strconv.ParseFloat(strings.TrimSpace(d.Value.(string)), 64)
		if err != nil {
			return tFalse, typeErr("cannot use string %q as a boolean", d.Value)
		}
		return b2t(f != 0), nil
	}
	return tFalse, typeErr("cannot use a %s value as a boolean", d.Kind)
}

func b2t(b bool) truth {
	if b {
		return tTrue
	}
	return tFalse
}

func isNumeric(k Kind) bool {
	return k == KindInt || k == KindFloat || k == KindDecimal || k == KindBool
}

func toRat(d Datum) (*big.Rat, bool) {
	switch d.Kind {
	case KindInt:
		return new(big.Rat).SetInt64(d.Value.(int64)), true
	case KindDecimal:
		return d.Value.(*big.Rat), true
	case KindBool:
		if d.Value.(bool) {
			return big.NewRat(1, 1), true
		}
		return new(big.Rat), true
	case KindFloat:
		f := d.Value.(float64)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(f), true
	}
	return nil, false
}

func toFloat(d Datum) (float64, bool) {
	switch d.Kind {
	case KindInt:
		return float64(d.Value.(int64)), true
	case KindFloat:
		return d.Value.(float64), true
	case KindDecimal:
		f, _ := d.Value.(*big.Rat).Float64()
		return f, true
	case KindBool:
		if d.Value.(bool) {
			return 1, true
		}
		return 0, true
	case KindString:
		f, err := strconv.ParseFloat(strings.TrimSpace(d.Value.(string)), 64)
		return f, err == nil
	}
	return 0, false
}

// compare compares two non-NULL values. Numbers compare numerically across
// kinds, strings and bytes bytewise (binary collation), times by instant; a
// string compared with a number or time is converted to it.
func compare(a, b Datum) (int, error) {
	if a.Kind == b.Kind {
		switch a.Kind {
		case KindInt:
			x, y := a.Value.(int64), b.Value.(int64)
			return cmp3(x < y, x > y), nil
		case KindFloat:
			x, y := a.Value.(float64), b.Value.(float64)
			return cmp3(x < y, x > y), nil
		case KindDecimal:
			return a.Value.(*big.Rat).Cmp(b.Value.(*big.Rat)), nil
		case KindString:
			return strings.Compare(a.Value.(string), b.Value.(string)), nil
		case KindBytes:
			return bytes.Compare(a.Value.([]byte), b.Value.([]byte)), nil
		case KindBool:
			x, y := a.Value.(bool), b.Value.(bool)
			return cmp3(!x && y, x && !y), nil
		case KindTime:
			return a.Value.(time.Time).Compare(b.Value.(time.Time)), nil
		}
	}
	if isNumeric(a.Kind) && isNumeric(b.Kind) {
		if a.Kind == KindFloat || b.Kind == KindFloat {
			x, _ := toFloat(a)
			y, _ := toFloat(b)
			return cmp3(x < y, x > y), nil
		}
		x, _ := toRat(a)
		y, _ := toRat(b)
		return x.Cmp(y), nil
	}
	if (a.Kind == KindString || a.Kind == KindBytes) && (b.Kind == KindString || b.Kind == KindBytes) {
		return bytes.Compare(rawBytes(a), rawBytes(b)), nil
	}
	// Mixed: convert the string side to the other side's type.
	if a.Kind == KindString {
		c, err := convertLiteral(a, b.Kind)
		if err != nil {
			return 0, err
		}
		return compare(c, b)
	}
	if b.Kind == KindString {
		c, err := convertLiteral(b, a.Kind)
		if err != nil {
			return 0, err
		}
		return compare(a, c)
	}
	return 0, typeErr("cannot compare %s with %s", a.Kind, b.Kind)
}

func cmp3(less, greater bool) int {
	if less {
		return -1
	}
	if greater {
		return 1
	}
	return 0
}

func rawBytes(d Datum) []byte {
	if d.Kind == KindString {
		return []byte(d.Value.(string))
	}
	return d.Value.([]byte)
}

// convertLiteral converts a string to kind k for a comparison.
func convertLiteral(s Datum, k Kind) (Datum, error) {
	str := strings.TrimSpace(s.Value.(string))
	switch k {
	case KindInt, KindFloat, KindDecimal, KindBool:
		if r, ok := new(big.Rat).SetString(str); ok && !strings.ContainsAny(str, "/") {
			return decDatum(r, 0), nil
		}
		return nullDatum, typeErr("cannot compare string %q with a number", str)
	case KindTime:
		t, err := parseTime(str)
		if err != nil {
			return nullDatum, err
		}
		return timeDatum(t), nil
	}
	return nullDatum, typeErr("cannot compare string %q with %s", str, k)
}

var timeLayouts = []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"}

func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
	}
	return time.Time{}, typeErr("%q is not a valid TIMESTAMP (use 'YYYY-MM-DD hh:mm:ss[.ffffff]', UTC)", s)
}

// keyOf renders a value as a map key for grouping, DISTINCT and hash joins:
// equal values (as compare sees them for same-typed columns) share a key.
func keyOf(d Datum) string {
	switch d.Kind {
	case KindNull:
		return "\x00"
	case KindInt, KindDecimal, KindBool:
		r, _ := toRat(d)
		return "n" + r.RatString()
	case KindFloat:
		if r, ok := toRat(d); ok {
			return "n" + r.RatString()
		}
		return "f" + strconv.FormatFloat(d.Value.(float64), 'g', -1, 64)
	case KindString:
		return "s" + d.Value.(string)
	case KindBytes:
		return "s" + string(d.Value.([]byte))
	case KindTime:
		return "t" + strconv.FormatInt(d.Value.(time.Time).UnixMicro(), 10)
	}
	return "?"
}
