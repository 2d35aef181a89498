package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/sql-lite/shell"
)

func init() { subcommands = append(subcommands, newSQLCommand) }

// sqlFlags are the shell's flags, shared by `shale sql` and
// `shale playground --sql`.
type sqlFlags struct {
	execute  string
	files    []string
	format   string
	cont     bool
	timing   bool
	demo     bool
	history  string
	noHist   bool
	pdTimout time.Duration
}

func (f *sqlFlags) register(cmd *cobra.Command, withDemo bool) {
	fl := cmd.Flags()
	fl.StringVarP(&f.execute, "execute", "e", "", "run these SQL statements (after any -f scripts) and exit")
	fl.StringArrayVarP(&f.files, "file", "f", nil, "run the statements of this file and exit (repeatable; - is standard input)")
	fl.StringVar(&f.format, "format", "table", "output format: table|csv|tsv|json (csv/tsv: header row, NULL as an empty field; json: one object per row)")
	fl.BoolVar(&f.cont, "continue", false, "scripts: go on after a failed statement (the exit status is still 1)")
	fl.BoolVar(&f.timing, "timing", false, "scripts: print each statement's time too (the interactive shell always does)")
	fl.StringVar(&f.history, "history", shell.DefaultHistoryFile(), "the interactive shell's history file")
	fl.BoolVar(&f.noHist, "no-history", false, "keep no history file")
	if withDemo {
		fl.BoolVar(&f.demo, "demo", false, "first create and fill the sample tables customers and orders")
	}
}

func (f *sqlFlags) options(cmd *cobra.Command, pd []string) (shell.Options, error) {
	if f.format == "" {
		f.format = string(shell.FormatTable)
	}
	format, err := shell.ParseFormat(f.format)
	if err != nil {
		return shell.Options{}, err
	}
	o := shell.Options{
		PD: pd, Files: f.files, Execute: f.execute, Format: format,
		Continue: f.cont, Timing: f.timing, Demo: f.demo, HistoryFile: f.history,
		ConnectTimeout: f.pdTimout,
		Stdin:          cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
	}
	if f.noHist {
		o.HistoryFile = ""
	}
	return o, nil
}

// sqlError makes a failed statement (already reported by the shell) exit 1
// without cobra printing it again.
func sqlError(cmd *cobra.Command, err error) error {
	if err != nil && !errors.Is(err, shell.ErrStatementFailed) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Error: %v\n", err)
	}
	return err
}

func newSQLCommand() *cobra.Command {
	var (
		f  sqlFlags
		pd string
	)
	cmd := &cobra.Command{
		Use:   "sql",
		Short: "SQL shell: tables with primary keys, joins, aggregates (sql-lite)",
		Long: `Open the SQL shell on a cluster (interactive when standard input is a
terminal), or run SQL from -e, -f or standard input and exit.

The interactive shell has line editing, history (Up/Down, Ctrl-R; kept in
--history), statements over several lines ended by ';', Tab completion of
keywords, tables and columns, and shell commands (type 'help'). Ctrl-C
cancels the running statement or drops the one being typed; Ctrl-D exits.

Scripts stop at the first failing statement with exit status 1 (the error
names the line), or with --continue run to the end and exit 1 if any
statement failed.`,
		Example: `  shale sql --pd 127.0.0.1:2379
  shale sql --pd 127.0.0.1:2379 --demo
  shale sql --pd 127.0.0.1:2379 -e "SELECT * FROM customers WHERE id < 3" --format csv
  shale sql --pd 127.0.0.1:2379 -f schema.sql -f data.sql --continue
  shale playground --sql --demo            (a local cluster and the shell on it)`,
		Args:          cobra.NoArgs,
		SilenceErrors: true, // sqlError prints what the shell did not
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd, strings.Split(pd, ","))
			if err != nil {
				return sqlError(cmd, err)
			}
			if o.TLS, err = clientTLS(cmd); err != nil {
				return sqlError(cmd, err)
			}
			return sqlError(cmd, shell.Main(cmd.Context(), o))
		},
	}
	cmd.Flags().StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	cmd.Flags().DurationVar(&f.pdTimout, "connect-timeout", 10*time.Second, "give up connecting to the cluster after this long")
	f.register(cmd, true)
	addClientTLSFlags(cmd.Flags())
	return cmd
}
