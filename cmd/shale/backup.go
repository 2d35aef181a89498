package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/shaledb/shale/backup"
)

func init() { subcommands = append(subcommands, newBackupCommand, newRestoreCommand) }

// newBackupCommand is `shale backup` and its ls and verify (backup package).
func newBackupCommand() *cobra.Command {
	var (
		pd, to, at, since, progress string
		tables                      []string
		parallel, perStore          int
		fileSize                    int
		ttl                         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "backup --pd ADDRS --to URL [--table T ...] [--at TS|now] [--since PREVIOUS_URL]",
		Short: "Back up tables, consistent at one timestamp, to file:// or s3:// (full or incremental)",
		Long: `Back up the cluster's tables (or the --table ones) as they were at one
timestamp: every cell with a commit timestamp at or before it, and none after.
Each tablet's cells are written as SST files by one of its replicas (a
follower when it can serve the timestamp), stores in parallel, each store
rate-limiting the reads as background work. While the backup runs it holds
a GC safe point in the placement driver, so no version it needs is
collected.

--since PREVIOUS_URL writes an incremental backup: the versions written
after the previous backup's timestamp, plus the list of older cells still
present (deletes reach a restore that way).

A killed backup resumes where it stopped: run the same command again.
The destination holds backupmeta.json (the manifest) once it is complete.

URLs: file:///path/to/dir, or s3://bucket/prefix?region=R[&endpoint=URL&use_path_style=true]
(credentials from the usual AWS environment variables or files).`,
		Example: `  shale backup --pd 127.0.0.1:2379 --to file:///backups/mon
  shale backup --pd 127.0.0.1:2379 --to file:///backups/tue --since file:///backups/mon
  shale backup --pd 127.0.0.1:2379 --table accounts --to 's3://bk/shale/mon?region=eu-west-1'
  shale backup ls file:///backups
  shale backup verify file:///backups/tue`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return errors.New("--to URL is required (file:///dir or s3://bucket/prefix)")
			}
			addrs, err := tablePDAddrs(pd)
			if err != nil {
				return err
			}
			var ts int64
			if at != "" && at != "now" {
				if ts, err = strconv.ParseInt(at, 10, 64); err != nil || ts <= 0 {
					return fmt.Errorf("--at %q: want now or a timestamp (microseconds, as shale prints them)", at)
				}
			}
			tls, err := clientTLS(cmd)
			if err != nil {
				return err
			}
			show, finish, err := backupProgress(cmd, progress)
			if err != nil {
				return err
			}
			sum, err := backup.Run(cmd.Context(), backup.Options{
				PD: addrs, TLS: tls, To: to, Tables: tables, At: ts, Since: since, Parallel: parallel, PerStore: perStore,
				FileBytes: fileSize, SafePointTTL: ttl, ShaleVersion: version, Progress: show, ProgressInterval: 200 * time.Millisecond, Logger: slog.Default(),
			})
			if finish != nil {
				finish(err)
			}
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return fmt.Errorf("backup interrupted; run the same command again to resume it (%s)", to)
				}
				return err
			}
			if progress == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"summary": sum.Fields()})
			}
			sum.WriteReport(cmd.OutOrStdout())
			return nil
		},
	}
	fl := cmd.Flags()
	addClientTLSFlags(fl)
	fl.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	fl.StringVar(&to, "to", "", "destination URL: file:///dir or s3://bucket/prefix?region=...")
	fl.StringSliceVar(&tables, "table", nil, "table to back up (repeat; default: every table)")
	fl.StringVar(&at, "at", "now", "timestamp to back up at: now, or microseconds")
	fl.StringVar(&since, "since", "", "URL of the previous backup: write an incremental one")
	fl.IntVar(&parallel, "parallel", 4, "tablets exported at once")
	fl.IntVar(&perStore, "per-store", 2, "tablets exported at once from one store")
	fl.IntVar(&fileSize, "file-size", 8<<20, "target bytes of one backup file")
	fl.DurationVar(&ttl, "safe-point-ttl", 5*time.Minute, "TTL of the backup's GC safe point (renewed while it runs; a killed backup must resume within it)")
	fl.StringVar(&progress, "progress", "bar", "progress display: bar, json (lines on stdout) or none")
	cmd.AddCommand(newBackupLsCommand(), newBackupVerifyCommand())
	return cmd
}

func newBackupLsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls URL",
		Short: "List the backup at URL, or the backups in its subdirectories",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			infos, err := backup.List(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "URL\tID\tKIND\tTIMESTAMP\tTIME\tTABLES\tCELLS\tFILES\tMIB\tVERSION")
			for _, in := range infos {
				m := in.Manifest
				kind := "full"
				if m.Since > 0 {
					kind = "incremental of " + m.ParentID
				}
				var names []string
				for _, t := range m.Tables {
					names = append(names, t.Name)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%.1f\t%s\n", in.URL, m.ID, kind, m.Timestamp,
					time.UnixMicro(m.Timestamp).UTC().Format(time.RFC3339), strings.Join(names, ","), in.Cells, in.Files, float64(in.Bytes)/(1<<20), m.ShaleVersion)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifests as JSON")
	return cmd
}

func newBackupVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify URL",
		Short: "Check every file of a backup (and of its chain) against its size and SHA-256",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := backup.Verify(cmd.Context(), args[0])
			if res != nil {
				for _, e := range res.Errors {
					fmt.Fprintln(cmd.ErrOrStderr(), e)
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d files (%.1f MiB) in a chain of %d backups match their checksums\n", res.Files, float64(res.Bytes)/(1<<20), res.Chain)
			return nil
		},
	}
}

func newRestoreCommand() *cobra.Command {
	var (
		pd, from, as, workDir, progress string
		tables                          []string
		parallel, sstSize               int
	)
	cmd := &cobra.Command{
		Use:   "restore --from URL [--table T [--as NEW]] --pd ADDRS",
		Short: "Restore a backup (full, or the chain of an incremental) through the bulk import path",
		Long: `Restore the tables of a backup, as they were at its timestamp, into the
cluster: into an empty cluster, or as new tables (--as) in a live one. An
incremental backup brings its chain (the full backup and the incrementals
before it, named in the manifests). Cells keep their timestamps. The table is
split where the backup's tablets were, the leaders spread, and SSTs are
staged on every replica and ingested by reference, as shale import does.
At the end the tablet servers digest the restored table and the digest must
equal the backup's. A killed restore resumes: run the same command again
(the work directory records what is done).`,
		Example: `  shale restore --pd 127.0.0.1:2379 --from file:///backups/tue
  shale restore --pd 127.0.0.1:2379 --from file:///backups/tue --table accounts --as accounts_tue`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return errors.New("--from URL is required")
			}
			addrs, err := tablePDAddrs(pd)
			if err != nil {
				return err
			}
			tls, err := clientTLS(cmd)
			if err != nil {
				return err
			}
			show, finish, err := backupProgress(cmd, progress)
			if err != nil {
				return err
			}
			sum, err := backup.Restore(cmd.Context(), backup.RestoreOptions{
				PD: addrs, TLS: tls, From: from, Tables: tables, As: as, WorkDir: workDir, Parallel: parallel, SSTBytes: sstSize,
				Progress: show, ProgressInterval: 200 * time.Millisecond, Logger: slog.Default(),
			})
			if finish != nil {
				finish(err)
			}
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return errors.New("restore interrupted; run the same command again to resume it")
				}
				return err
			}
			if progress == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"summary": sum.Fields()})
			}
			sum.WriteReport(cmd.OutOrStdout())
			return nil
		},
	}
	fl := cmd.Flags()
	addClientTLSFlags(fl)
	fl.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	fl.StringVar(&from, "from", "", "URL of the backup to restore")
	fl.StringSliceVar(&tables, "table", nil, "table of the backup to restore (repeat; default: all)")
	fl.StringVar(&as, "as", "", "restore the one --table under this new name")
	fl.StringVar(&workDir, "work-dir", "", "directory recording progress (default ./shale-restore-BACKUPID)")
	fl.IntVar(&parallel, "parallel", 4, "key ranges restored at once")
	fl.IntVar(&sstSize, "sst-size", 8<<20, "target bytes of one ingested SST (at most 12 MiB)")
	fl.StringVar(&progress, "progress", "bar", "progress display: bar, json (lines on stdout) or none")
	return cmd
}

// backupProgress is the --progress display of backup and restore.
func backupProgress(cmd *cobra.Command, mode string) (func(backup.Progress), func(error), error) {
	switch mode {
	case "bar":
		show, finish := backupBar(cmd.Context(), cmd.ErrOrStderr())
		return show, finish, nil
	case "json":
		var mu sync.Mutex
		enc := json.NewEncoder(cmd.OutOrStdout())
		return func(p backup.Progress) {
			mu.Lock()
			defer mu.Unlock()
			_ = enc.Encode(map[string]any{"progress": p})
		}, nil, nil
	case "none":
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("--progress %q: want bar, json or none", mode)
}

func backupBar(ctx context.Context, w io.Writer) (func(backup.Progress), func(error)) {
	const scale = 10000
	var mu sync.Mutex
	var last backup.Progress
	pb := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(100), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	bar := pb.New(scale, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("%-7s", last.Phase)
		})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			mu.Lock()
			defer mu.Unlock()
			mib, eta := last.Rates()
			return fmt.Sprintf(" %5.1f%% %d pieces %d cells %5.1f MiB/s ETA %s", 100*last.Fraction(), last.Pieces, last.Cells, mib, eta)
		})),
	)
	show := func(p backup.Progress) {
		mu.Lock()
		last = p
		mu.Unlock()
		bar.SetCurrent(int64(p.Fraction() * scale))
	}
	finish := func(err error) {
		if err != nil {
			bar.Abort(false)
		} else {
			bar.SetCurrent(scale)
		}
		pb.Wait()
	}
	return show, finish
}
