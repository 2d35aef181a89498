package ycsb

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memStore is an in-memory table for testing the client loop itself (the
// operation mix, counts, pacing, seeding); the drivers are tested against
// real stores in bench/drivers.
type memStore struct {
	mu   sync.Mutex
	rows map[string]Record
	log  []string // "OP key", in order
}

func newMemStore() *memStore { return &memStore{rows: map[string]Record{}} }

func (s *memStore) Session(context.Context) (DB, error) { return s, nil }
func (s *memStore) Close() error                        { return nil }

func (s *memStore) note(op, key string) { s.log = append(s.log, op+" "+key) }

func copyRec(r Record) Record {
	out := make(Record, len(r))
	for i, f := range r {
		out[i] = Field{f.Name, slices.Clone(f.Value)}
	}
	return out
}

func (s *memStore) Read(_ context.Context, _, key string, fields []string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note(OpRead, key)
	r, ok := s.rows[key]
	if !ok {
		return nil, ErrNotFound
	}
	var out Record
	for _, f := range r {
		if fields == nil || slices.Contains(fields, f.Name) {
			out = append(out, f)
		}
	}
	return out, nil
}

func (s *memStore) Scan(_ context.Context, _, start string, n int, fields []string) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note(OpScan, start)
	var keys []string
	for k := range s.rows {
		if k >= start {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Record
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, append(copyRec(s.rows[k]), Field{KeyField, []byte(k)}))
	}
	return out, nil
}

func (s *memStore) write(key string, values Record) {
	r := s.rows[key]
	for _, v := range values {
		i := slices.IndexFunc(r, func(f Field) bool { return f.Name == v.Name })
		if i < 0 {
			r = append(r, Field{v.Name, slices.Clone(v.Value)})
		} else {
			r[i].Value = slices.Clone(v.Value)
		}
	}
	s.rows[key] = r
}

func (s *memStore) Update(_ context.Context, _, key string, values Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note(OpUpdate, key)
	s.write(key, values)
	return nil
}

func (s *memStore) Insert(_ context.Context, _, key string, values Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note(OpInsert, key)
	s.write(key, values)
	return nil
}

func (s *memStore) ReadModifyWrite(_ context.Context, _, key string, fields []string, values Record) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note(OpReadModifyWrite, key)
	r, ok := s.rows[key]
	if !ok {
		return nil, ErrNotFound
	}
	out := copyRec(r)
	s.write(key, values)
	return out, nil
}

func props(kv ...string) *Properties {
	p := NewProperties()
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		p.Set(k, v)
	}
	return p
}

func run(t *testing.T, s *memStore, phase Phase, seed uint64, kv ...string) *Result {
	t.Helper()
	w, err := NewWorkload(props(kv...))
	require.NoError(t, err)
	res, err := Run(context.Background(), RunOptions{Phase: phase, Workload: w, Driver: s, Seed: seed})
	require.NoError(t, err)
	return res
}

func returns(r *Result, op, status string) int64 {
	o := r.Op(op)
	if o == nil {
		return 0
	}
	for _, s := range o.Returns {
		if s.Status == status {
			return s.Count
		}
	}
	return 0
}

func TestRunLoadThenMixes(t *testing.T) {
	s := newMemStore()
	base := []string{"recordcount=500", "dataintegrity=true", "threadcount=4"}
	res := run(t, s, PhaseLoad, 1, base...)
	require.Equal(t, int64(500), res.Operations)
	require.Equal(t, int64(500), returns(res, OpInsert, StatusOK))
	require.Len(t, s.rows, 500)
	require.Contains(t, s.rows, "user6284781860667377211", "record 0, hashed")

	// Workload A's mix: half reads, half updates; every read verifies.
	res = run(t, s, PhaseRun, 2, append(base, "operationcount=2000", "readproportion=0.5", "updateproportion=0.5", "requestdistribution=zipfian")...)
	require.Equal(t, int64(2000), res.Operations)
	reads, updates := returns(res, OpRead, StatusOK), returns(res, OpUpdate, StatusOK)
	require.Equal(t, int64(2000), reads+updates)
	require.InDelta(t, 0.5, float64(reads)/2000, 0.05)
	require.Equal(t, reads, returns(res, OpVerify, StatusOK))

	// Workload E: scans and inserts; new records go after the loaded ones
	// and scans see verified rows.
	res = run(t, s, PhaseRun, 3, append(base, "operationcount=1000", "readproportion=0", "scanproportion=0.9", "insertproportion=0.1", "maxscanlength=10", "requestdistribution=zipfian")...)
	ins := returns(res, OpInsert, StatusOK)
	require.InDelta(t, 100, float64(ins), 40)
	require.Len(t, s.rows, 500+int(ins))
	require.Zero(t, returns(res, OpVerify, StatusUnexpectedState))
	require.Greater(t, returns(res, OpVerify, StatusOK), returns(res, OpScan, StatusOK))

	// Workload D (latest): inserts are read back soon after.
	res = run(t, s, PhaseRun, 4, append(base, fmt.Sprintf("recordcount=%d", 500+ins), "operationcount=1000", "readproportion=0.9", "updateproportion=0", "insertproportion=0.1", "requestdistribution=latest")...)
	require.Zero(t, returns(res, OpRead, StatusNotFound))
	require.Zero(t, returns(res, OpVerify, StatusUnexpectedState))

	// Workload F: read-modify-writes.
	res = run(t, s, PhaseRun, 5, append(base, "operationcount=1000", "readproportion=0.5", "updateproportion=0", "readmodifywriteproportion=0.5")...)
	require.InDelta(t, 500, float64(returns(res, OpReadModifyWrite, StatusOK)), 80)
	require.Zero(t, returns(res, OpVerify, StatusUnexpectedState))

	// A read of a missing record is NOT_FOUND, not an error.
	empty := newMemStore()
	res = run(t, empty, PhaseRun, 6, "recordcount=10", "operationcount=20", "readproportion=1", "updateproportion=0")
	require.Equal(t, int64(20), returns(res, OpRead, StatusNotFound))
	require.NotNil(t, res.Op(OpRead+"-FAILED"))
}

