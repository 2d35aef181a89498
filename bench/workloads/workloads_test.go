package workloads_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/bench/workloads"
	"github.com/shaledb/shale/bench/ycsb"
)

// The shipped workloads carry YCSB's standard settings.
func TestShippedWorkloads(t *testing.T) {
	want := map[string]map[string]string{
		"a": {"readproportion": "0.5", "updateproportion": "0.5", "requestdistribution": "zipfian"},
		"b": {"readproportion": "0.95", "updateproportion": "0.05", "requestdistribution": "zipfian"},
		"c": {"readproportion": "1", "updateproportion": "0", "requestdistribution": "zipfian"},
		"d": {"readproportion": "0.95", "insertproportion": "0.05", "requestdistribution": "latest"},
		"e": {"scanproportion": "0.95", "insertproportion": "0.05", "requestdistribution": "zipfian", "maxscanlength": "100", "scanlengthdistribution": "uniform"},
		"f": {"readproportion": "0.5", "readmodifywriteproportion": "0.5", "requestdistribution": "zipfian"},
	}
	for _, name := range workloads.Names {
		p := ycsb.NewProperties()
		require.NoError(t, workloads.Load(p, name))
		m := p.Map()
		for k, v := range want[name] {
			require.Equal(t, v, m[k], "workload %s: %s", name, k)
		}
		require.Equal(t, "1000", m["recordcount"])
		require.Equal(t, "site.ycsb.workloads.CoreWorkload", m["workload"])
		_, err := ycsb.NewWorkload(p)
		require.NoError(t, err, "workload %s", name)
	}
	fn, err := workloads.FileName("WorkloadE")
	require.NoError(t, err)
	require.Equal(t, "workloade", fn)
	_, err = workloads.FileName("g")
	require.ErrorContains(t, err, "unknown workload")
}
