package kvnemesis

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Columns of the generator's table. Each has a role, so that the model's
// version order is exact:
//   - colA, colB (family f) and colC (family g) take server-timestamped
//     writes, writes at old explicit timestamps, deletes and conditional
//     writes;
//   - colZ takes only writes at explicit timestamps near now (within the
//     maximum clock offset), so its versions order by their timestamps;
//   - colN takes increments and colL appends (read-modify-write).
const (
	famF = "f"
	famG = "g"
	colA = "f:a"
	colB = "f:b"
	colC = "g:c"
	colZ = "f:z"
	colN = "f:n"
	colL = "f:l"
)

var allColumns = []string{colA, colB, colC, colZ, colN, colL}

func splitCol(col string) (family string, qualifier []byte) {
	f, q, _ := strings.Cut(col, ":")
	return f, []byte(q)
}

// serverBase orders server-timestamped versions above every explicit
// timestamp the generator uses (explicit ones are at most now + 1 s in
// microseconds, far below 2^62): the model numbers server writes in the
// order they linearize, which the real HLC timestamps must agree with.
const serverBase = int64(1) << 62

// mutKind is one mutation of a row.
type mutKind uint8

const (
	mutSet mutKind = iota
	mutDeleteColumn
	mutDeleteFamily
	mutDeleteRow
)

type mutation struct {
	Kind mutKind
	Col  string // mutSet, mutDeleteColumn
	Fam  string // mutDeleteFamily
	Val  string // mutSet
	TS   int64  // mutSet: explicit timestamp in µs; 0: the server's
}

func (m mutation) String() string {
	switch m.Kind {
	case mutSet:
		if m.TS == 0 {
			return fmt.Sprintf("set(%s=%s)", m.Col, m.Val)
		}
		return fmt.Sprintf("set(%s=%s@%d)", m.Col, m.Val, m.TS)
	case mutDeleteColumn:
		return "delcol(" + m.Col + ")"
	case mutDeleteFamily:
		return "delfam(" + m.Fam + ")"
	default:
		return "delrow"
	}
}

// opKind is what one history operation did to one row.
type opKind uint8

const (
	opRead opKind = iota
	opWrite
	opCheckAndMutate
	opIncrement
	opAppend
)

// condition is a CheckAndMutate predicate on the newest version of a
// column (the kvpb.Condition_Op numbering).
type condition struct {
	Col   string
	Op    int32
	Value string
}

// input is one operation on one row, as the model sees it. A batch that
// touches a row several times becomes one input whose Groups apply in
// order (the rows of a batch are atomic on their own, not together).
type input struct {
	Row  string
	Kind opKind
	// opWrite: mutation groups applied in order, all at one server
	// timestamp; opCheckAndMutate: Groups[0] if the predicate holds,
	// Groups[1] if not.
	Groups [][]mutation
	Cond   condition
	// opRead: the projection (nil: every column), versions per column
	// and, for colZ only, a time range [TRStart, TREnd) (TREnd 0: none).
	Cols             []string
	Versions         int
	TRStart, TREnd   int64
	Delta            int64  // opIncrement
	Suffix           string // opAppend
	Desc             string // how it was sent, for the failure report
	ExpectInvalidArg bool
}

// output is what the operation returned; Unknown: an ambiguous write.
type output struct {
	Unknown bool
	Read    map[string][]string // opRead: column → values, newest first
	Matched bool                // opCheckAndMutate
	Value   string              // opIncrement, opAppend: the new value
}

type version struct {
	ord int64
	val string
}

// rowState is the model of one row: every column's versions, newest
// first, and the count of server-timestamped writes so far.
type rowState struct {
	cols map[string][]version
	next int64
}

func (s rowState) clone() rowState {
	out := rowState{cols: make(map[string][]version, len(s.cols)), next: s.next}
	for k, v := range s.cols {
		out.cols[k] = slices.Clone(v)
	}
	return out
}

func (s rowState) newest(col string) (string, bool) {
	vs := s.cols[col]
	if len(vs) == 0 {
		return "", false
	}
	return vs[0].val, true
}

// put inserts a version, replacing one at the same order (a second write
// at the same timestamp overwrites, as in the engine).
func (s *rowState) put(col string, ord int64, val string) {
	vs := s.cols[col]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].ord <= ord })
	if i < len(vs) && vs[i].ord == ord {
		vs[i].val = val
	} else {
		vs = slices.Insert(vs, i, version{ord, val})
	}
	s.cols[col] = vs
}

// apply runs one group of mutations at one server timestamp.
func (s *rowState) apply(ms []mutation, serverOrd int64) {
	for _, m := range ms {
		switch m.Kind {
		case mutSet:
			ord := m.TS
			if ord == 0 {
				ord = serverOrd
			}
			s.put(m.Col, ord, m.Val)
		case mutDeleteColumn:
			delete(s.cols, m.Col)
		case mutDeleteFamily:
			for c := range s.cols {
				if strings.HasPrefix(c, m.Fam+":") {
					delete(s.cols, c)
				}
			}
		case mutDeleteRow:
			clear(s.cols)
		}
	}
}

func (s *rowState) serverTS() int64 {
	s.next++
	return serverBase + s.next
}

