package e2e

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// The checkers must accept what a correct cluster may produce and reject
// each anomaly they exist for; these run in `make test` (no Docker).

func TestRegisterChecker(t *testing.T) {
	w := func(c int, k, v string, call, ret int64, out Outcome) RegOp {
		return RegOp{Client: c, Key: k, Kind: OpWrite, Value: v, Outcome: out, Call: call, Return: ret}
	}
	r := func(c int, k, v string, call, ret int64) RegOp {
		return RegOp{Client: c, Key: k, Kind: OpRead, Value: v, Outcome: OK, Call: call, Return: ret}
	}
	cas := func(c int, k, exp, v string, swapped bool, call, ret int64, out Outcome) RegOp {
		return RegOp{Client: c, Key: k, Kind: OpCAS, Expect: exp, Value: v, Swapped: swapped, Outcome: out, Call: call, Return: ret}
	}
	cases := []struct {
		name string
		h    []RegOp
		want porcupine.CheckResult
	}{
		{"sequential", []RegOp{w(0, "a", "1", 0, 1, OK), r(1, "a", "1", 2, 3), cas(0, "a", "1", "2", true, 4, 5, OK), r(1, "a", "2", 6, 7)}, porcupine.Ok},
		{"stale read", []RegOp{w(0, "a", "1", 0, 1, OK), w(0, "a", "2", 2, 3, OK), r(1, "a", "1", 4, 5)}, porcupine.Illegal},
		{"rows are independent", []RegOp{w(0, "a", "1", 0, 1, OK), r(1, "b", "", 2, 3)}, porcupine.Ok},
		{"unknown write may land later", []RegOp{w(0, "a", "1", 0, 1, Unknown), r(1, "a", "", 2, 3), r(1, "a", "1", 4, 5)}, porcupine.Ok},
		{"unknown write may never land", []RegOp{w(0, "a", "1", 0, 1, Unknown), r(1, "a", "", 10, 11)}, porcupine.Ok},
		{"unknown write lands once", []RegOp{w(0, "a", "1", 0, 1, Unknown), r(1, "a", "1", 2, 3), w(1, "a", "2", 4, 5, OK), r(1, "a", "1", 6, 7)}, porcupine.Illegal},
		{"failed write must not land", []RegOp{w(0, "a", "1", 0, 1, Fail), r(1, "a", "1", 2, 3)}, porcupine.Illegal},
		{"cas that should have failed", []RegOp{w(0, "a", "1", 0, 1, OK), cas(1, "a", "0", "2", true, 2, 3, OK)}, porcupine.Illegal},
		{"cas that should have swapped", []RegOp{w(0, "a", "1", 0, 1, OK), cas(1, "a", "1", "2", false, 2, 3, OK)}, porcupine.Illegal},
		{"concurrent cas", []RegOp{w(0, "a", "1", 0, 1, OK), cas(1, "a", "1", "2", true, 2, 10, OK), cas(2, "a", "1", "3", false, 3, 9, OK), r(0, "a", "2", 11, 12)}, porcupine.Ok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := CheckRegisters(tc.h, 10*time.Second)
			require.Equal(t, tc.want, res)
		})
	}
}

func TestCounterChecker(t *testing.T) {
	inc := func(k string, out Outcome, v int64) CounterOp { return CounterOp{Key: k, Outcome: out, Value: v} }
	h := []CounterOp{inc("c", OK, 1), inc("c", OK, 2), inc("c", Unknown, 0), inc("c", Fail, 0), inc("c", OK, 3)}
	require.Empty(t, CheckCounters(h, map[string]int64{"c": 3}))
	require.Empty(t, CheckCounters(h, map[string]int64{"c": 4}))
	require.NotEmpty(t, CheckCounters(h, map[string]int64{"c": 2}), "lost increment")
	require.NotEmpty(t, CheckCounters(h, map[string]int64{"c": 5}), "increment applied twice")
	require.NotEmpty(t, CheckCounters(h, map[string]int64{}), "no final read")
	dup := []CounterOp{inc("c", OK, 1), inc("c", OK, 1)}
	require.NotEmpty(t, CheckCounters(dup, map[string]int64{"c": 2}), "duplicate returned value")
}

func TestSetChecker(t *testing.T) {
	add := func(e string, out Outcome) SetOp { return SetOp{Key: "s", Elem: e, Outcome: out} }
	h := []SetOp{add("a", OK), add("b", Unknown), add("c", Fail), add("d", Unknown)}
	require.Empty(t, CheckSets(h, map[string][]string{"s": {"a", "b"}}))
	require.Empty(t, CheckSets(h, map[string][]string{"s": {"a"}}))
	require.NotEmpty(t, CheckSets(h, map[string][]string{"s": {"b"}}), "acknowledged element lost")
	require.NotEmpty(t, CheckSets(h, map[string][]string{"s": {"a", "a"}}), "duplicate")
	require.NotEmpty(t, CheckSets(h, map[string][]string{"s": {"a", "b", "b"}}), "unknown add applied twice")
	require.NotEmpty(t, CheckSets(h, map[string][]string{"s": {"a", "c"}}), "failed add present")
	require.NotEmpty(t, CheckSets(h, map[string][]string{"s": {"a", "x"}}), "invented element")
	require.NotEmpty(t, CheckSets(h, map[string][]string{"s": {"a"}, "t": {"y"}}), "element in a row never written")
	require.Equal(t, []string{"a", "b"}, ParseSet("a;b;"))
}

func TestScanChecker(t *testing.T) {
	want := map[string]bool{"a": true, "b": true, "c": true}
	require.Empty(t, CheckScan([]string{"a", "b", "c"}, want))
	require.Empty(t, CheckScan([]string{"a", "b", "bb", "c"}, want), "extra rows written during the scan are fine")
	require.NotEmpty(t, CheckScan([]string{"a", "b", "b", "c"}, want), "duplicate")
	require.NotEmpty(t, CheckScan([]string{"a", "c", "b"}, want), "out of order")
	require.NotEmpty(t, CheckScan([]string{"a", "c"}, want), "missing")
}
