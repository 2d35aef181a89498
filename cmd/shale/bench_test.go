package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/bench/etcdtest"
	"github.com/shaledb/shale/bench/ycsb"
)

// shale bench ycsb load/run through the command line against a real etcd
// (the quickest real store to start; the Shale and Thrift drivers are
// tested in bench/drivers), then plot and compare on the JSON results.
func TestBenchYCSBCommand(t *testing.T) {
	t.Parallel()
	ep := etcdtest.Start(t)
	dir := t.TempDir()
	common := []string{"--target", "etcd", "--etcd-endpoints", ep, "--workload", "b", "-p", "recordcount=200", "--threads", "4", "--seed", "7"}

	out, err := runShale(t, append([]string{"bench", "ycsb", "load", "--json", filepath.Join(dir, "load.json")}, common...)...)
	require.NoError(t, err)
	s, err := ycsb.ParseText(strings.NewReader(out))
	require.NoError(t, err)
	n, _ := s.Get("INSERT", "Return=OK")
	require.Equal(t, 200.0, n, out)

	runJSON, runHTML := filepath.Join(dir, "run.json"), filepath.Join(dir, "run.html")
	out, err = runShale(t, append([]string{"bench", "ycsb", "run", "-p", "operationcount=300", "--json", runJSON, "--plot", runHTML}, common...)...)
	require.NoError(t, err)
	s, err = ycsb.ParseText(strings.NewReader(out))
	require.NoError(t, err)
	reads, _ := s.Get("READ", "Return=OK")
	updates, _ := s.Get("UPDATE", "Return=OK")
	require.Equal(t, 300.0, reads+updates, out)
	for _, metric := range []string{"Operations", "AverageLatency(us)", "MinLatency(us)", "MaxLatency(us)", "50thPercentileLatency(us)",
		"95thPercentileLatency(us)", "99thPercentileLatency(us)", "99.9PercentileLatency(us)"} {
		_, ok := s.Get("READ", metric)
		require.True(t, ok, metric)
	}
	r, err := ycsb.ReadJSONFile(runJSON)
	require.NoError(t, err)
	require.Equal(t, "workloadb", r.Workload)
	require.Equal(t, uint64(7), r.Seed)
	require.Equal(t, 4, r.Threads)
	require.Equal(t, "0.95", r.Properties["readproportion"])
	html, err := os.ReadFile(runHTML)
	require.NoError(t, err)
	require.Contains(t, string(html), "<polyline")

	out, err = runShale(t, "bench", "ycsb", "compare", filepath.Join(dir, "load.json"), runJSON)
	require.NoError(t, err)
	require.Contains(t, out, "| load | 4 |")
	require.Contains(t, out, "| workloadb | 4 |")
	svg := filepath.Join(dir, "both.svg")
	_, err = runShale(t, "bench", "ycsb", "plot", "--plot", svg, filepath.Join(dir, "load.json"), runJSON)
	require.NoError(t, err)
	require.FileExists(t, svg)
}

// Bad input is refused with a message, before anything connects.
func TestBenchYCSBCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--target", "etcd"}, "no workload"},
		{[]string{"run", "--workload", "z"}, `unknown workload "z"`},
		{[]string{"run", "--workload", "a", "-p", "requestdistribution=pareto"}, "requestdistribution"},
		{[]string{"run", "--workload", "a", "-p", "noequals"}, "want key=value"},
		{[]string{"run", "--workload", "a", "-P", "/nonexistent/workload"}, "no such file"},
		{[]string{"run", "--workload", "a", "--plot", "out.png"}, "use .html"},
		{[]string{"run", "--workload", "a", "--target", "mongo"}, "want shale, thrift or etcd"},
		{[]string{"load", "--workload", "a", "--threads", "-1"}, "must not be negative"},
		{[]string{"plot", "x.json"}, "--plot"},
		{[]string{"compare", "/nonexistent.json"}, "no such file"},
	} {
		_, err := runShale(t, append([]string{"bench", "ycsb"}, tc.args...)...)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}
