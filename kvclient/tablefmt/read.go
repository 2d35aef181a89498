package tablefmt

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/kvclient"
)

// ReadArgs are the arguments of cbt's read and count: the rows to scan
// and what to do with them.
type ReadArgs struct {
	// Scan bounds the rows (start=, end=, prefix=) and selects the cells
	// (columns=). Its Limit is left 0 when Regex is set: count= then
	// applies to the matching rows (see Limit).
	Scan kvclient.ScanOptions
	// Regex, when set, keeps only the rows whose whole key matches it
	// (regex=, RE2 syntax, anchored at both ends as in Bigtable). It is
	// applied by the client: the servers still send the other rows.
	Regex *regexp.Regexp
	// Limit is count=, the most rows to print (0: all).
	Limit int
	// KeysOnly prints row keys without cells (keys-only=true); the
	// servers send a digest of each row instead of its cells.
	KeysOnly bool
}

// Match reports whether a row key passes the regex.
func (a ReadArgs) Match(row []byte) bool { return a.Regex == nil || a.Regex.Match(row) }

// readKeys are the keys ParseReadArgs knows; count takes all but count=
// and keys-only=.
var readKeys = []string{"start", "end", "prefix", "regex", "columns", "count", "keys-only"}

// ParseReadArgs parses cbt's read arguments, each at most once:
// start=ROW end=ROW prefix=PREFIX regex=RE columns=FAM[:QUAL],...
// count=N keys-only=true|false. allowed names the keys this command takes
// (nil: all of them).
func ParseReadArgs(args []string, allowed []string) (ReadArgs, error) {
	if allowed == nil {
		allowed = readKeys
	}
	var a ReadArgs
	seen := map[string]bool{}
	for _, arg := range args {
		key, val, ok := strings.Cut(arg, "=")
		if !ok {
			return a, fmt.Errorf("bad argument %q: want KEY=VALUE with KEY one of %s", arg, strings.Join(withEquals(allowed), ", "))
		}
		if !contains(allowed, key) {
			return a, fmt.Errorf("bad argument %q: unknown key %q (known: %s)", arg, key, strings.Join(withEquals(allowed), ", "))
		}
		if seen[key] {
			return a, fmt.Errorf("%s= given more than once", key)
		}
		seen[key] = true
		if err := a.set(key, val); err != nil {
			return a, err
		}
	}
	if seen["prefix"] && (seen["start"] || seen["end"]) {
		return a, fmt.Errorf("prefix= cannot be combined with start= or end=")
	}
	if a.Scan.Start != nil && a.Scan.End != nil && string(a.Scan.Start) >= string(a.Scan.End) {
		return a, fmt.Errorf("start=%q must sort before end=%q", a.Scan.Start, a.Scan.End)
	}
	if a.Regex == nil {
		a.Scan.Limit = a.Limit
	}
	if a.KeysOnly {
		a.Scan.Read = append(a.Scan.Read, kvclient.Digest())
	}
	return a, nil
}

func (a *ReadArgs) set(key, val string) error {
	switch key {
	case "start", "end":
		if val == "" {
			return fmt.Errorf("%s=: the row must not be empty (omit %s= for no bound)", key, key)
		}
		if key == "start" {
			a.Scan.Start = []byte(val)
		} else {
			a.Scan.End = []byte(val)
		}
	case "prefix":
		if val == "" {
			return fmt.Errorf("prefix=: the prefix must not be empty (omit it to read every row)")
		}
		a.Scan.Start, a.Scan.End = []byte(val), keys.PrefixEnd([]byte(val))
	case "regex":
		re, err := regexp.Compile("^(?:" + val + ")$")
		if err != nil {
			return fmt.Errorf("regex=%q: %v", val, err)
		}
		a.Regex = re
	case "columns":
		opt, err := parseColumns(val)
		if err != nil {
			return err
		}
		a.Scan.Read = append(a.Scan.Read, opt...)
	case "count":
		n, err := strconv.Atoi(val)
		if err != nil || n <= 0 {
			return fmt.Errorf("count=%q: want an integer >= 1", val)
		}
		a.Limit = n
	case "keys-only":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("keys-only=%q: want true or false", val)
		}
		a.KeysOnly = b
	}
	return nil
}

// parseColumns parses FAM[:QUAL],...: a bare family (or "FAM:") reads the
// whole family, FAM:QUAL one column.
func parseColumns(val string) ([]kvclient.ReadOption, error) {
	var fams []string
	var cols []kvclient.Column
	for _, spec := range strings.Split(val, ",") {
		fam, qual, hasQual := strings.Cut(spec, ":")
		if fam == "" {
			return nil, fmt.Errorf("columns=%q: %q has no family (want FAMILY or FAMILY:QUALIFIER)", val, spec)
		}
		if !hasQual || qual == "" {
			fams = append(fams, fam)
			continue
		}
		cols = append(cols, kvclient.Column{Family: fam, Qualifier: []byte(qual)})
	}
	var out []kvclient.ReadOption
	if len(fams) > 0 {
		out = append(out, kvclient.Families(fams...))
	}
	if len(cols) > 0 {
		out = append(out, kvclient.Columns(cols...))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func withEquals(list []string) []string {
	out := make([]string, len(list))
	for i, k := range list {
		out[i] = k + "="
	}
	return out
}

// splitTimestamp splits VALUE@TS into the value and TS (microseconds since
// the epoch) when the text after the last '@' is a decimal number; other
// values are returned whole with timestamp 0 (the commit timestamp).
func splitTimestamp(v string) (string, int64, error) {
	i := strings.LastIndexByte(v, '@')
	if i < 0 || i == len(v)-1 {
		return v, 0, nil
	}
	digits := v[i+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return v, 0, nil
		}
	}
	ts, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("timestamp @%s: %v", digits, err)
	}
	return v[:i], ts, nil
}
