package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/bench/plot"
	"github.com/shaledb/shale/bench/ycsb"
)

func TestOptionsEnsureDefaults(t *testing.T) {
	o := Options{}.EnsureDefaults()
	require.Equal(t, io.Discard, o.Out)
	require.Equal(t, io.Discard, o.Status)
}

func TestOptionsValidate(t *testing.T) {
	valid := func() Options { return Options{Phase: ycsb.PhaseLoad, Workload: "a", Target: "shale"} }
	require.NoError(t, valid().Validate())
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Phase = "warm" }, `unknown phase "warm"`},
		{func(o *Options) { o.Target = "mongo" }, `unknown target "mongo"`},
		{func(o *Options) { o.Target = "" }, `unknown target ""`},
		{func(o *Options) { o.Workload = "" }, "no workload"},
		{func(o *Options) { o.Threads = -1 }, "must not be negative"},
		{func(o *Options) { o.TargetOps = -1 }, "must not be negative"},
		{func(o *Options) { o.Duration = -1 }, "must not be negative"},
		{func(o *Options) { o.Plot = "out.png" }, "out.png"},
		{func(o *Options) { o.CheckEvery = -1 }, "must not be negative"},
		{func(o *Options) { o.Target, o.CheckEvery = "etcd", time.Second }, "--check-every needs --target shale"},
	} {
		o := valid()
		tc.change(&o)
		require.ErrorContains(t, o.Validate(), tc.want)
		// Run refuses it before connecting to anything.
		_, err := Run(context.Background(), o)
		require.ErrorContains(t, err, tc.want)
	}
	o := valid()
	o.Plot = "out.png"
	require.ErrorAs(t, o.Validate(), new(plot.ErrFormat))
	o = valid()
	o.Workload, o.PropertyFiles = "", []string{"workloads/x"}
	require.NoError(t, o.Validate())
}
