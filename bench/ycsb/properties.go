package ycsb

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Properties is a YCSB property set: string keys and values, read from
// Java-style .properties files (-P) and key=value overrides (-p). Later
// settings replace earlier ones. It remembers which keys were read so a
// caller can warn about keys nothing used (typos). Safe for concurrent use.
type Properties struct {
	mu   sync.Mutex
	vals map[string]string
	used map[string]bool
}

// NewProperties returns an empty property set.
func NewProperties() *Properties {
	return &Properties{vals: map[string]string{}, used: map[string]bool{}}
}

// PropertyError says which property has an unusable value and why.
type PropertyError struct {
	Key, Value string
	// Want describes what would have been accepted.
	Want string
}

func (e *PropertyError) Error() string {
	return fmt.Sprintf("property %s=%q: want %s", e.Key, e.Value, e.Want)
}

// ParseError reports a malformed line of a properties file or a -p
// override.
type ParseError struct {
	Source string // file name, or "-p"
	Line   int    // 1-based; 0 for -p
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Source, e.Msg)
}

// Set sets a property.
func (p *Properties) Set(key, value string) {
	p.mu.Lock()
	p.vals[key] = value
	p.mu.Unlock()
}

// SetDefault sets a property unless it is already set.
func (p *Properties) SetDefault(key, value string) {
	p.mu.Lock()
	if _, ok := p.vals[key]; !ok {
		p.vals[key] = value
	}
	p.mu.Unlock()
}

// Has reports whether key is set (without marking it used).
func (p *Properties) Has(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.vals[key]
	return ok
}

// Lookup returns a property's value and marks it used.
func (p *Properties) Lookup(key string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[key] = true
	v, ok := p.vals[key]
	return v, ok
}

// String returns a property's value, or def when unset.
func (p *Properties) String(key, def string) string {
	if v, ok := p.Lookup(key); ok {
		return v
	}
	return def
}

// Int64 returns a property as an integer, or def when unset.
func (p *Properties) Int64(key string, def int64) (int64, error) {
	v, ok := p.Lookup(key)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, &PropertyError{Key: key, Value: v, Want: "an integer"}
	}
	return n, nil
}

// Float returns a property as a number, or def when unset.
func (p *Properties) Float(key string, def float64) (float64, error) {
	v, ok := p.Lookup(key)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, &PropertyError{Key: key, Value: v, Want: "a number"}
	}
	return f, nil
}

// Bool returns a property as a boolean ("true"/"false", any case, as
// Java's Boolean.parseBoolean but strict), or def when unset.
func (p *Properties) Bool(key string, def bool) (bool, error) {
	v, ok := p.Lookup(key)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &PropertyError{Key: key, Value: v, Want: "true or false"}
}

// Map returns a copy of every property.
func (p *Properties) Map() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.vals))
	for k, v := range p.vals {
		out[k] = v
	}
	return out
}

// Unused lists, sorted, the keys that are set but were never read.
func (p *Properties) Unused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for k := range p.vals {
		if !p.used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// SetPair applies one "-p key=value" override.
func (p *Properties) SetPair(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return &ParseError{Source: "-p", Msg: fmt.Sprintf("%q: want key=value", kv)}
	}
	p.Set(k, v)
	return nil
}

// LoadFile reads a properties file (as -P FILE does) into p.
func (p *Properties) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("workload file: %w", err)
	}
	defer f.Close()
	return p.Load(f, path)
}

// Load reads Java .properties syntax from r into p: "key=value",
// "key: value" or "key value"; lines starting with # or ! are comments; a
// line ending in an odd number of backslashes continues on the next line;
// \t \n \r \f \uXXXX and \<char> escapes. source names r in errors.
func (p *Properties) Load(r io.Reader, source string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		start := lineNo
		line := strings.TrimLeft(sc.Text(), " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continues(line) {
			line = line[:len(line)-1]
			if !sc.Scan() {
				break
			}
			lineNo++
			line += strings.TrimLeft(sc.Text(), " \t\f")
		}
		key, value, err := splitProperty(line)
		if err != nil {
			return &ParseError{Source: source, Line: start, Msg: err.Error()}
		}
		p.Set(key, value)
	}
	if err := sc.Err(); err != nil {
		return &ParseError{Source: source, Line: lineNo + 1, Msg: err.Error()}
	}
	return nil
}

// continues reports whether a line ends in an odd number of backslashes.
func continues(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty splits a logical line into its unescaped key and value.
func splitProperty(line string) (string, string, error) {
	// The key ends at the first unescaped '=', ':' or whitespace.
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		i++
	}
	if i > len(line) {
		i = len(line)
	}
	rawKey := line[:i]
	rest := strings.TrimLeft(line[i:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	key, err := unescape(rawKey)
	if err != nil {
		return "", "", err
	}
	value, err := unescape(rest)
	if err != nil {
		return "", "", err
	}
	return key, value, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i == len(s)-1 {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
			if err != nil {
				return "", fmt.Errorf("malformed \\u escape in %q", s)
			}
			var buf [utf8.UTFMax]byte
			b.Write(buf[:utf8.EncodeRune(buf[:], rune(n))])
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
