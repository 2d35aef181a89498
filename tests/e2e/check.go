package e2e

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Outcome is what a client learned about an operation.
type Outcome string

// Outcomes, as in Jepsen: ok (it happened), fail (it certainly did not) and
// unknown (it may or may not have happened: kvclient.ErrAmbiguous, or a
// Thrift error, which does not tell).
const (
	OK      Outcome = "ok"
	Fail    Outcome = "fail"
	Unknown Outcome = "unknown"
)

// Register operation kinds.
const (
	OpRead  = "read"
	OpWrite = "write"
	OpCAS   = "cas"
)

// RegOp is one operation of the register workload on one row. Values are
// unique per write; "" is the absent cell.
type RegOp struct {
	Client  int     `json:"client"`
	Key     string  `json:"key"`
	Kind    string  `json:"kind"`
	Value   string  `json:"value,omitempty"`  // read: what was read; write, cas: the new value
	Expect  string  `json:"expect,omitempty"` // cas: the value compared with
	Swapped bool    `json:"swapped,omitempty"`
	Outcome Outcome `json:"outcome"`
	Call    int64   `json:"call"`   // ns since the run started
	Return  int64   `json:"return"` // ns since the run started
	Err     string  `json:"err,omitempty"`
}

type regInput struct {
	kind          string
	value, expect string
}

type regOutput struct {
	value   string
	swapped bool
	unknown bool
}

