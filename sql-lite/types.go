package sqllite

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is a column's SQL type.
type Type struct {
	Kind Kind `json:"k"`
	// Name is the declared type name (BIGINT, INT, SMALLINT, DOUBLE, ...).
	Name string `json:"n"`
	// Len bounds VARCHAR/CHAR/VARBINARY lengths (characters/bytes; 0: none).
	Len int `json:"l,omitempty"`
	// Prec and Scale are DECIMAL's precision (<= 18) and scale.
	Prec  int `json:"p,omitempty"`
	Scale int `json:"s,omitempty"`
}

func (t Type) String() string {
	switch {
	case t.Kind == KindDecimal:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Prec, t.Scale)
	case t.Len > 0:
		return fmt.Sprintf("%s(%d)", t.Name, t.Len)
	}
	return t.Name
}

func (t Type) intRange() (int64, int64) {
	switch t.Name {
	case "SMALLINT":
		return math.MinInt16, math.MaxInt16
	case "INT":
		return math.MinInt32, math.MaxInt32
	case "TINYINT":
		return math.MinInt8, math.MaxInt8
	}
	return math.MinInt64, math.MaxInt64
}

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < 19; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// convert converts v to column type t, checking ranges and lengths. It
// never loses information silently except DECIMAL rounding to its scale
// (half away from zero, as MySQL).
func convert(v Datum, t Type, col string) (Datum, error) {
	if v.Kind == KindNull {
		return v, nil
	}
	bad := func() error {
		return typeErr("cannot store %s value %s in column %s of type %s", v.Kind, quoteVal(v), col, t)
	}
	switch t.Kind {
	case KindInt:
		var n int64
		switch v.Kind {
		case KindInt:
			n = v.Value.(int64)
		case KindBool:
			if v.Value.(bool) {
				n = 1
			}
		case KindFloat, KindDecimal, KindString:
			var r *big.Rat
			if v.Kind == KindString {
				var ok bool
				if r, ok = new(big.Rat).SetString(strings.TrimSpace(v.Value.(string))); !ok || strings.Contains(v.Value.(string), "/") {
					return nullDatum, bad()
				}
			} else if r, _ = toRat(v); r == nil {
				return nullDatum, bad()
			}
			if !r.IsInt() || !r.Num().IsInt64() {
				return nullDatum, typeErr("value %s is not a whole number in the range of column %s of type %s", quoteVal(v), col, t)
			}
			n = r.Num().Int64()
		default:
			return nullDatum, bad()
		}
		lo, hi := t.intRange()
		if n < lo || n > hi {
			return nullDatum, typeErr("value %d is out of range for column %s of type %s", n, col, t)
		}
		return intDatum(n), nil
	case KindFloat:
		f, ok := toFloat(v)
		if !ok || v.Kind == KindTime || v.Kind == KindBytes {
			return nullDatum, bad()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nullDatum, typeErr("value %s is not a finite number (column %s)", quoteVal(v), col)
		}
		if t.Name == "FLOAT" {
			f = float64(float32(f))
		}
		return floatDatum(f), nil
	case KindDecimal:
		var r *big.Rat
		if v.Kind == KindString {
			var ok bool
			s := strings.TrimSpace(v.Value.(string))
			if r, ok = new(big.Rat).SetString(s); !ok || strings.Contains(s, "/") {
				return nullDatum, bad()
			}
		} else if r, _ = toRat(v); r == nil || v.Kind == KindBool {
			return nullDatum, bad()
		}
		u, ok := scaleRat(r, t.Scale)
		if !ok || u >= pow10[t.Prec] || u <= -pow10[t.Prec] {
			return nullDatum, typeErr("value %s is out of range for column %s of type %s", quoteVal(v), col, t)
		}
		return decDatum(new(big.Rat).SetFrac64(u, pow10[t.Scale]), t.Scale), nil
	case KindString:
		var s string
		switch v.Kind {
		case KindString:
			s = v.Value.(string)
		case KindBytes:
			if !utf8.Valid(v.Value.([]byte)) {
				return nullDatum, typeErr("bytes %s are not valid UTF-8 text (column %s)", quoteVal(v), col)
			}
			s = string(v.Value.([]byte))
		default:
			s = v.String()
		}
		if t.Len > 0 && utf8.RuneCountInString(s) > t.Len {
			return nullDatum, typeErr("value %q is too long for column %s of type %s", s, col, t)
		}
		return strDatum(s), nil
	case KindBytes:
		var b []byte
		switch v.Kind {
		case KindBytes:
			b = v.Value.([]byte)
		case KindString:
			b = []byte(v.Value.(string))
		default:
			return nullDatum, bad()
		}
		if t.Len > 0 && len(b) > t.Len {
			return nullDatum, typeErr("value of %d bytes is too long for column %s of type %s", len(b), col, t)
		}
		return bytesDatum(b), nil
	case KindBool:
		switch v.Kind {
		case KindBool:
			return v, nil
		case KindInt:
			n := v.Value.(int64)
			if n == 0 || n == 1 {
				return boolDatum(n == 1), nil
			}
		case KindString:
			switch strings.ToLower(strings.TrimSpace(v.Value.(string))) {
			case "true", "1":
				return boolDatum(true), nil
			case "false", "0":
				return boolDatum(false), nil
			}
		}
		return nullDatum, bad()
	case KindTime:
		switch v.Kind {
		case KindTime:
			return v, nil
		case KindString:
			tm, err := parseTime(strings.TrimSpace(v.Value.(string)))
			if err != nil {
				return nullDatum, err
			}
			return timeDatum(tm), nil
		}
		return nullDatum, bad()
	}
	return nullDatum, bad()
}

