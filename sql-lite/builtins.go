package sqllite

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
)

// builtin is one SQL function: how many arguments it takes and how it
// evaluates. A strict function returns NULL when any argument is NULL and
// sees evaluated arguments; a lazy one gets the compiled arguments and
// evaluates only what it needs (COALESCE, IF). name is the name it was
// called by, for functions that share an implementation (TRIM, LTRIM).
type builtin struct {
	minArgs, maxArgs int
	strict           func(name string, vs []Datum) (Datum, error)
	lazy             func(name string, args []expr) funcExpr
}

func strictFn(lo, hi int, f func(name string, vs []Datum) (Datum, error)) builtin {
	return builtin{minArgs: lo, maxArgs: hi, strict: f}
}

func lazyFn(lo, hi int, f func(name string, args []expr) funcExpr) builtin {
	return builtin{minArgs: lo, maxArgs: hi, lazy: f}
}

// builtins is every function sql-lite knows, by lower-case name. Filled in
// init: the lazy entries refer to eval helpers that refer back to the
// compiler.
var builtins map[string]builtin

func init() {
	builtins = map[string]builtin{}
	add := func(b builtin, names ...string) {
		for _, n := range names {
			builtins[n] = b
		}
	}
	add(strictFn(1, 1, fnLower), "lower", "lcase")
	add(strictFn(1, 1, fnUpper), "upper", "ucase")
	add(strictFn(1, 1, fnLength), "length", "octet_length")
	add(strictFn(1, 1, fnCharLength), "char_length", "character_length")
	add(strictFn(1, 1000, fnConcat), "concat")
	add(strictFn(1, 1, fnTrim), "trim", "ltrim", "rtrim")
	add(strictFn(2, 3, fnSubstring), "substring", "substr")
	add(strictFn(1, 1, fnAbs), "abs")
	add(strictFn(1, 2, rounding), "round", "floor", "ceil", "ceiling")
	add(strictFn(2, 2, fnMod), "mod")
	add(lazyFn(0, 1000, fnCoalesce), "coalesce")
	add(lazyFn(2, 2, fnCoalesce), "ifnull", "nvl")
	add(lazyFn(2, 2, fnNullIf), "nullif")
	add(lazyFn(3, 3, fnIf), "if")
	add(strictFn(1, 1000, fnGreatestLeast), "greatest", "least")
	add(strictFn(3, 3, fnReplace), "replace")
	add(strictFn(1, 1, fnReverse), "reverse")
	add(strictFn(2, 2, fnLeftRight), "left", "right")
	add(strictFn(2, 2, fnRepeat), "repeat")
	add(strictFn(2, 2, fnLocate), "locate", "instr", "position")
	add(strictFn(1, 1, fnHex), "hex")
	add(strictFn(2, 2, fnMath), "power", "pow")
	add(strictFn(1, 1, fnMath), "sqrt", "exp", "ln", "log10", "log2")
	add(strictFn(1, 2, fnMath), "log")
	add(strictFn(1, 1, fnSign), "sign")
	add(lazyFn(0, 1, fnNow), "now", "current_timestamp", "utc_timestamp")
}

// call compiles a function call through the builtins table.
func (c *compiler) call(x *ast.FuncCallExpr) (expr, error) {
	name := x.FnName.L
	b, ok := builtins[name]
	if !ok {
		return nil, notSupported("function %s", strings.ToUpper(name))
	}
	args := make([]expr, len(x.Args))
	for i, a := range x.Args {
		var err error
		if args[i], err = c.compile(a); err != nil {
			return nil, err
		}
	}
	if len(args) < b.minArgs || len(args) > b.maxArgs {
		return nil, typeErr("function %s takes %d to %d arguments, got %d", strings.ToUpper(name), b.minArgs, b.maxArgs, len(args))
	}
	if b.lazy != nil {
		return b.lazy(name, args), nil
	}
	return funcExpr(func(row []Datum) (Datum, error) {
		vs, err := evalAll(args, row)
		if err != nil {
			return nullDatum, err
		}
		for _, v := range vs {
			if v.IsNull() {
				return nullDatum, nil
			}
		}
		return b.strict(name, vs)
	}), nil
}

