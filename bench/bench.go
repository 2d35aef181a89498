package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shaledb/shale/bench/drivers"
	"github.com/shaledb/shale/bench/plot"
	"github.com/shaledb/shale/bench/workloads"
	"github.com/shaledb/shale/bench/ycsb"
	"github.com/shaledb/shale/internal/security"
)

// Options describe one `shale bench ycsb load|run`. Zero fields take
// their defaults; the workload's own settings come from Workload,
// PropertyFiles and Properties (applied in that order, later ones win),
// then from the explicit Threads, TargetOps and Duration.
type Options struct {
	// Phase is load or run.
	Phase ycsb.Phase
	// Workload names a shipped workload, "a".."f" (optional when
	// PropertyFiles are given).
	Workload string
	// PropertyFiles are YCSB property files (-P), loaded in order.
	PropertyFiles []string
	// Properties are key=value overrides (-p).
	Properties []string
	// Target is the store: shale, thrift or etcd.
	Target string
	// PD, Thrift and Etcd are the targets' addresses.
	PD     []string
	Thrift string
	Etcd   []string
	// TLS, if set, is the client certificate to reach a secure cluster
	// with (targets shale and thrift; docs/security.md).
	TLS *security.Reloader
	// Threads (threadcount), TargetOps (target, operations per second in
	// total) and Duration (maxexecutiontime) override the properties when
	// non-zero.
	Threads   int
	TargetOps float64
	Duration  time.Duration
	// Seed seeds the run; nil draws a random seed (printed to Status).
	Seed *uint64
	// Out receives the YCSB summary; Status the status lines and warnings.
	Out, Status io.Writer
	// JSON and Plot, when set, are files to write the result to (JSON) and
	// to draw it in (.html or .svg).
	JSON, Plot string
	// CheckEvery, when set (target shale), forces a consistency check of
	// every tablet this often during the run (checks.go), to measure
	// their cost.
	CheckEvery time.Duration
}

// EnsureDefaults returns a copy of o whose nil writers discard.
func (o Options) EnsureDefaults() Options {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Status == nil {
		o.Status = io.Discard
	}
	return o
}

// Validate rejects an unknown phase or target, a missing workload,
// negative overrides and a plot file of an unknown type, before anything
// connects or runs.
func (o Options) Validate() error {
	if o.Phase != ycsb.PhaseLoad && o.Phase != ycsb.PhaseRun {
		return fmt.Errorf("unknown phase %q: want load or run", o.Phase)
	}
	switch o.Target {
	case "shale", "thrift", "etcd":
	default:
		return fmt.Errorf("unknown target %q: want shale, thrift or etcd", o.Target)
	}
	if o.Workload == "" && len(o.PropertyFiles) == 0 {
		return errNoWorkload
	}
	if o.Threads < 0 || o.TargetOps < 0 || o.Duration < 0 || o.CheckEvery < 0 {
		return errors.New("--threads, --target-ops, --duration and --check-every must not be negative")
	}
	if o.CheckEvery > 0 && o.Target != "shale" {
		return fmt.Errorf("--check-every needs --target shale, not %s", o.Target)
	}
	if o.Plot != "" {
		// Fail before the run, not after it.
		if err := plot.CheckPath(o.Plot); err != nil {
			return err
		}
	}
	return nil
}

var errNoWorkload = errors.New("no workload: choose one with --workload a|b|c|d|e|f or -P FILE")

// Run runs one phase and writes its summary, JSON and plot.
func Run(ctx context.Context, o Options) (*ycsb.Result, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	props, name, err := Properties(o)
	if err != nil {
		return nil, err
	}
	w, err := ycsb.NewWorkload(props)
	if err != nil {
		return nil, err
	}
	if o.Duration > 0 {
		w.MaxExecution = o.Duration
	}
	seed := rand.Uint64()
	if o.Seed != nil {
		seed = *o.Seed
	}
	fmt.Fprintf(o.Status, "shale bench ycsb %s: target %s, workload %s, %d threads, seed %d\n", o.Phase, o.Target, name, w.Threads, seed)

	d, err := drivers.Open(ctx, o.Target, drivers.Config{PD: o.PD, Thrift: o.Thrift, Etcd: o.Etcd, TLS: o.TLS, Props: props, Workload: w})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	for _, k := range props.Unused() {
		fmt.Fprintf(o.Status, "warning: property %s is set but not used by this workload or target\n", k)
	}
	if o.CheckEvery > 0 {
		stop, err := startChecks(ctx, o.PD, o.CheckEvery, o.Status)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	res, err := ycsb.Run(ctx, ycsb.RunOptions{Phase: o.Phase, Workload: w, Driver: d, Seed: seed,
		Status: o.Status, Target: o.Target, WorkloadName: name, Properties: props.Map()})
	if err != nil {
		return nil, err
	}
	if cs, ok := d.(interface{ ClientStats() string }); ok {
		fmt.Fprintf(o.Status, "client: %s\n", cs.ClientStats())
	}
	for _, op := range res.Ops {
		if op.FirstError != "" {
			fmt.Fprintf(o.Status, "first %s error: %s\n", op.Name, op.FirstError)
		}
	}
	if err := ycsb.WriteText(o.Out, res); err != nil {
		return res, err
	}
	if o.JSON != "" {
		if err := ycsb.WriteJSONFile(o.JSON, res); err != nil {
			return res, err
		}
	}
	if o.Plot != "" {
		if err := plot.WriteFile(o.Plot, plot.Label(res), []plot.Line{{Label: plot.Label(res), Result: res}}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Properties builds the run's properties from o (valid, see Validate) and
// names the workload ("workloada", or the -P files' base names).
func Properties(o Options) (*ycsb.Properties, string, error) {
	props := ycsb.NewProperties()
	var names []string
	if o.Workload != "" {
		fn, err := workloads.FileName(o.Workload)
		if err != nil {
			return nil, "", err
		}
		if err := workloads.Load(props, fn); err != nil {
			return nil, "", err
		}
		names = append(names, fn)
	}
	for _, f := range o.PropertyFiles {
		if err := props.LoadFile(f); err != nil {
			return nil, "", err
		}
		names = append(names, filepath.Base(f))
	}
	if len(names) == 0 {
		return nil, "", errNoWorkload
	}
	for _, kv := range o.Properties {
		if err := props.SetPair(kv); err != nil {
			return nil, "", err
		}
	}
	if o.Threads > 0 {
		props.Set("threadcount", strconv.Itoa(o.Threads))
	}
	if o.TargetOps > 0 {
		props.Set("target", strconv.FormatFloat(o.TargetOps, 'f', -1, 64))
	}
	if o.Duration > 0 {
		// Whole seconds in the property (as YCSB has it); the run uses the
		// exact duration.
		props.Set("maxexecutiontime", strconv.FormatInt(int64((o.Duration+time.Second-1)/time.Second), 10))
	}
	return props, strings.Join(names, "+"), nil
}
