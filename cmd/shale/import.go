package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/metrics"
	sqllite "github.com/shaledb/shale/sql-lite"
)

func init() { subcommands = append(subcommands, newImportCommand) }

// newImportCommand is `shale import`: bulk load files through sorted SSTs
// ingested by raft (importer package).
func newImportCommand() *cobra.Command {
	var (
		pd, table, rowKey, mapping, format, columns, delimiter, null, workDir string
		rejectFile, onDup, progress                                           string
		raw, header, nullSet                                                  bool
		memory, sstSize                                                       int
		splitSize                                                             int64
		parallel, ingestParallel                                              int
		maxErrors                                                             int64
		cpuProfile, httpAddr                                                  string
	)
	cmd := &cobra.Command{
		Use:   "import --pd ADDR --table T [--raw --row-key COL --map COL=FAM:QUAL,...] FILE|DIR|-",
		Short: "Bulk-load CSV, TSV or JSONL files into a table (sorted SSTs ingested through raft)",
		Long: `Bulk-load files into an existing table. Rows are parsed, encoded into cells,
sorted on disk in bounded memory, the table is split (and its leaders spread)
where the data needs it, and one SST per tablet slice is uploaded to the
tablet's leader and ingested through the tablet's raft log. The table stays
online; every imported cell gets one timestamp taken from the placement
driver when the job starts, so writes made after that win.

The job is resumable: the work directory holds its checkpoint. If the import
is killed, run the same command again to finish it; every row ends up in the
table exactly once.

SQL tables (created with the SQL shell; the default): input columns are
matched to the table's columns by name (--header or --columns), each field
is converted to its column's type as INSERT would, absent columns take their
DEFAULT, and a row that already exists gets the columns the input sets.

Raw tables (--raw): --row-key names the column holding the row key; --map maps
other columns to family:qualifier cells. Columns are named by the header
(--header), by --columns, or by 1-based position.

NULL fields (--null) write no cell.`,
		Example: `  shale import --pd 127.0.0.1:2379 --table accounts --header accounts.csv
  shale import --pd 127.0.0.1:2379 --table users --raw --header \
      --row-key id --map name=info:name,email=info:email users.csv
  shale import --pd 127.0.0.1:2379 --table events --raw --format jsonl \
      --row-key id --map type=e:type,payload=e:payload --progress json events/
  zcat big.csv.gz | shale import --pd 127.0.0.1:2379 --table t --raw \
      --columns k,v --row-key k --map v=f:v --work-dir /data/import-t -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if raw == (rowKey == "" && mapping == "") {
				if raw {
					return errors.New("--raw needs --row-key and --map")
				}
				return errors.New("--row-key and --map are for raw tables: add --raw, or leave them out to import into a SQL table")
			}
			addrs, err := tablePDAddrs(pd)
			if err != nil {
				return err
			}
			f, err := importer.ParseFormat(format)
			if err != nil {
				return err
			}
			src := importer.SourceOptions{Format: f, Header: header}
			if columns != "" {
				src.Columns = strings.Split(columns, ",")
			}
			if delimiter != "" {
				if src.Delimiter, err = importer.ParseDelimiter(delimiter); err != nil {
					return err
				}
			}
			if nullSet = cmd.Flags().Changed("null"); nullSet {
				src.Null = &null
			}
			var maps []importer.Mapping
			if raw {
				if maps, err = importer.ParseMappings(mapping); err != nil {
					return err
				}
			}
			if workDir == "" {
				workDir = "shale-import-" + table
			}
			var show func(importer.Progress)
			var finish func(error)
			switch progress {
			case "bar":
				show, finish = progressBar(cmd.Context(), cmd.ErrOrStderr())
			case "json":
				show, finish = progressJSON(cmd.OutOrStdout())
			case "none":
			default:
				return fmt.Errorf("--progress %q: want bar, json or none", progress)
			}
			tls, err := clientTLS(cmd)
			if err != nil {
				return err
			}
			if httpAddr != "" {
				pm := importer.NewProgressMetrics()
				reg := metrics.NewRegistry()
				reg.MustRegister(pm)
				_, stopHTTP, err := serveDebugHTTP(httpAddr, reg, func(context.Context) error { return nil }, nil, nil) // a client's opt-in port: plaintext (docs/security.md)
				if err != nil {
					return err
				}
				defer stopHTTP()
				inner := show
				show = func(p importer.Progress) {
					pm.Update(p)
					if inner != nil {
						inner(p)
					}
				}
			}
			o := importer.Options{
				PD: addrs, TLS: tls, Table: table, Inputs: args, Stdin: cmd.InOrStdin(), Source: src,
				RowKey: rowKey, Mappings: maps, WorkDir: workDir, MemoryBytes: memory, Parallel: parallel,
				SSTBytes: sstSize, IngestParallel: ingestParallel, SplitBytes: splitSize, MaxErrors: maxErrors, RejectFile: rejectFile,
				OnDuplicate: onDup, Progress: show, ProgressInterval: 200 * time.Millisecond, Logger: slog.Default(),
			}
			if !raw {
				// A SQL table: rows are encoded as sql-lite writes them.
				o.NewEncoder, o.EncoderID = sqllite.NewImportEncoder, "sql"
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			sum, err := importer.Run(cmd.Context(), o)
			if finish != nil {
				finish(err)
			}
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return fmt.Errorf("import interrupted; run the same command again to resume (work directory %s)", workDir)
				}
				return err
			}
			if progress == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"summary": sum.Fields()})
			}
			sum.WriteReport(cmd.OutOrStdout(), workDir)
			return nil
		},
	}
	fl := cmd.Flags()
	addClientTLSFlags(fl)
	fl.StringVar(&httpAddr, "http-addr", "", "serve the job's progress on /metrics (and pprof) at this HOST:PORT while it runs")
	fl.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	fl.StringVar(&table, "table", "", "target table (must exist)")
	fl.BoolVar(&raw, "raw", false, "import into a raw table with --row-key and --map")
	fl.StringVar(&rowKey, "row-key", "", "input column holding the row key")
	fl.StringVar(&mapping, "map", "", "column=family:qualifier,... cells to write")
	fl.StringVar(&format, "format", "csv", "input format: csv, tsv or jsonl")
	fl.BoolVar(&header, "header", false, "the first CSV/TSV record names the columns")
	fl.StringVar(&columns, "columns", "", "column names a,b,c (overrides the header)")
	fl.StringVar(&delimiter, "delimiter", "", `field delimiter (default "," for csv, tab for tsv)`)
	fl.StringVar(&null, "null", "", "field text meaning NULL (no cell); unset: no NULLs")
	fl.StringVar(&workDir, "work-dir", "", "directory for sorted runs and the checkpoint (default ./shale-import-TABLE)")
	fl.IntVar(&memory, "memory", 256<<20, "bytes of memory for sorting")
	fl.IntVar(&parallel, "parallel", 2, "input files read at once")
	fl.IntVar(&sstSize, "sst-size", 8<<20, "target bytes of one SST (at most 12 MiB)")
	fl.IntVar(&ingestParallel, "ingest-parallel", 4, "SSTs uploaded and ingested at once")
	fl.Int64Var(&splitSize, "split-size", 64<<20, "split the table every this many bytes of data (negative: no splits)")
	fl.Int64Var(&maxErrors, "max-errors", 0, "skip up to N malformed rows (written to the reject file)")
	fl.StringVar(&rejectFile, "reject-file", "", "where skipped rows go (default WORK-DIR/rejects.txt)")
	fl.StringVar(&onDup, "on-duplicate", "error", "a row key given twice: error or last (the last record wins)")
	fl.StringVar(&progress, "progress", "bar", "progress display: bar, json (lines on stdout) or none")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the import to this file")
	_ = fl.MarkHidden("cpuprofile")
	_ = cmd.MarkFlagRequired("table")
	return cmd
}

// startCPUProfile profiles the importer (hidden --cpuprofile, for
// performance work); the returned func stops and closes it.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// progressJSON prints one JSON object per progress report.
func progressJSON(w io.Writer) (func(importer.Progress), func(error)) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(p importer.Progress) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(map[string]any{"progress": p})
	}, nil
}

// progressBar draws one mpb bar: phase, fraction of the phase, rows/s,
// MiB/s and ETA.
func progressBar(ctx context.Context, w io.Writer) (func(importer.Progress), func(error)) {
	const scale = 10000
	var mu sync.Mutex
	var last importer.Progress
	var rate importer.RateMeter
	pb := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(100), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	text := func(f func(p importer.Progress) string) decor.Decorator {
		return decor.Any(func(decor.Statistics) string {
			mu.Lock()
			defer mu.Unlock()
			return f(last)
		})
	}
	bar := pb.New(scale, mpb.BarStyle(),
		mpb.PrependDecorators(text(func(p importer.Progress) string { return fmt.Sprintf("%-7s", p.Phase) })),
		mpb.AppendDecorators(text(func(p importer.Progress) string {
			rows, mib, eta := rate.Rates(p)
			return fmt.Sprintf(" %5.1f%% %7.0f rows/s %5.1f MiB/s ETA %s", 100*p.Fraction(), rows, mib, eta)
		})),
	)
	show := func(p importer.Progress) {
		mu.Lock()
		last = p
		rate.Observe(p)
		mu.Unlock()
		bar.SetCurrent(int64(p.Fraction() * scale))
	}
	finish := func(err error) {
		if err != nil {
			bar.Abort(false) // keep the last state on screen
		} else {
			bar.SetCurrent(scale) // completes the bar
		}
		pb.Wait()
	}
	return show, finish
}
