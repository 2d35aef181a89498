package store_test

// Data API commands of the datadriven harness (testdata/README.md):
// mutate and read, with cells and timestamps in a compact text form.

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/datadriven"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// tableArg is table= (default TestTable).
func (h *harness) tableArg(d *datadriven.TestData) uint64 {
	table := storetest.TestTable.TableId
	d.MaybeScanArgs(h.t, "table", &table)
	return table
}

// unescape reads an argument or input word with Go escapes (\x00).
func unescape(h *harness, d *datadriven.TestData, s string) string {
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
	if err != nil {
		d.Fatalf(h.t, "bad escape in %q: %v", s, err)
	}
	return u
}

// escape renders bytes with Go escapes for the non-printable ones.
func escape(b []byte) string {
	q := strconv.QuoteToASCII(string(b))
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}

// fmtTS renders a timestamp relative to the clocks' start (T) when near it.
func fmtTS(ts int64) string {
	d := time.Duration(ts-harnessEpoch.UnixMicro()) * time.Microsecond
	switch {
	case d >= 0 && d < 24*time.Hour:
		return "T+" + d.String()
	case d < 0 && d > -24*time.Hour:
		return "T-" + (-d).String()
	}
	return strconv.FormatInt(ts, 10)
}

// parseTS reads a timestamp: an integer (microseconds), or T, T+DUR, T-DUR.
func parseTS(h *harness, d *datadriven.TestData, s string) int64 {
	if !strings.HasPrefix(s, "T") {
		ts, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			d.Fatalf(h.t, "bad timestamp %q", s)
		}
		return ts
	}
	base := harnessEpoch.UnixMicro()
	if s == "T" {
		return base
	}
	dur, err := time.ParseDuration(s[2:])
	if err != nil {
		d.Fatalf(h.t, "bad timestamp %q: %v", s, err)
	}
	if s[1] == '-' {
		dur = -dur
	}
	return base + dur.Microseconds()
}

// parseColumn reads FAM:QUAL.
func parseColumn(h *harness, d *datadriven.TestData, s string) (string, []byte) {
	fam, qual, ok := strings.Cut(s, ":")
	if !ok {
		d.Fatalf(h.t, "want FAM:QUAL, got %q", s)
	}
	return fam, []byte(unescape(h, d, qual))
}

// parseRange reads START,END of a time range; either may be empty.
func parseRange(h *harness, d *datadriven.TestData, vals []string) *kvpb.TimeRange {
	tr := &kvpb.TimeRange{}
	if len(vals) > 0 && vals[0] != "" {
		tr.StartTs = parseTS(h, d, vals[0])
	}
	if len(vals) > 1 && vals[1] != "" {
		tr.EndTs = parseTS(h, d, vals[1])
	}
	return tr
}

// parseMutations reads one mutation a line:
//
//	set FAM:QUAL[@TS]=VALUE
//	seti FAM:QUAL[@TS]=N   (an 8-byte big-endian integer, as counters hold)
//	del-col FAM:QUAL [START,END]
//	del-fam FAM
//	del-row
//	empty            (a mutation with nothing set)
func parseMutations(h *harness, d *datadriven.TestData) []*kvpb.Mutation {
	var out []*kvpb.Mutation
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "set":
			col, val, _ := strings.Cut(strings.TrimPrefix(line, "set "), "=")
			var ts int64
			if c, t, ok := strings.Cut(col, "@"); ok {
				col, ts = c, parseTS(h, d, t)
			}
			fam, qual := parseColumn(h, d, col)
			out = append(out, &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: fam, Qualifier: qual, Timestamp: ts, Value: []byte(unescape(h, d, val))}}})
		case "seti":
			col, val, _ := strings.Cut(strings.TrimPrefix(line, "seti "), "=")
			var ts int64
			if c, t, ok := strings.Cut(col, "@"); ok {
				col, ts = c, parseTS(h, d, t)
			}
			fam, qual := parseColumn(h, d, col)
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				d.Fatalf(h.t, "seti: %v", err)
			}
			out = append(out, &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: fam, Qualifier: qual, Timestamp: ts, Value: binary.BigEndian.AppendUint64(nil, uint64(n))}}})
		case "del-col":
			fam, qual := parseColumn(h, d, f[1])
			m := &kvpb.Mutation_DeleteFromColumn{Family: fam, Qualifier: qual}
			if len(f) > 2 {
				m.TimeRange = parseRange(h, d, strings.Split(strings.Trim(f[2], "[])"), ","))
			}
			out = append(out, &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: m}})
		case "del-fam":
			out = append(out, &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromFamily_{DeleteFromFamily: &kvpb.Mutation_DeleteFromFamily{Family: f[1]}}})
		case "del-row":
			out = append(out, &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}})
		case "empty":
			out = append(out, &kvpb.Mutation{})
		default:
			d.Fatalf(h.t, "unknown mutation %q", line)
		}
	}
	return out
}

