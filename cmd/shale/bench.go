package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/bench"
	"github.com/shaledb/shale/bench/plot"
	"github.com/shaledb/shale/bench/ycsb"
)

func init() { subcommands = append(subcommands, newBenchCommand) }

// newBenchCommand is `shale bench ycsb load|run|plot|compare`; the logic
// lives in bench/.
func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Benchmarks (YCSB)"}
	ycsbCmd := &cobra.Command{
		Use:   "ycsb",
		Short: "The YCSB core workloads against Shale, its Thrift gateway, or etcd",
		Long: `YCSB's core workloads with YCSB's property names and output: load the records
with "load", then run an operation mix with "run". A shipped workload
(--workload a..f, YCSB's workloads A-F) or YCSB property files (-P) choose the
mix; -p key=value overrides single properties (recordcount, operationcount,
fieldcount, fieldlength, readproportion, updateproportion, insertproportion,
scanproportion, readmodifywriteproportion, requestdistribution, maxscanlength,
insertorder, ...). Status lines go to stderr every status.interval seconds
(default 10), the summary to stdout in YCSB's format.`,
	}
	ycsbCmd.AddCommand(newBenchPhaseCommand(ycsb.PhaseLoad), newBenchPhaseCommand(ycsb.PhaseRun),
		newBenchPlotCommand(), newBenchCompareCommand())
	cmd.AddCommand(ycsbCmd)
	return cmd
}

func newBenchPhaseCommand(phase ycsb.Phase) *cobra.Command {
	var o bench.Options
	var pd, etcd string
	var seed uint64
	short := "Load the workload's records"
	if phase == ycsb.PhaseRun {
		short = "Run the workload's operation mix"
	}
	cmd := &cobra.Command{
		Use:   string(phase),
		Short: short,
		Example: fmt.Sprintf(`  shale bench ycsb %[1]s --workload a --target shale --pd 127.0.0.1:2379 -p recordcount=100000 --threads 16
  shale bench ycsb %[1]s --workload a --target etcd --etcd-endpoints 127.0.0.1:2379 -p recordcount=100000 --threads 16
  shale bench ycsb %[1]s -P workloads/workloadb --target thrift --thrift 127.0.0.1:9090 --duration 60s --json b.json`, phase),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Phase, o.Out, o.Status = phase, cmd.OutOrStdout(), cmd.ErrOrStderr()
			o.PD, o.Etcd = splitList(pd), splitList(etcd)
			var err error
			if o.TLS, err = clientTLS(cmd); err != nil {
				return err
			}
			if cmd.Flags().Changed("seed") {
				o.Seed = &seed
			}
			_, err = bench.Run(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Workload, "workload", "", "shipped workload a|b|c|d|e|f (YCSB's A-F; -P and -p override it)")
	f.StringArrayVarP(&o.PropertyFiles, "property-file", "P", nil, "YCSB workload property file (repeatable)")
	f.StringArrayVarP(&o.Properties, "property", "p", nil, "property override key=value (repeatable)")
	f.StringVar(&o.Target, "target", "shale", "store to benchmark: shale|thrift|etcd")
	f.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver addresses HOST:PORT,... (target shale)")
	f.StringVar(&o.Thrift, "thrift", "127.0.0.1:9090", "Thrift gateway address HOST:PORT (target thrift)")
	f.StringVar(&etcd, "etcd-endpoints", "127.0.0.1:2379", "etcd client endpoints HOST:PORT,... (target etcd)")
	f.IntVar(&o.Threads, "threads", 0, "client threads (property threadcount, default 1)")
	f.Float64Var(&o.TargetOps, "target-ops", 0, "limit to this many operations per second in total (property target; 0: no limit)")
	f.DurationVar(&o.Duration, "duration", 0, "stop after this long (property maxexecutiontime; 0: when operationcount is done)")
	f.Uint64Var(&seed, "seed", 0, "random seed (default: a random one, printed)")
	f.StringVar(&o.JSON, "json", "", "also write the result, with its per-second series, as JSON to this file")
	f.StringVar(&o.Plot, "plot", "", "also draw throughput and p99 over time to this .html or .svg file")
	f.DurationVar(&o.CheckEvery, "check-every", 0, "force a consistency check of every tablet this often during the run (target shale; 0: none)")
	addClientTLSFlags(f)
	return cmd
}

func newBenchPlotCommand() *cobra.Command {
	var out, title string
	cmd := &cobra.Command{
		Use:     "plot RESULT.json...",
		Short:   "Draw throughput and p99 over time of result files side by side",
		Example: `  shale bench ycsb plot --plot a.html shale-a.json etcd-a.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("--plot FILE.html (or .svg) is required")
			}
			lines, err := readResults(args)
			if err != nil {
				return err
			}
			var ls []plot.Line
			for _, r := range lines {
				ls = append(ls, plot.Line{Label: plot.Label(r), Result: r})
			}
			return plot.WriteFile(out, title, ls)
		},
	}
	cmd.Flags().StringVar(&out, "plot", "", "output file: .html (inline SVG) or .svg")
	cmd.Flags().StringVar(&title, "title", "shale bench ycsb", "chart title")
	return cmd
}

func newBenchCompareCommand() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:     "compare RESULT.json...",
		Short:   "Print a Markdown table comparing result files by workload, threads and target",
		Example: `  shale bench ycsb compare results/*.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := readResults(args)
			if err != nil {
				return err
			}
			return ycsb.CompareTable(cmd.OutOrStdout(), rs, base)
		},
	}
	cmd.Flags().StringVar(&base, "base", "shale", "target listed first; ratios are it over the others")
	return cmd
}

func readResults(paths []string) ([]*ycsb.Result, error) {
	var out []*ycsb.Result
	for _, p := range paths {
		r, err := ycsb.ReadJSONFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