// RegisterModel is the sequential specification of one row holding one
// value, partitioned by row.
var RegisterModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Metadata.(string)
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.kind {
		case OpRead:
			return out.value == s, s
		case OpWrite:
			return true, in.value
		case OpCAS:
			match := s == in.expect
			if !out.unknown && out.swapped != match {
				return false, s
			}
			if match {
				return true, in.value
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		res := ""
		switch {
		case out.unknown:
			res = " → ?"
		case in.kind == OpRead:
			res = fmt.Sprintf(" → %q", out.value)
		case in.kind == OpCAS:
			res = fmt.Sprintf(" → %v", out.swapped)
		}
		switch in.kind {
		case OpRead:
			return "read()" + res
		case OpWrite:
			return fmt.Sprintf("write(%q)%s", in.value, res)
		default:
			return fmt.Sprintf("cas(%q→%q)%s", in.expect, in.value, res)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// RegisterOperations converts a history for porcupine. Failed operations
// are left out (they did not happen; a failed read observed nothing); an
// unknown one never returns, so it may take effect at any point after its
// call, or not at all.
func RegisterOperations(h []RegOp) []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(h))
	for _, o := range h {
		if o.Outcome == Fail {
			continue
		}
		ret := o.Return
		if o.Outcome == Unknown {
			if o.Kind == OpRead {
				continue
			}
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{
			ClientId: o.Client,
			Input:    regInput{kind: o.Kind, value: valueIn(o), expect: o.Expect},
			Call:     o.Call,
			Output:   regOutput{value: o.Value, swapped: o.Swapped, unknown: o.Outcome == Unknown},
			Return:   ret,
			Metadata: o.Key,
		})
	}
	return ops
}

func valueIn(o RegOp) string {
	if o.Kind == OpRead {
		return ""
	}
	return o.Value
}

// CheckRegisters checks a register history for linearizability per row.
// The result is porcupine.Unknown if the search did not finish in timeout.
func CheckRegisters(h []RegOp, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(RegisterModel, RegisterOperations(h), timeout)
}

// CounterOp is one increment by 1 of a counter row. Value is the new value
// it returned (when ok).
type CounterOp struct {
	Client  int     `json:"client"`
	Key     string  `json:"key"`
	Outcome Outcome `json:"outcome"`
	Value   int64   `json:"value,omitempty"`
	Err     string  `json:"err,omitempty"`
}

// CheckCounters checks increments against the final values: for each row,
// acked ≤ final ≤ acked + unknown, no two increments returned the same
// value, and none returned more than the final value.
func CheckCounters(h []CounterOp, final map[string]int64) []string {
	type tally struct {
		acked, unknown int64
		seen           map[int64]bool
	}
	rows := map[string]*tally{}
	var bad []string
	for _, o := range h {
		t := rows[o.Key]
		if t == nil {
			t = &tally{seen: map[int64]bool{}}
			rows[o.Key] = t
		}
		switch o.Outcome {
		case OK:
			t.acked++
			if t.seen[o.Value] {
				bad = append(bad, fmt.Sprintf("counter %s: two increments both returned %d", o.Key, o.Value))
			}
			t.seen[o.Value] = true
		case Unknown:
			t.unknown++
		}
	}
	for _, k := range sortedKeys(rows) {
		t := rows[k]
		f, ok := final[k]
		if !ok {
			bad = append(bad, fmt.Sprintf("counter %s: no final value was read", k))
			continue
		}
		if f < t.acked {
			bad = append(bad, fmt.Sprintf("counter %s: final value %d < %d acknowledged increments (lost %d)", k, f, t.acked, t.acked-f))
		}
		if f > t.acked+t.unknown {
			bad = append(bad, fmt.Sprintf("counter %s: final value %d > %d acknowledged + %d unknown increments (%d applied twice or invented)", k, f, t.acked, t.unknown, f-t.acked-t.unknown))
		}
		for v := range t.seen {
			if v > f {
				bad = append(bad, fmt.Sprintf("counter %s: an increment returned %d, above the final value %d", k, v, f))
				break
			}
		}
	}
	return bad
}

// SetOp is one attempt to add a unique element to a set row.
type SetOp struct {
	Client  int     `json:"client"`
	Key     string  `json:"key"`
	Elem    string  `json:"elem"`
	Outcome Outcome `json:"outcome"`
	Err     string  `json:"err,omitempty"`
}

// SetElemSep ends every element appended to a set row.
const SetElemSep = ";"

// ParseSet splits a set row's value into its elements.
func ParseSet(v string) []string {
	var out []string
	for _, e := range strings.Split(v, SetElemSep) {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// CheckSets checks the final contents of set rows against the adds: every
// acknowledged element present exactly once, an unknown one at most once, a
// failed one absent, and nothing that was never added.
func CheckSets(h []SetOp, final map[string][]string) []string {
	adds := map[string]map[string]Outcome{}
	for _, o := range h {
		if adds[o.Key] == nil {
			adds[o.Key] = map[string]Outcome{}
		}
		adds[o.Key][o.Elem] = o.Outcome
	}
	var bad []string
	keys := sortedKeys(adds)
	for k := range final {
		if adds[k] == nil {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		count := map[string]int{}
		for _, e := range final[k] {
			count[e]++
		}
		for _, e := range sortedKeys(count) {
			out, added := adds[k][e]
			switch {
			case !added:
				bad = append(bad, fmt.Sprintf("set %s: element %q was never added", k, e))
			case out == Fail:
				bad = append(bad, fmt.Sprintf("set %s: element %q is present but its add failed", k, e))
			case count[e] > 1:
				bad = append(bad, fmt.Sprintf("set %s: element %q present %d times (%s add)", k, e, count[e], out))
			}
		}
		for _, e := range sortedKeys(adds[k]) {
			if adds[k][e] == OK && count[e] == 0 {
				bad = append(bad, fmt.Sprintf("set %s: acknowledged element %q lost", k, e))
			}
		}
	}
	return bad
}

// CheckScan checks one full-table scan: rows strictly ascending (so none
// twice) and every row of want present.
func CheckScan(rows []string, want map[string]bool) []string {
	var bad []string
	for i := 1; i < len(rows); i++ {
		if rows[i] <= rows[i-1] {
			bad = append(bad, fmt.Sprintf("scan: row %q after %q (position %d): duplicate or out of order", rows[i], rows[i-1], i))
		}
	}
	got := map[string]bool{}
	for _, r := range rows {
		got[r] = true
	}
	var missing []string
	for r := range want {
		if !got[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		show := missing
		if len(show) > 5 {
			show = show[:5]
		}
		bad = append(bad, fmt.Sprintf("scan: %d of %d rows missing (first: %s)", len(missing), len(want), strings.Join(show, ",")))
	}
	return bad
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