// readOptions reads versions=N families=(..) columns=(FAM:QUAL,..)
// range=(START,END).
func readOptions(h *harness, d *datadriven.TestData) *kvpb.ReadOptions {
	o := &kvpb.ReadOptions{}
	var versions uint32
	if d.MaybeScanArgs(h.t, "versions", &versions) {
		o.MaxVersions = versions
	}
	d.MaybeScanArgs(h.t, "families", &o.Families)
	if a, ok := d.Arg("columns"); ok {
		for _, v := range a.Vals {
			fam, qual := parseColumn(h, d, v)
			o.Columns = append(o.Columns, &kvpb.Column{Family: fam, Qualifier: qual})
		}
	}
	if a, ok := d.Arg("range"); ok {
		o.TimeRange = parseRange(h, d, a.Vals)
	}
	return o
}

// fmtRow renders a row's cells one a line, "FAM:QUAL@TS=VALUE"; with
// ints, 8-byte values of the columns named print as "#N" (an integer).
func fmtRow(r *kvpb.Row, ints []string) string {
	if r == nil {
		return "not found"
	}
	out := make([]string, 0, len(r.Cells))
	for _, c := range r.Cells {
		v := escape(c.Value)
		if len(c.Value) == 8 && slices.Contains(ints, c.Family+":"+string(c.Qualifier)) {
			v = fmt.Sprintf("#%d", int64(binary.BigEndian.Uint64(c.Value)))
		}
		out = append(out, fmt.Sprintf("%s:%s@%s=%s", c.Family, escape(c.Qualifier), fmtTS(c.Timestamp), v))
	}
	return strings.Join(out, "\n")
}

// errDetails names the typed details an error carries.
func errDetails(err error) string {
	var names []string
	for _, det := range status.Convert(err).Details() {
		if m, ok := det.(proto.Message); ok {
			names = append(names, string(m.ProtoReflect().Descriptor().Name()))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " [" + strings.Join(names, ",") + "]"
}

// parseRules reads one ReadModifyWrite rule a line:
//
//	incr FAM:QUAL N
//	append FAM:QUAL VALUE
//	empty            (a rule with nothing set)
func parseRules(h *harness, d *datadriven.TestData) []*kvpb.ReadModifyWriteRule {
	var out []*kvpb.ReadModifyWriteRule
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "empty" {
			out = append(out, &kvpb.ReadModifyWriteRule{Family: "c", Qualifier: []byte("n")})
			continue
		}
		if len(f) < 2 {
			d.Fatalf(h.t, "bad rule %q", line)
		}
		fam, qual := parseColumn(h, d, f[1])
		arg := ""
		if len(f) > 2 {
			arg = unescape(h, d, f[2])
		}
		switch f[0] {
		case "incr":
			n, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				d.Fatalf(h.t, "incr: %v", err)
			}
			out = append(out, &kvpb.ReadModifyWriteRule{Family: fam, Qualifier: qual, Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: n}})
		case "append":
			out = append(out, &kvpb.ReadModifyWriteRule{Family: fam, Qualifier: qual, Rule: &kvpb.ReadModifyWriteRule_AppendValue{AppendValue: []byte(arg)}})
		default:
			d.Fatalf(h.t, "unknown rule %q", line)
		}
	}
	return out
}
