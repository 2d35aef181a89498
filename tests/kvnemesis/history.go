package kvnemesis

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// history records operations and the checks that need no model.
type history struct {
	start time.Time

	mu         sync.Mutex
	ops        []porcupine.Operation
	violations []string
	counts     map[string]int    // operation and fault kinds → how many
	samples    map[string]string // fault kind → one error it met
}

func newHistory() *history {
	return &history{start: time.Now(), counts: map[string]int{}, samples: map[string]string{}}
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// add records a finished operation; an unknown outcome never returns (it
// may take effect at any later point, or never).
func (h *history) add(client int, in input, out output, call, ret int64) {
	if out.Unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

func (h *history) count(kind string) {
	h.mu.Lock()
	h.counts[kind]++
	h.mu.Unlock()
}

// sample keeps the first error of a kind, for the summary.
func (h *history) sample(kind string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.samples[kind]; !ok {
		h.samples[kind] = err.Error()
	}
}

// violate records a failed check that needs no model (a bad timestamp
// accepted, an operation that hung).
func (h *history) violate(format string, args ...any) {
	h.mu.Lock()
	h.violations = append(h.violations, fmt.Sprintf("%.3fs: ", time.Since(h.start).Seconds())+fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func (h *history) snapshot() ([]porcupine.Operation, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...), append([]string(nil), h.violations...)
}

func (h *history) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make([]string, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-28s %d\n", k, h.counts[k])
	}
	for k, v := range h.samples {
		fmt.Fprintf(&b, "  %s failed once with: %.200s\n", k, v)
	}
	return b.String()
}

func formatOp(op porcupine.Operation) string {
	ret := "∞"
	if op.Return != math.MaxInt64 {
		ret = fmt.Sprintf("%.3f", float64(op.Return)/1e9)
	}
	return fmt.Sprintf("  [%.3f, %s] c%d %s\n", float64(op.Call)/1e9, ret, op.ClientId, describe(op.Input.(input), op.Output.(output)))
}