// read is what a read with in's projection returns from s.
func (s rowState) read(in input) map[string][]string {
	out := map[string][]string{}
	cols := in.Cols
	if cols == nil {
		cols = allColumns
	}
	for _, c := range cols {
		var vals []string
		for _, v := range s.cols[c] {
			if in.TREnd > 0 && (v.ord < in.TRStart || v.ord >= in.TREnd) {
				continue
			}
			if len(vals) == in.Versions {
				break
			}
			vals = append(vals, v.val)
		}
		if len(vals) > 0 {
			out[c] = vals
		}
	}
	return out
}

func holds(c condition, v string, found bool) bool {
	switch c.Op {
	case 0: // EXISTS
		return found
	case 1: // NOT_EXISTS
		return !found
	}
	if !found {
		return false
	}
	cmp := bytes.Compare([]byte(v), []byte(c.Value))
	switch c.Op {
	case 2:
		return cmp == 0
	case 3:
		return cmp != 0
	case 4:
		return cmp < 0
	case 5:
		return cmp <= 0
	case 6:
		return cmp > 0
	case 7:
		return cmp >= 0
	}
	return false
}

func encodeInt(n int64) string { return string(binary.BigEndian.AppendUint64(nil, uint64(n))) }

func decodeInt(v string) (int64, bool) {
	switch len(v) {
	case 0:
		return 0, true
	case 8:
		return int64(binary.BigEndian.Uint64([]byte(v))), true
	}
	return 0, false
}

// step is the sequential specification: the state after in, and whether
// out is a possible result of in from s.
func step(s rowState, in input, out output) (bool, rowState) {
	switch in.Kind {
	case opRead:
		return readsEqual(s.read(in), out.Read), s
	case opWrite:
		n := s.clone()
		ts := n.serverTS()
		for _, g := range in.Groups {
			n.apply(g, ts)
		}
		return true, n
	case opCheckAndMutate:
		v, found := s.newest(in.Cond.Col)
		matched := holds(in.Cond, v, found)
		if !out.Unknown && matched != out.Matched {
			return false, s
		}
		n := s.clone()
		ts := n.serverTS()
		if matched {
			n.apply(in.Groups[0], ts)
		} else if len(in.Groups) > 1 {
			n.apply(in.Groups[1], ts)
		}
		return true, n
	case opIncrement, opAppend:
		cur, _ := s.newest(in.Cols[0])
		var nv string
		if in.Kind == opIncrement {
			x, ok := decodeInt(cur)
			if !ok {
				// The server refuses to increment a non-integer; such an
				// operation can only have failed.
				return out.Unknown, s
			}
			nv = encodeInt(x + in.Delta)
		} else {
			nv = cur + in.Suffix
		}
		if !out.Unknown && nv != out.Value {
			return false, s
		}
		n := s.clone()
		n.put(in.Cols[0], n.serverTS(), nv)
		return true, n
	}
	return false, s
}

func readsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

func stateEqual(a, b rowState) bool {
	if a.next != b.next || len(a.cols) != len(b.cols) {
		return false
	}
	for k, va := range a.cols {
		if !slices.Equal(va, b.cols[k]) {
			return false
		}
	}
	return true
}

// rowModel is the porcupine model: one partition per row.
var rowModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byRow := map[string][]porcupine.Operation{}
		for _, op := range history {
			r := op.Input.(input).Row
			byRow[r] = append(byRow[r], op)
		}
		rows := slices.Sorted(maps.Keys(byRow))
		out := make([][]porcupine.Operation, 0, len(rows))
		for _, r := range rows {
			out = append(out, byRow[r])
		}
		return out
	},
	Init: func() interface{} { return rowState{cols: map[string][]version{}} },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		return step(state.(rowState), in.(input), out.(output))
	},
	Equal: func(a, b interface{}) bool { return stateEqual(a.(rowState), b.(rowState)) },
	DescribeOperation: func(in, out interface{}) string {
		return describe(in.(input), out.(output))
	},
	DescribeState: func(state interface{}) string { return describeState(state.(rowState)) },
}

func describe(in input, out output) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ", in.Row)
	switch in.Kind {
	case opRead:
		fmt.Fprintf(&b, "read%v v=%d", in.Cols, in.Versions)
		if in.TREnd > 0 {
			fmt.Fprintf(&b, " tr=[%d,%d)", in.TRStart, in.TREnd)
		}
		fmt.Fprintf(&b, " -> %s", printable(out.Read))
	case opWrite:
		fmt.Fprintf(&b, "write %v", in.Groups)
	case opCheckAndMutate:
		fmt.Fprintf(&b, "cam(%s op%d %q) %v -> %v", in.Cond.Col, in.Cond.Op, in.Cond.Value, in.Groups, out.Matched)
	case opIncrement:
		fmt.Fprintf(&b, "incr %d -> %q", in.Delta, out.Value)
	case opAppend:
		fmt.Fprintf(&b, "append %s -> %s", in.Suffix, out.Value)
	}
	if out.Unknown {
		b.WriteString(" (unknown)")
	}
	if in.Desc != "" {
		fmt.Fprintf(&b, " [%s]", in.Desc)
	}
	return b.String()
}

func printable(m map[string][]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func describeState(s rowState) string {
	keys := slices.Sorted(maps.Keys(s.cols))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		var vs []string
		for _, v := range s.cols[k] {
			vs = append(vs, fmt.Sprintf("%q", v.val))
		}
		parts = append(parts, k+"="+strings.Join(vs, ","))
	}
	return strings.Join(parts, " ")
}
