package ycsb

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A summary built from known latencies prints in YCSB's exact format
// (values are HDR's: 3 significant digits, so 5000us is reported within
// [5000, 5003]).
func TestWriteTextFormat(t *testing.T) {
	start := time.Unix(1700000000, 0)
	m := NewMeasurements(start)
	for us := 1; us <= 1000; us++ {
		m.Measure(OpRead, time.Duration(us)*time.Microsecond, StatusOK, nil)
	}
	m.Measure(OpRead, 5*time.Millisecond, StatusNotFound, ErrNotFound)
	m.Measure(OpUpdate, 2*time.Millisecond, StatusOK, nil)
	m.Measure(OpUpdate, 3*time.Millisecond, StatusError, errors.New("boom"))
	m.Tick(start.Add(2 * time.Second))
	ops, p99 := m.Results([]float64{50, 95, 99, 99.9})
	r := &Result{RunTimeMs: 2000, Throughput: 501.5, Ops: ops, P99Us: p99}

	var b bytes.Buffer
	require.NoError(t, WriteText(&b, r))
	require.Equal(t, `[OVERALL], RunTime(ms), 2000
[OVERALL], Throughput(ops/sec), 501.5
[READ], Operations, 1000
[READ], AverageLatency(us), 500.5
[READ], MinLatency(us), 1
[READ], MaxLatency(us), 1000
[READ], 50thPercentileLatency(us), 500
[READ], 95thPercentileLatency(us), 950
[READ], 99thPercentileLatency(us), 990
[READ], 99.9PercentileLatency(us), 999
[READ], Return=OK, 1000
[READ], Return=NOT_FOUND, 1
[READ-FAILED], Operations, 1
[READ-FAILED], AverageLatency(us), 5002.0
[READ-FAILED], MinLatency(us), 5000
[READ-FAILED], MaxLatency(us), 5003
[READ-FAILED], 50thPercentileLatency(us), 5003
[READ-FAILED], 95thPercentileLatency(us), 5003
[READ-FAILED], 99thPercentileLatency(us), 5003
[READ-FAILED], 99.9PercentileLatency(us), 5003
[UPDATE], Operations, 1
[UPDATE], AverageLatency(us), 2000.0
[UPDATE], MinLatency(us), 2000
[UPDATE], MaxLatency(us), 2000
[UPDATE], 50thPercentileLatency(us), 2000
[UPDATE], 95thPercentileLatency(us), 2000
[UPDATE], 99thPercentileLatency(us), 2000
[UPDATE], 99.9PercentileLatency(us), 2000
[UPDATE], Return=OK, 1
[UPDATE], Return=ERROR, 1
[UPDATE-FAILED], Operations, 1
[UPDATE-FAILED], AverageLatency(us), 3001.0
[UPDATE-FAILED], MinLatency(us), 3000
[UPDATE-FAILED], MaxLatency(us), 3001
[UPDATE-FAILED], 50thPercentileLatency(us), 3001
[UPDATE-FAILED], 95thPercentileLatency(us), 3001
[UPDATE-FAILED], 99thPercentileLatency(us), 3001
[UPDATE-FAILED], 99.9PercentileLatency(us), 3001
`, b.String())
	require.Equal(t, "boom", r.Op(OpUpdate).FirstError)

	// And it parses back.
	s, err := ParseText(&b)
	require.NoError(t, err)
	require.Equal(t, []string{"OVERALL", "READ", "READ-FAILED", "UPDATE", "UPDATE-FAILED"}, s.Sections)
	v, ok := s.Get("OVERALL", "Throughput(ops/sec)")
	require.True(t, ok)
	require.Equal(t, 501.5, v)
	v, _ = s.Get("READ", "99.9PercentileLatency(us)")
	require.Equal(t, 999.0, v)
	v, _ = s.Get("UPDATE", "Return=ERROR")
	require.Equal(t, 1.0, v)
}