// scaleRat returns r * 10^scale rounded half away from zero, and whether it
// fits an int64.
func scaleRat(r *big.Rat, scale int) (int64, bool) {
	x := new(big.Rat).Mul(r, new(big.Rat).SetInt64(pow10[scale]))
	num, den := new(big.Int).Set(x.Num()), x.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(m, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func quoteVal(v Datum) string {
	switch v.Kind {
	case KindString, KindTime:
		return "'" + v.String() + "'"
	}
	return v.String()
}

// ---- order-preserving encoding ----
//
// Every value is encoded so that bytewise order equals SQL order for the
// column's type. Key columns are concatenated (strings and bytes escaped
// and terminated so a shorter value sorts first); cell values use the same
// encoding without terminator.
//
//	INT kinds, DECIMAL (scaled), TIMESTAMP (µs since epoch): 8 bytes
//	  big-endian with the sign bit flipped.
//	DOUBLE/FLOAT: IEEE-754 bits; sign bit flipped for positives, all bits
//	  inverted for negatives (-0 is stored as 0).
//	BOOLEAN: one byte 0 or 1.
//	strings/bytes: raw bytes; in keys 0x00 → 0x00 0xFF and a 0x00 0x01
//	  terminator.

func encodeInt(b []byte, n int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(n)^(1<<63))
}

func decodeInt(b []byte) (int64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("short integer")
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8:], nil
}

func encodeFloat(b []byte, f float64) []byte {
	if f == 0 {
		f = 0
	}
	u := math.Float64bits(f)
	if u&(1<<63) != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(b, u)
}

func decodeFloat(b []byte) (float64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("short float")
	}
	u := binary.BigEndian.Uint64(b)
	if u&(1<<63) != 0 {
		u &^= 1 << 63
	} else {
		u = ^u
	}
	return math.Float64frombits(u), b[8:], nil
}

// encodeValue appends the encoding of v (already converted to t). inKey
// selects the self-delimiting form for strings and bytes.
func encodeValue(b []byte, v Datum, t Type, inKey bool) []byte {
	switch t.Kind {
	case KindInt:
		return encodeInt(b, v.Value.(int64))
	case KindDecimal:
		u, _ := scaleRat(v.Value.(*big.Rat), t.Scale)
		return encodeInt(b, u)
	case KindTime:
		return encodeInt(b, v.Value.(time.Time).UnixMicro())
	case KindFloat:
		return encodeFloat(b, v.Value.(float64))
	case KindBool:
		if v.Value.(bool) {
			return append(b, 1)
		}
		return append(b, 0)
	case KindString, KindBytes:
		raw := rawBytes(v)
		if !inKey {
			return append(b, raw...)
		}
		for _, c := range raw {
			if c == 0 {
				b = append(b, 0, 0xFF)
			} else {
				b = append(b, c)
			}
		}
		return append(b, 0, 1)
	}
	panic("sqllite: encode of unknown type " + t.Name)
}

// decodeValue decodes one value of type t from b and returns the rest.
func decodeValue(b []byte, t Type, inKey bool) (Datum, []byte, error) {
	switch t.Kind {
	case KindInt:
		n, rest, err := decodeInt(b)
		return intDatum(n), rest, err
	case KindDecimal:
		n, rest, err := decodeInt(b)
		return decDatum(new(big.Rat).SetFrac64(n, pow10[t.Scale]), t.Scale), rest, err
	case KindTime:
		n, rest, err := decodeInt(b)
		return timeDatum(time.UnixMicro(n)), rest, err
	case KindFloat:
		f, rest, err := decodeFloat(b)
		return floatDatum(f), rest, err
	case KindBool:
		if len(b) < 1 {
			return nullDatum, nil, fmt.Errorf("short bool")
		}
		return boolDatum(b[0] == 1), b[1:], nil
	case KindString, KindBytes:
		var raw []byte
		if !inKey {
			raw, b = append([]byte(nil), b...), nil
		} else {
			for i := 0; ; i++ {
				if i+1 >= len(b) {
					return nullDatum, nil, fmt.Errorf("unterminated string in key")
				}
				if b[i] == 0 {
					if b[i+1] == 1 {
						b = b[i+2:]
						break
					}
					raw = append(raw, 0)
					i++
					continue
				}
				raw = append(raw, b[i])
			}
		}
		if t.Kind == KindString {
			return strDatum(string(raw)), b, nil
		}
		if raw == nil {
			raw = []byte{}
		}
		return bytesDatum(raw), b, nil
	}
	return nullDatum, nil, fmt.Errorf("unknown type %s", t.Name)
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (nil: none).
func prefixEnd(p []byte) []byte {
	e := append([]byte(nil), p...)
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] != 0xFF {
			e[i]++
			return e[:i+1]
		}
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }
