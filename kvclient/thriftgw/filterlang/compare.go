package filterlang

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// compareOp is a filter's comparison: it holds when "cell OP value".
type compareOp int

const (
	opLess compareOp = iota
	opLessOrEqual
	opEqual
	opNotEqual
	opGreaterOrEqual
	opGreater
)

var ops = map[string]compareOp{
	"<": opLess, "<=": opLessOrEqual, "=": opEqual, "!=": opNotEqual, ">=": opGreaterOrEqual, ">": opGreater,
}

// holds reports whether op holds for r, the sign of (cell compared to
// value).
func (op compareOp) holds(r int) bool {
	switch op {
	case opLess:
		return r < 0
	case opLessOrEqual:
		return r <= 0
	case opEqual:
		return r == 0
	case opNotEqual:
		return r != 0
	case opGreaterOrEqual:
		return r >= 0
	default:
		return r > 0
	}
}

type cmpKind int

const (
	cmpBinary cmpKind = iota
	cmpBinaryPrefix
	cmpRegex
	cmpSubstring
)

func (k cmpKind) String() string {
	return [...]string{"binary", "binaryprefix", "regexstring", "substring"}[k]
}

// comparator is one of HBase's ByteArrayComparables.
type comparator struct {
	kind  cmpKind
	value []byte         // binary, binaryprefix; substring lower-cased
	re    *regexp.Regexp // regexstring
}

func parseComparator(s string) (comparator, error) {
	typ, v, ok := strings.Cut(s, ":")
	if !ok {
		return comparator{}, fmt.Errorf("comparator %q lacks a type: want binary:, binaryprefix:, regexstring: or substring:", s)
	}
	switch typ {
	case "binary", "binaryprefix":
		b := toBytesBinary(v)
		k := cmpBinary
		if typ == "binaryprefix" {
			k = cmpBinaryPrefix
		}
		return comparator{kind: k, value: b}, nil
	case "regexstring":
		re, err := regexp.Compile(v)
		if err != nil {
			return comparator{}, fmt.Errorf("regexstring %q: %v", v, err)
		}
		return comparator{kind: cmpRegex, re: re}, nil
	case "substring":
		return comparator{kind: cmpSubstring, value: []byte(strings.ToLower(v))}, nil
	default:
		return comparator{}, fmt.Errorf("unknown comparator type %q: want binary, binaryprefix, regexstring or substring", typ)
	}
}

// toBytesBinary reads \xNN escapes (two hex digits) as bytes, as HBase's
// Bytes.toBytesBinary; any other backslash is literal.
func toBytesBinary(s string) []byte {
	if !strings.Contains(s, `\x`) {
		return []byte(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, s[i])
	}
	return out
}

// match reports whether "b OP comparator" holds.
func (c comparator) match(op compareOp, b []byte) bool {
	var r int
	switch c.kind {
	case cmpBinary:
		r = bytes.Compare(b, c.value)
	case cmpBinaryPrefix:
		r = bytes.Compare(b[:min(len(b), len(c.value))], c.value)
	case cmpRegex:
		r = 1
		if c.re.Match(b) {
			r = 0
		}
	case cmpSubstring:
		r = 1
		if bytes.Contains(bytes.ToLower(b), c.value) {
			r = 0
		}
	}
	return op.holds(r)
}