func evalAll(args []expr, row []Datum) ([]Datum, error) {
	vs := make([]Datum, len(args))
	for i, a := range args {
		var err error
		if vs[i], err = a.eval(row); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

func fnLower(_ string, vs []Datum) (Datum, error) {
	return strDatum(strings.ToLower(vs[0].String())), nil
}

func fnUpper(_ string, vs []Datum) (Datum, error) {
	return strDatum(strings.ToUpper(vs[0].String())), nil
}

func fnLength(_ string, vs []Datum) (Datum, error) {
	if vs[0].Kind == KindBytes {
		return intDatum(int64(len(vs[0].Value.([]byte)))), nil
	}
	return intDatum(int64(len(vs[0].String()))), nil
}

func fnCharLength(_ string, vs []Datum) (Datum, error) {
	return intDatum(int64(utf8.RuneCountInString(vs[0].String()))), nil
}

func fnConcat(_ string, vs []Datum) (Datum, error) {
	var sb strings.Builder
	for _, v := range vs {
		sb.WriteString(v.String())
	}
	return strDatum(sb.String()), nil
}

func fnTrim(name string, vs []Datum) (Datum, error) {
	s := vs[0].String()
	switch name {
	case "ltrim":
		s = strings.TrimLeft(s, " ")
	case "rtrim":
		s = strings.TrimRight(s, " ")
	default:
		s = strings.Trim(s, " ")
	}
	return strDatum(s), nil
}

var bigintType = Type{Kind: KindInt, Name: "BIGINT"}

func fnSubstring(_ string, vs []Datum) (Datum, error) {
	r := []rune(vs[0].String())
	pos, err := convert(vs[1], bigintType, "position")
	if err != nil {
		return nullDatum, err
	}
	p := pos.Value.(int64)
	n := int64(len(r))
	if len(vs) == 3 {
		l, err := convert(vs[2], bigintType, "length")
		if err != nil {
			return nullDatum, err
		}
		n = l.Value.(int64)
	}
	start := p - 1
	if p < 0 {
		start = int64(len(r)) + p
	}
	if p == 0 || start < 0 || start >= int64(len(r)) || n <= 0 {
		return strDatum(""), nil
	}
	end := min(start+n, int64(len(r)))
	return strDatum(string(r[start:end])), nil
}

func fnAbs(_ string, vs []Datum) (Datum, error) {
	v, err := numArg(vs[0])
	if err != nil {
		return nullDatum, err
	}
	if c, _ := compare(v, intDatum(0)); c < 0 {
		return arith(opcode.Minus, intDatum(0), v)
	}
	return v, nil
}

func fnMod(_ string, vs []Datum) (Datum, error) { return arith(opcode.Mod, vs[0], vs[1]) }

// fnCoalesce returns its first non-NULL argument, evaluating no further.
func fnCoalesce(_ string, args []expr) funcExpr {
	return func(row []Datum) (Datum, error) {
		for _, a := range args {
			v, err := a.eval(row)
			if err != nil || !v.IsNull() {
				return v, err
			}
		}
		return nullDatum, nil
	}
}

func fnNullIf(_ string, args []expr) funcExpr {
	return func(row []Datum) (Datum, error) {
		vs, err := evalAll(args, row)
		if err != nil {
			return nullDatum, err
		}
		if !vs[0].IsNull() && !vs[1].IsNull() {
			if c, err := compare(vs[0], vs[1]); err != nil {
				return nullDatum, err
			} else if c == 0 {
				return nullDatum, nil
			}
		}
		return vs[0], nil
	}
}

// fnIf evaluates only the branch it returns.
func fnIf(_ string, args []expr) funcExpr {
	return func(row []Datum) (Datum, error) {
		cv, err := args[0].eval(row)
		if err != nil {
			return nullDatum, err
		}
		t, err := truthOf(cv)
		if err != nil {
			return nullDatum, err
		}
		if t == tTrue {
			return args[1].eval(row)
		}
		return args[2].eval(row)
	}
}

func fnGreatestLeast(name string, vs []Datum) (Datum, error) {
	best := vs[0]
	for _, v := range vs[1:] {
		c, err := compare(v, best)
		if err != nil {
			return nullDatum, err
		}
		if (name == "greatest" && c > 0) || (name == "least" && c < 0) {
			best = v
		}
	}
	return best, nil
}

func fnReplace(_ string, vs []Datum) (Datum, error) {
	return strDatum(strings.ReplaceAll(vs[0].String(), vs[1].String(), vs[2].String())), nil
}

func fnReverse(_ string, vs []Datum) (Datum, error) {
	r := []rune(vs[0].String())
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return strDatum(string(r)), nil
}

func fnLeftRight(name string, vs []Datum) (Datum, error) {
	n, err := convert(vs[1], bigintType, "length")
	if err != nil {
		return nullDatum, err
	}
	r := []rune(vs[0].String())
	k := int(min(max(n.Value.(int64), 0), int64(len(r))))
	if name == "left" {
		return strDatum(string(r[:k])), nil
	}
	return strDatum(string(r[len(r)-k:])), nil
}

func fnRepeat(_ string, vs []Datum) (Datum, error) {
	n, err := convert(vs[1], bigintType, "count")
	if err != nil {
		return nullDatum, err
	}
	k := n.Value.(int64)
	if k <= 0 {
		return strDatum(""), nil
	}
	if int64(len(vs[0].String()))*k > 1<<20 {
		return nullDatum, errf(CodeResource, "REPEAT result longer than 1 MiB")
	}
	return strDatum(strings.Repeat(vs[0].String(), int(k))), nil
}

func fnLocate(name string, vs []Datum) (Datum, error) {
	sub, str := vs[0].String(), vs[1].String()
	if name == "instr" {
		sub, str = str, sub
	}
	i := strings.Index(str, sub)
	if i < 0 {
		return intDatum(0), nil
	}
	return intDatum(int64(utf8.RuneCountInString(str[:i]) + 1)), nil
}

func fnHex(_ string, vs []Datum) (Datum, error) {
	switch vs[0].Kind {
	case KindInt:
		return strDatum(strings.ToUpper(strconv.FormatUint(uint64(vs[0].Value.(int64)), 16))), nil
	case KindBytes:
		return strDatum(strings.ToUpper(hex.EncodeToString(vs[0].Value.([]byte)))), nil
	}
	return strDatum(strings.ToUpper(hex.EncodeToString([]byte(vs[0].String())))), nil
}

func fnMath(name string, vs []Datum) (Datum, error) {
	fs := make([]float64, len(vs))
	for i, v := range vs {
		f, ok := toFloat(v)
		if !ok {
			return nullDatum, typeErr("%s value %s is not a number", v.Kind, quoteVal(v))
		}
		fs[i] = f
	}
	var r float64
	switch name {
	case "power", "pow":
		r = math.Pow(fs[0], fs[1])
	case "sqrt":
		r = math.Sqrt(fs[0])
	case "exp":
		r = math.Exp(fs[0])
	case "ln":
		r = math.Log(fs[0])
	case "log":
		if len(fs) == 2 {
			r = math.Log(fs[1]) / math.Log(fs[0])
		} else {
			r = math.Log(fs[0])
		}
	case "log10":
		r = math.Log10(fs[0])
	case "log2":
		r = math.Log2(fs[0])
	}
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return nullDatum, nil // MySQL: NULL for out-of-domain arguments
	}
	return floatDatum(r), nil
}

func fnSign(_ string, vs []Datum) (Datum, error) {
	v, err := numArg(vs[0])
	if err != nil {
		return nullDatum, err
	}
	c, err := compare(v, intDatum(0))
	return intDatum(int64(c)), err
}

func fnNow(string, []expr) funcExpr {
	return func([]Datum) (Datum, error) { return timeDatum(time.Now()), nil }
}
