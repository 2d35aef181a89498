package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/shaledb/shale/importer"
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
		cpuProfile                                                            string
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
				d := delimiter
				if d == `\t` || d == "tab" {
					d = "\t"
				}
				r, n := utf8.DecodeRuneInString(d)
				if n != len(d) || r == utf8.RuneError {
					return fmt.Errorf("--delimiter must be one character, got %q", delimiter)
				}
				src.Delimiter = r
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
			o := importer.Options{
				PD: addrs, Table: table, Inputs: args, Stdin: cmd.InOrStdin(), Source: src,
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
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"summary": summaryJSON(sum)})
			}
			printSummary(cmd.OutOrStdout(), sum, workDir)
			return nil
		},
	}
	fl := cmd.Flags()
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

func summaryJSON(s *importer.Summary) map[string]any {
	secs := max(s.Duration.Seconds(), 1e-9)
	return map[string]any{
		"table": s.Table, "timestamp": s.Timestamp, "rows": s.Rows, "cells": s.Cells, "bytes": s.Bytes,
		"input_rows": s.InputRows, "input_bytes": s.InputBytes, "rejected": s.Rejected, "duplicates": s.Duplicates,
		"ssts": s.SSTs, "recuts": s.Recuts, "verified_rows": s.VerifiedRows, "resumed": s.Resumed,
		"duration_s": s.Duration.Seconds(), "rows_per_s": float64(s.Rows) / secs, "mib_per_s": float64(s.Bytes) / (1 << 20) / secs,
		"reject_file": s.RejectFile, "checksum": s.Checksum, "verified_checksum": s.VerifiedChecksum,
	}
}

func printSummary(w io.Writer, s *importer.Summary, workDir string) {
	secs := max(s.Duration.Seconds(), 1e-9)
	fmt.Fprintf(w, "Imported %d rows (%d cells, %.1f MiB) into %q in %s", s.Rows, s.Cells, float64(s.Bytes)/(1<<20), s.Table, s.Duration.Round(time.Millisecond))
	if s.Resumed {
		fmt.Fprint(w, " (resumed; time of this run)")
	}
	fmt.Fprintf(w, "\n  throughput  %.0f rows/s, %.1f MiB/s\n", float64(s.Rows)/secs, float64(s.Bytes)/(1<<20)/secs)
	fmt.Fprintf(w, "  input       %d rows, %.1f MiB\n", s.InputRows, float64(s.InputBytes)/(1<<20))
	fmt.Fprintf(w, "  rejected    %d", s.Rejected)
	if s.RejectFile != "" {
		fmt.Fprintf(w, " (see %s)", s.RejectFile)
	}
	fmt.Fprintf(w, "\n  duplicates  %d rows", s.Duplicates)
	if s.Duplicates > 0 {
		fmt.Fprint(w, " (the last record of each kept)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  SSTs        %d ingested, %d re-cut after a split or move\n", s.SSTs, s.Recuts)
	fmt.Fprintf(w, "  verified    %d rows hold a cell at timestamp %d", s.VerifiedRows, s.Timestamp)
	switch {
	case s.Checksum != "" && s.Checksum == s.VerifiedChecksum:
		fmt.Fprintf(w, "; cells match the input (digest %s)", s.Checksum)
	case s.VerifiedRows != s.Rows:
		fmt.Fprintf(w, "; %d differ from the %d imported (deleted or collected since?)", s.Rows-s.VerifiedRows, s.Rows)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  work dir    %s (remove it when done)\n", filepath.Clean(workDir))
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
	var rate rateMeter
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
			rows, mib, eta := rate.rates(p)
			return fmt.Sprintf(" %5.1f%% %7.0f rows/s %5.1f MiB/s ETA %s", 100*fraction(p), rows, mib, eta)
		})),
	)
	show := func(p importer.Progress) {
		mu.Lock()
		last = p
		rate.observe(p)
		mu.Unlock()
		bar.SetCurrent(int64(fraction(p) * scale))
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

// fraction is how far the job is: parsing counts for the first 30%,
// ingesting for the rest.
func fraction(p importer.Progress) float64 {
	switch p.Phase {
	case "parse", "start":
		if p.InputTotal > 0 {
			return 0.3 * min(1, float64(p.InputBytes)/float64(p.InputTotal))
		}
		return 0
	case "split":
		return 0.3
	case "ingest":
		if p.SortedBytes > 0 {
			return 0.3 + 0.7*min(1, float64(p.IngestedBytes)/float64(p.SortedBytes))
		}
		return 0.3
	}
	return 1
}

// rateMeter turns progress snapshots into recent rates and an ETA.
type rateMeter struct {
	prev importer.Progress
	rows float64 // per second, smoothed
	mib  float64
}

func (r *rateMeter) observe(p importer.Progress) {
	dt := (p.Elapsed - r.prev.Elapsed).Seconds()
	if dt <= 0 {
		return
	}
	var rows, bytes float64
	if p.Phase == "ingest" {
		rows, bytes = float64(p.IngestedRows-r.prev.IngestedRows), float64(p.IngestedBytes-r.prev.IngestedBytes)
	} else {
		rows, bytes = float64(p.InputRows-r.prev.InputRows), float64(p.InputBytes-r.prev.InputBytes)
	}
	if rows < 0 || bytes < 0 || p.Phase != r.prev.Phase {
		rows, bytes = 0, 0
	}
	const a = 0.3
	r.rows = a*rows/dt + (1-a)*r.rows
	r.mib = a*bytes/(1<<20)/dt + (1-a)*r.mib
	r.prev = p
}

func (r *rateMeter) rates(p importer.Progress) (rows, mib float64, eta string) {
	f := fraction(p)
	if p.Phase == "verify" || p.Phase == "done" {
		// Past the ingest: show the job's averages, not a decayed rate.
		secs := max(p.Elapsed.Seconds(), 1e-9)
		return float64(p.IngestedRows) / secs, float64(p.IngestedBytes) / (1 << 20) / secs, "0s"
	}
	eta = "--"
	if f > 0.01 && f < 1 {
		left := time.Duration(float64(p.Elapsed) * (1 - f) / f)
		eta = left.Round(time.Second).String()
	} else if f >= 1 {
		eta = "0s"
	}
	return r.rows, r.mib, eta
}
