package tablefmt

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaledb/shale/kvclient"
)

// ParseFamily parses FAMILY[:maxversions=N,maxage=D]. Without a policy
// the family keeps every version forever.
func ParseFamily(spec string) (kvclient.Family, error) {
	bad := func(format string, args ...any) (kvclient.Family, error) {
		return kvclient.Family{}, fmt.Errorf("bad family %q: %s (format: FAMILY[:maxversions=N,maxage=DURATION])",
			spec, fmt.Sprintf(format, args...))
	}
	name, policy, hasPolicy := strings.Cut(spec, ":")
	if name == "" {
		return bad("empty family name")
	}
	if strings.ContainsAny(name, "=,") {
		return bad("family name %q must not contain '=' or ','", name)
	}
	f := kvclient.Family{Name: name}
	if !hasPolicy {
		return f, nil
	}
	if policy == "" {
		return bad("empty GC policy after ':'")
	}
	seen := map[string]bool{}
	for _, opt := range strings.Split(policy, ",") {
		key, val, ok := strings.Cut(opt, "=")
		if !ok {
			return bad("policy %q is not KEY=VALUE", opt)
		}
		key = strings.ToLower(strings.TrimSpace(key))
		if seen[key] {
			return bad("%s given more than once", key)
		}
		seen[key] = true
		switch key {
		case "maxversions":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil || n == 0 {
				return bad("maxversions=%q: want an integer >= 1 (omit it to keep every version)", val)
			}
			f.MaxVersions = uint32(n)
		case "maxage":
			d, err := time.ParseDuration(val)
			if err != nil {
				return bad("maxage=%q: want a Go duration such as 90s, 36h or 1h30m", val)
			}
			if d <= 0 {
				return bad("maxage=%q: must be positive (omit it to keep versions forever)", val)
			}
			if d%time.Millisecond != 0 {
				return bad("maxage=%q: the granularity is one millisecond", val)
			}
			f.MaxAge = d
		default:
			return bad("unknown policy %q (known: maxversions, maxage)", key)
		}
	}
	return f, nil
}

// ParseFamilies parses each spec with ParseFamily and rejects a family
// named twice.
func ParseFamilies(specs []string) ([]kvclient.Family, error) {
	fams := make([]kvclient.Family, 0, len(specs))
	for _, spec := range specs {
		f, err := ParseFamily(spec)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(fams, func(g kvclient.Family) bool { return g.Name == f.Name }) {
			return nil, fmt.Errorf("family %q given more than once", f.Name)
		}
		fams = append(fams, f)
	}
	return fams, nil
}

// ParseSplitRows turns split row keys into byte slices; an empty one is an
// error (the table already starts at the empty row).
func ParseSplitRows(rows []string) ([][]byte, error) {
	var out [][]byte
	for _, s := range rows {
		if s == "" {
			return nil, errors.New("--split: the split row must not be empty")
		}
		out = append(out, []byte(s))
	}
	return out, nil
}

// ParseCell parses FAMILY:QUALIFIER=VALUE. The family ends at the first
// ':' and the qualifier at the first '=' after it, so the value may hold
// both. The result has no timestamp.
func ParseCell(spec string) (kvclient.Cell, error) {
	const want = "want FAMILY:QUALIFIER=VALUE"
	family, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return kvclient.Cell{}, fmt.Errorf("bad cell %q: missing ':' after the family (%s)", spec, want)
	}
	if family == "" {
		return kvclient.Cell{}, fmt.Errorf("bad cell %q: empty family (%s)", spec, want)
	}
	if strings.Contains(family, "=") {
		return kvclient.Cell{}, fmt.Errorf("bad cell %q: '=' before the ':' ending the family (%s)", spec, want)
	}
	qualifier, value, ok := strings.Cut(rest, "=")
	if !ok {
		return kvclient.Cell{}, fmt.Errorf("bad cell %q: missing '=' before the value (%s)", spec, want)
	}
	return kvclient.Cell{Family: family, Qualifier: []byte(qualifier), Value: []byte(value)}, nil
}

// ParseSetCells parses cell specs into SetCell mutations, in order. A
// value ending in @TS, TS decimal digits, is written at timestamp TS
// (microseconds since the epoch, as cbt takes it); any other value at
// the commit timestamp.
func ParseSetCells(specs []string) ([]kvclient.Mutation, error) {
	muts := make([]kvclient.Mutation, 0, len(specs))
	for _, spec := range specs {
		c, err := ParseCell(spec)
		if err != nil {
			return nil, err
		}
		v, ts, err := splitTimestamp(string(c.Value))
		if err != nil {
			return nil, fmt.Errorf("bad cell %q: %w", spec, err)
		}
		muts = append(muts, kvclient.SetCellAt(c.Family, c.Qualifier, []byte(v), ts))
	}
	return muts, nil
}

// ParseScanArgs parses read's start=ROW end=ROW count=N arguments, each at
// most once: start is inclusive, end exclusive, count a row limit.
func ParseScanArgs(args []string) (kvclient.ScanOptions, error) {
	var o kvclient.ScanOptions
	seen := map[string]bool{}
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		if !ok {
			return o, fmt.Errorf("bad argument %q: want start=ROW, end=ROW or count=N", a)
		}
		if seen[key] {
			return o, fmt.Errorf("%s= given more than once", key)
		}
		seen[key] = true
		switch key {
		case "start", "end":
			if val == "" {
				return o, fmt.Errorf("%s=: the row must not be empty (omit %s= for no bound)", key, key)
			}
			if key == "start" {
				o.Start = []byte(val)
			} else {
				o.End = []byte(val)
			}
		case "count":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return o, fmt.Errorf("count=%q: want an integer >= 1", val)
			}
			o.Limit = n
		default:
			return o, fmt.Errorf("bad argument %q: unknown key %q (known: start, end, count)", a, key)
		}
	}
	if o.Start != nil && o.End != nil && string(o.Start) >= string(o.End) {
		return o, fmt.Errorf("start=%q must sort before end=%q", o.Start, o.End)
	}
	return o, nil
}
