package filterlang

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is a malformed filter string: what is wrong and where.
type Error struct {
	// Pos is the byte offset in the filter string.
	Pos int
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bad filter string: %s (at offset %d)", e.Msg, e.Pos)
}

func errAt(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Bounds on what one filter string may ask for: the recursion depth of the
// parser (and of every evaluation) and the number of filters.
const (
	maxDepth   = 64
	maxFilters = 10000
)

// Filter is a parsed filter string. It is immutable; NewScan gives the
// per-scan evaluator.
type Filter struct {
	root node
	src  string
}

// String returns the filter string it was parsed from.
func (f *Filter) String() string { return f.src }

// Parse parses an HBase filter string.
func Parse(s string) (*Filter, error) {
	p := &parser{lx: lexer{src: s}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, errAt(0, "empty filter string")
	}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, errAt(p.tok.pos, "unexpected %s after a complete filter", p.tok)
	}
	return &Filter{root: n, src: s}, nil
}

// ---- lexer ----

type tokKind int

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tComma
	tString // quoted; text is the unquoted bytes
	tWord   // a name, keyword, number or boolean
	tOp     // a comparison operator
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of string"
	case tLParen:
		return `"("`
	case tRParen:
		return `")"`
	case tComma:
		return `","`
	case tString:
		return "string " + strconv.Quote("'"+t.text+"'")
	default:
		return strconv.Quote(t.text)
	}
}

type lexer struct {
	src string
	pos int
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	switch {
	case c == '(':
		l.pos++
		return token{kind: tLParen, text: "(", pos: start}, nil
	case c == ')':
		l.pos++
		return token{kind: tRParen, text: ")", pos: start}, nil
	case c == ',':
		l.pos++
		return token{kind: tComma, text: ",", pos: start}, nil
	case c == '\'':
		return l.quoted()
	case c == '<' || c == '>' || c == '=' || c == '!':
		l.pos++
		if l.pos < len(l.src) && l.src[l.pos] == '=' && c != '=' {
			l.pos++
		}
		op := l.src[start:l.pos]
		if op == "!" {
			return token{}, errAt(start, `"!" is not an operator (did you mean "!="?)`)
		}
		return token{kind: tOp, text: op, pos: start}, nil
	case isWordByte(c):
		for l.pos < len(l.src) && isWordByte(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tWord, text: l.src[start:l.pos], pos: start}, nil
	default:
		return token{}, errAt(start, "unexpected character %q", c)
	}
}