// Output of YCSB itself (0.17, hdrhistogram measurements, with its status
// lines and JVM sections) parses too.
func TestParseYCSBOutput(t *testing.T) {
	out := `Loading workload...
Starting test.
2023-01-01 00:00:10:003 10 sec: 98917 operations; 9891.7 current ops/sec; [READ: Count=49511, Max=54399, Min=96, Avg=791.42, 90=1257, 99=3263, 99.9=11215, 99.99=29327] [UPDATE: Count=49406, Max=58399, Min=140, Avg=815.01, 90=1300, 99=3345, 99.9=11359, 99.99=29583]
[OVERALL], RunTime(ms), 10110
[OVERALL], Throughput(ops/sec), 9891.196834817013
[TOTAL_GCS_PS_Scavenge], Count, 3
[TOTAL_GC_TIME_%], Time(%), 0.07912957467853611
[READ], Operations, 49511
[READ], AverageLatency(us), 791.4225929591404
[READ], MinLatency(us), 96
[READ], MaxLatency(us), 54399
[READ], 95thPercentileLatency(us), 1705
[READ], 99thPercentileLatency(us), 3263
[READ], Return=OK, 49511
[CLEANUP], Operations, 1
[CLEANUP], AverageLatency(us), 2.1487e+06
`
	s, err := ParseText(strings.NewReader(out))
	require.NoError(t, err)
	v, _ := s.Get("OVERALL", "RunTime(ms)")
	require.Equal(t, 10110.0, v)
	v, _ = s.Get("READ", "99thPercentileLatency(us)")
	require.Equal(t, 3263.0, v)
	v, _ = s.Get("CLEANUP", "AverageLatency(us)")
	require.Equal(t, 2.1487e6, v)

	_, err = ParseText(strings.NewReader("[READ], Operations\n"))
	var se *SummaryError
	require.ErrorAs(t, err, &se)
	_, err = ParseText(strings.NewReader("[READ], Operations, many\n"))
	require.ErrorAs(t, err, &se)
}

func TestJavaFormatting(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 100: "100.0", 98.91196834817013: "98.91196834817013", 0.5: "0.5",
		1e7: "1.0E7", 12345678.9: "1.23456789E7", 0.0001: "1.0E-4",
	} {
		require.Equal(t, want, javaDouble(f), "%v", f)
	}
	for p, want := range map[float64]string{50: "50th", 95: "95th", 99: "99th", 99.9: "99.9", 1: "1st", 2: "2nd", 3: "3rd", 11: "11th", 21: "21st", 99.99: "99.99"} {
		require.Equal(t, want, ordinal(p), "%v", p)
	}
	require.Equal(t, "1234.57", formatDecimal(1234.5678))
	require.Equal(t, "12", formatDecimal(12.0))
	require.Equal(t, "0.5", formatDecimal(0.5))
}

func TestJSONRoundTripAndCompareTable(t *testing.T) {
	dir := t.TempDir()
	mk := func(target, workload string, phase Phase, threads int, tput float64, p99 int64) *Result {
		return &Result{Phase: phase, Target: target, Workload: workload, Threads: threads, Throughput: tput, P99Us: p99,
			Ops: []OpResult{{Name: OpRead, Operations: 10, AverageUs: 1500, Percentiles: []Percentile{{50, 1000}, {99, p99}},
				Returns: []StatusCount{{StatusOK, 9}, {StatusError, 1}}}},
			Series: []Point{{T: 1, Ops: 10, Throughput: 10, P99Us: p99}}}
	}
	var rs []*Result
	for _, r := range []*Result{
		mk("shale", "workloada", PhaseRun, 16, 3000, 20000),
		mk("etcd", "workloada", PhaseRun, 16, 1500, 40000),
		mk("shale", "workloada", PhaseLoad, 16, 2500, 30000),
		mk("etcd", "workloada", PhaseLoad, 16, 1000, 15000),
	} {
		path := filepath.Join(dir, r.Target+string(r.Phase)+".json")
		require.NoError(t, WriteJSONFile(path, r))
		back, err := ReadJSONFile(path)
		require.NoError(t, err)
		require.Equal(t, r, back)
		rs = append(rs, back)
	}
	var b bytes.Buffer
	require.NoError(t, CompareTable(&b, rs, "shale"))
	lines := strings.Split(b.String(), "\n")
	require.Equal(t, "| workload | threads | shale ops/s | etcd ops/s | shale/etcd | shale p99 ms | etcd p99 ms | p99 shale/etcd |", lines[0])
	require.Equal(t, "| load | 16 | 2,500 | 1,000 | 2.50 | 30.0 | 15.0 | 2.00 |", lines[2], "load first")
	require.Equal(t, "| workloada | 16 | 3,000 | 1,500 | 2.00 | 20.0 | 40.0 | 0.50 |", lines[3])
	require.Contains(t, b.String(), "| workloada | 16 | etcd | READ | 10 | 1.50 | 1.00 | - | 40.0 | - | 0.00 | 1 |")

	_, err := ReadJSONFile(filepath.Join(dir, "missing.json"))
	require.Error(t, err)
}