// One thread and one seed give the same operations in the same order.
func TestRunIsSeeded(t *testing.T) {
	kv := []string{"recordcount=100", "operationcount=300", "readproportion=0.5", "updateproportion=0.3", "scanproportion=0.2", "requestdistribution=zipfian", "maxscanlength=5"}
	logOf := func(seed uint64) []string {
		s := newMemStore()
		run(t, s, PhaseLoad, seed, kv...)
		s.log = nil
		run(t, s, PhaseRun, seed, kv...)
		return s.log
	}
	a, b, c := logOf(7), logOf(7), logOf(8)
	require.Equal(t, a, b)
	require.NotEqual(t, a, c)
}

func TestRunPacingDurationAndStatus(t *testing.T) {
	s := newMemStore()
	run(t, s, PhaseLoad, 1, "recordcount=100")
	w, err := NewWorkload(props("recordcount=100", "operationcount=0", "threadcount=4", "target=200", "status.interval=1"))
	require.NoError(t, err)
	w.MaxExecution = 1500 * time.Millisecond
	var status bytes.Buffer
	res, err := Run(context.Background(), RunOptions{Phase: PhaseRun, Workload: w, Driver: s, Seed: 1, Status: &status})
	require.NoError(t, err)
	// The throttle never runs ahead of 200 ops/s (plus each thread's
	// first operation, and what starts while the stop is signalled); the
	// run stops after its duration.
	require.LessOrEqual(t, res.Operations, int64(200*1.6)+4)
	require.Greater(t, res.Operations, int64(50))
	require.GreaterOrEqual(t, res.RunTimeMs, int64(1500))
	require.Less(t, res.RunTimeMs, int64(5000))
	// A status line per second, in YCSB's shape, and a series point per
	// second.
	lines := strings.Split(strings.TrimSpace(status.String()), "\n")
	require.GreaterOrEqual(t, len(lines), 2)
	require.Regexp(t, `^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3} 1 sec: \d+ operations; [\d.]+ current ops/sec; est completion in 0 seconds \[READ: Count=\d+, Max=\d+, Min=\d+, Avg=[\d.]+, 90=\d+, 99=\d+, 99.9=\d+, 99.99=\d+\]`, lines[0])
	require.GreaterOrEqual(t, len(res.Series), 2)
	var sum int64
	for _, p := range res.Series {
		sum += p.Ops
	}
	require.Equal(t, res.Operations, sum, "the series accounts for every operation")
}

// The throttled threads' schedules interleave: together they issue an
// operation every 1/target, not bursts of every thread at once.
func TestThrottleStaggersThreads(t *testing.T) {
	start := time.Unix(1000, 0)
	const threads, target = 4, 200.0
	var at []time.Time
	for i := range threads {
		tick, first := throttle(target, threads, i, start)
		require.Equal(t, 20*time.Millisecond, tick)
		for n := range 10 {
			at = append(at, first.Add(time.Duration(n)*tick))
		}
	}
	slices.SortFunc(at, time.Time.Compare)
	for k := 1; k < len(at); k++ {
		require.Equal(t, 5*time.Millisecond, at[k].Sub(at[k-1]), "operation %d", k)
	}
	tick, first := throttle(0, threads, 3, start)
	require.Zero(t, tick, "unthrottled")
	require.Equal(t, start, first)
}