// quoted reads a single-quoted string; a doubled quote is a quote.
func (l *lexer) quoted() (token, error) {
	start := l.pos
	l.pos++ // opening quote
	var b strings.Builder
	for {
		i := strings.IndexByte(l.src[l.pos:], '\'')
		if i < 0 {
			return token{}, errAt(start, "unterminated quoted string")
		}
		b.WriteString(l.src[l.pos : l.pos+i])
		l.pos += i + 1
		if l.pos < len(l.src) && l.src[l.pos] == '\'' {
			b.WriteByte('\'')
			l.pos++
			continue
		}
		return token{kind: tString, text: b.String(), pos: start}, nil
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '+' || c == '.'
}

// ---- parser ----

type parser struct {
	lx      lexer
	tok     token
	filters int
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) isKeyword(k string) bool { return p.tok.kind == tWord && p.tok.text == k }

func (p *parser) expr(depth int) (node, error) {
	if depth > maxDepth {
		return nil, errAt(p.tok.pos, "filter nested deeper than %d levels", maxDepth)
	}
	first, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for p.isKeyword("OR") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		n, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &orNode{kids: kids}, nil
}

func (p *parser) and(depth int) (node, error) {
	first, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for p.isKeyword("AND") {
		if err := p.advance(); err != nil {
			return nil, err
		}
		n, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &andNode{kids: kids}, nil
}

func (p *parser) unary(depth int) (node, error) {
	if depth > maxDepth {
		return nil, errAt(p.tok.pos, "filter nested deeper than %d levels", maxDepth)
	}
	switch {
	case p.isKeyword("SKIP"), p.isKeyword("WHILE"):
		kw := p.tok.text
		if err := p.advance(); err != nil {
			return nil, err
		}
		n, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		if kw == "SKIP" {
			return &skipNode{kid: n}, nil
		}
		return &whileNode{kid: n}, nil
	case p.tok.kind == tLParen:
		if err := p.advance(); err != nil {
			return nil, err
		}
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, errAt(p.tok.pos, "expected \")\" or an operator, got %s", p.tok)
		}
		return n, p.advance()
	case p.tok.kind == tWord:
		return p.filter()
	default:
		return nil, errAt(p.tok.pos, "expected a filter, \"(\", SKIP or WHILE, got %s", p.tok)
	}
}

// filter parses Name(args) and builds the named filter.
func (p *parser) filter() (node, error) {
	name := p.tok
	p.filters++
	if p.filters > maxFilters {
		return nil, errAt(name.pos, "more than %d filters", maxFilters)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tLParen {
		return nil, errAt(p.tok.pos, "expected \"(\" after filter name %q, got %s", name.text, p.tok)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var args []token
	if p.tok.kind != tRParen {
		for {
			switch p.tok.kind {
			case tString, tWord, tOp:
				args = append(args, p.tok)
			default:
				return nil, errAt(p.tok.pos, "expected an argument of %s, got %s", name.text, p.tok)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind == tRParen {
				break
			}
			if p.tok.kind != tComma {
				return nil, errAt(p.tok.pos, "expected \",\" or \")\" in the arguments of %s, got %s", name.text, p.tok)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
	}
	end := p.tok.pos
	if err := p.advance(); err != nil {
		return nil, err
	}
	b, ok := builders[name.text]
	if !ok {
		return nil, errAt(name.pos, "unknown filter %q", name.text)
	}
	n, err := b(&args_{name: name, list: args, end: end})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// args_ reads one filter's arguments in order.
type args_ struct {
	name token
	list []token
	i    int
	end  int
}

func (a *args_) errf(format string, args ...any) error {
	pos := a.end
	if a.i > 0 && a.i <= len(a.list) {
		pos = a.list[a.i-1].pos
	}
	return errAt(pos, "%s: %s", a.name.text, fmt.Sprintf(format, args...))
}

func (a *args_) count(min, max int) error {
	if n := len(a.list); n < min || n > max {
		want := strconv.Itoa(min)
		if max > min {
			want = fmt.Sprintf("%d to %d", min, max)
			if max == manyArgs {
				want = fmt.Sprintf("at least %d", min)
			}
		}
		return errAt(a.name.pos, "%s takes %s arguments, got %d", a.name.text, want, n)
	}
	return nil
}

const manyArgs = 1 << 30

func (a *args_) take() token {
	t := a.list[a.i]
	a.i++
	return t
}

func (a *args_) str(what string) ([]byte, error) {
	t := a.take()
	if t.kind != tString {
		return nil, a.errf("%s must be a quoted string, got %s", what, t)
	}
	return []byte(t.text), nil
}

func (a *args_) int64(what string) (int64, error) {
	t := a.take()
	if t.kind != tWord {
		return 0, a.errf("%s must be an integer, got %s", what, t)
	}
	v, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return 0, a.errf("%s must be an integer, got %s", what, t)
	}
	return v, nil
}

func (a *args_) nonNegInt(what string) (int64, error) {
	v, err := a.int64(what)
	if err == nil && v < 0 {
		err = a.errf("%s must not be negative, got %d", what, v)
	}
	return v, err
}

func (a *args_) bool(what string) (bool, error) {
	t := a.take()
	if t.kind == tWord {
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, a.errf("%s must be true or false, got %s", what, t)
}

func (a *args_) op() (compareOp, error) {
	t := a.take()
	if t.kind == tOp {
		if op, ok := ops[t.text]; ok {
			return op, nil
		}
	}
	return 0, a.errf("expected a comparison operator (<, <=, =, !=, >, >=), got %s", t)
}

func (a *args_) comparator(op compareOp) (comparator, error) {
	t := a.take()
	if t.kind != tString {
		return comparator{}, a.errf("comparator must be a quoted 'type:value' string, got %s", t)
	}
	c, err := parseComparator(t.text)
	if err == nil && (c.kind == cmpRegex || c.kind == cmpSubstring) && op != opEqual && op != opNotEqual {
		err = fmt.Errorf("%s comparators take only = and !=", c.kind)
	}
	if err != nil {
		return comparator{}, a.errf("%v", err)
	}
	return c, nil
}
