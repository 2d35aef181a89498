package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/tablefmt"
)

func init() { subcommands = append(subcommands, newTableCommand) }

// errRowNotFound makes `shale table lookup` exit 1 with "row not found".
var errRowNotFound = errors.New("row not found")

// newTableCommand is a cbt-like command line for tables, column families
// and rows on kvclient's table API.
func newTableCommand() *cobra.Command {
	var (
		pd      string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Create, inspect, read and write tables (like Bigtable's cbt)",
		Long: `Create, inspect, read and write tables, in the manner of Bigtable's cbt.

Row keys, qualifiers and values are taken literally from the arguments.
Cells are printed as

  ROW
    FAMILY:QUALIFIER @ TIMESTAMP
      "VALUE"

with timestamps in UTC and values quoted as Go string literals.`,
		Example: `  shale table --pd 127.0.0.1:2379 create users info:maxversions=3 stats:maxage=24h --split m
  shale table --pd 127.0.0.1:2379 ls
  shale table --pd 127.0.0.1:2379 describe users
  shale table --pd 127.0.0.1:2379 set users alice info:name=Alice info:email=alice@example.com
  shale table --pd 127.0.0.1:2379 lookup users alice
  shale table --pd 127.0.0.1:2379 read users start=a end=n count=10
  shale table --pd 127.0.0.1:2379 deleterow users alice
  shale table --pd 127.0.0.1:2379 drop users`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	pf.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	addClientTLSFlags(pf)

	// run connects and calls f with a context bounded by --timeout.
	run := func(cmd *cobra.Command, f func(ctx context.Context, c *kvclient.Client, out io.Writer) error) error {
		if timeout <= 0 {
			return fmt.Errorf("--timeout must be positive, got %v", timeout)
		}
		addrs, err := tablePDAddrs(pd)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		tls, err := clientTLS(cmd)
		if err != nil {
			return err
		}
		c, err := kvclient.Open(ctx, kvclient.Options{PD: addrs, TLS: tls})
		if err != nil {
			return err
		}
		defer c.Close()
		w := bufio.NewWriter(cmd.OutOrStdout())
		err = f(ctx, c, w)
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		return err
	}

	cmd.AddCommand(
		newTableCreateCommand(run),
		newTableLsCommand(run),
		newTableDescribeCommand(run),
		newTableDropCommand(run),
		newTableSetCommand(run),
		newTableLookupCommand(run),
		newTableReadCommand(run),
		newTableCountCommand(run),
		newTableDeleteRowCommand(run),
	)
	cmd.AddCommand(newTableFamilyCommands(run)...)
	tablePrefixErrors(cmd)
	return cmd
}

type tableRunFunc = func(cmd *cobra.Command, f func(ctx context.Context, c *kvclient.Client, out io.Writer) error) error

func newTableCreateCommand(run tableRunFunc) *cobra.Command {
	var splits []string
	cmd := &cobra.Command{
		Use:     "create NAME FAMILY[:maxversions=N,maxage=D]...",
		Aliases: []string{"createtable"},
		Short:   "Create a table with column families and optional split rows",
		Long: `Create a table with one or more column families, each with an optional
garbage-collection policy:

  maxversions=N  keep at most N versions per column (N >= 1)
  maxage=D       drop versions older than D, a Go duration such as 90s, 36h
                 or 1h30m (millisecond granularity)

A family without a policy keeps every version forever. --split ROW
(repeatable) pre-splits the table so that a tablet starts at ROW.`,
		Example: `  shale table create users info
  shale table create users info:maxversions=3 stats:maxage=24h
  shale table create events e:maxversions=1,maxage=720h --split g --split p`,
		Args: tableArgs(2, -1, "NAME FAMILY[:POLICY]..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := tableNonEmpty("table NAME", name); err != nil {
				return err
			}
			fams, err := tablefmt.ParseFamilies(args[1:])
			if err != nil {
				return err
			}
			splitRows, err := tablefmt.ParseSplitRows(splits)
			if err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, _ io.Writer) error {
				_, err := c.CreateTable(ctx, name, fams, splitRows...)
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&splits, "split", nil, "pre-split the table at this row key (repeatable)")
	return cmd
}

func newTableLsCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List table names, one per line (the built-in kv table included)",
		Example: `  shale table --pd 127.0.0.1:2379 ls`,
		Args:    tableArgs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, func(ctx context.Context, c *kvclient.Client, out io.Writer) error {
				tables, err := c.ListTables(ctx)
				if err != nil {
					return err
				}
				tablefmt.WriteTableNames(out, tables)
				return nil
			})
		},
	}
}

func newTableDescribeCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Print a table's column families with their GC policies, and its split rows",
		Long: `Print a table's column families with their garbage-collection policies as an
aligned table ("-": no limit), then the rows it was pre-split at, if any.`,
		Example: `  shale table --pd 127.0.0.1:2379 describe users`,
		Args:    tableArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tableNonEmpty("table NAME", args[0]); err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, out io.Writer) error {
				ti, err := c.DescribeTable(ctx, args[0])
				if err != nil {
					return err
				}
				return tablefmt.WriteTableInfo(out, ti)
			})
		},
	}
}

func newTableDropCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:     "drop NAME",
		Aliases: []string{"deletetable"},
		Short:   "Drop a table and all its data",
		Example: `  shale table --pd 127.0.0.1:2379 drop users`,
		Args:    tableArgs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tableNonEmpty("table NAME", args[0]); err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, _ io.Writer) error {
				return c.DropTable(ctx, args[0])
			})
		},
	}
}

func newTableSetCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME ROW FAMILY:QUALIFIER=VALUE[@TS]...",
		Short: "Write cells of one row atomically",
		Long: `Write one or more cells of a row in one atomic mutation, at the commit
timestamp or, for a value ending in @TS (TS: decimal microseconds since
the epoch, as cbt takes it), at TS. The family ends at the first ':' and
the qualifier at the first '=' after it; the value is the rest (it may
contain ':', '=' and '@' not followed by digits only).`,
		Example: `  shale table set users alice info:name=Alice
  shale table set users alice info:name=Alice info:email=alice@example.com stats:visits=1
  shale table set users alice info:name=Alice@1700000000000000`,
		Args: tableArgs(3, -1, "NAME ROW FAMILY:QUALIFIER=VALUE[@TS]..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, row := args[0], args[1]
			if err := tableNonEmpty("table NAME", name); err != nil {
				return err
			}
			if err := tableNonEmpty("ROW", row); err != nil {
				return err
			}
			muts, err := tablefmt.ParseSetCells(args[2:])
			if err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, _ io.Writer) error {
				t, err := c.Table(ctx, name)
				if err != nil {
					return err
				}
				_, err = t.MutateRow(ctx, []byte(row), muts...)
				return err
			})
		},
	}
}

func newTableLookupCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "lookup NAME ROW",
		Short: "Print a row's cells; exit 1 with \"row not found\" when absent",
		Long: `Print a row's cells (the newest version of each column): the row key, then
for each cell "  FAMILY:QUALIFIER @ TIMESTAMP" and the quoted value on the
next line. Exit status 1 with "row not found" when the row has no cells.`,
		Example: `  shale table --pd 127.0.0.1:2379 lookup users alice`,
		Args:    tableArgs(2, 2, "NAME ROW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, row := args[0], args[1]
			if err := tableNonEmpty("table NAME", name); err != nil {
				return err
			}
			if err := tableNonEmpty("ROW", row); err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, out io.Writer) error {
				t, err := c.Table(ctx, name)
				if err != nil {
					return err
				}
				r, err := t.Get(ctx, []byte(row))
				if err != nil {
					return err
				}
				if r == nil || len(r.Cells) == 0 {
					return fmt.Errorf("%w: %q in table %q", errRowNotFound, row, name)
				}
				tablefmt.WriteRow(out, r)
				return nil
			})
		},
	}
}

func newTableReadCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "read NAME [start=ROW] [end=ROW] [prefix=P] [regex=RE] [columns=FAM[:QUAL],...] [count=N] [keys-only=true]",
		Short: "Print the rows in [start, end), each after a line of dashes",
		Long: `Print rows in key order, in the format of lookup, each preceded by a line of
dashes (as cbt does). Arguments, each at most once:

  start=ROW             first row (inclusive)
  end=ROW               end row (exclusive)
  prefix=P              the rows starting with P (not with start= or end=)
  regex=RE              the rows whose whole key matches RE (RE2 syntax);
                        filtered by this client, the servers send every row
  columns=FAM[:QUAL],.. only these families (FAM or FAM:) and columns
  count=N               stop after N rows (after regex=)
  keys-only=true        print the row keys only`,
		Example: `  shale table --pd 127.0.0.1:2379 read users
  shale table --pd 127.0.0.1:2379 read users start=a end=n
  shale table --pd 127.0.0.1:2379 read users prefix=user1 columns=info:name,stats count=10
  shale table --pd 127.0.0.1:2379 read users regex='user[0-9]+7' keys-only=true`,
		Args: tableArgs(1, 8, "NAME [start=ROW] [end=ROW] [prefix=P] [regex=RE] [columns=...] [count=N] [keys-only=BOOL]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := tableNonEmpty("table NAME", name); err != nil {
				return err
			}
			a, err := tablefmt.ParseReadArgs(args[1:], nil)
			if err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, out io.Writer) error {
				_, err := scanTable(ctx, c, name, a, func(r *kvclient.Row) {
					fmt.Fprintln(out, tablefmt.RowSeparator)
					if a.KeysOnly {
						fmt.Fprintf(out, "%s\n", r.Key)
						return
					}
					tablefmt.WriteRow(out, r)
				})
				return err
			})
		},
	}
}

func newTableCountCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "count NAME [start=ROW] [end=ROW] [prefix=P] [regex=RE]",
		Short: "Print the number of rows (in a range)",
		Long: `Print the number of rows of a table, or of the rows read selects with the
same start=, end=, prefix= and regex= arguments. The servers send a digest
of each row, not its cells.`,
		Example: `  shale table --pd 127.0.0.1:2379 count users
  shale table --pd 127.0.0.1:2379 count users prefix=user1`,
		Args: tableArgs(1, 5, "NAME [start=ROW] [end=ROW] [prefix=P] [regex=RE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := tableNonEmpty("table NAME", name); err != nil {
				return err
			}
			a, err := tablefmt.ParseReadArgs(args[1:], []string{"start", "end", "prefix", "regex"})
			if err != nil {
				return err
			}
			a.KeysOnly = true
			a.Scan.Read = append(a.Scan.Read, kvclient.Digest())
			return run(cmd, func(ctx context.Context, c *kvclient.Client, out io.Writer) error {
				n, err := scanTable(ctx, c, name, a, func(*kvclient.Row) {})
				if err == nil {
					fmt.Fprintln(out, n)
				}
				return err
			})
		},
	}
}

// scanTable calls f for each row read selects (regex= and count= applied
// here) and returns how many there were.
func scanTable(ctx context.Context, c *kvclient.Client, name string, a tablefmt.ReadArgs, f func(*kvclient.Row)) (int, error) {
	t, err := c.Table(ctx, name)
	if err != nil {
		return 0, err
	}
	sc := t.Scan(ctx, a.Scan)
	defer sc.Close()
	n := 0
	for (a.Limit == 0 || n < a.Limit) && sc.Next() {
		r := sc.Row()
		if (a.KeysOnly && r.CellCount == 0 && len(r.Cells) == 0) || !a.Match(r.Key) {
			continue
		}
		f(r)
		n++
	}
	return n, sc.Err()
}

func newTableDeleteRowCommand(run tableRunFunc) *cobra.Command {
	return &cobra.Command{
		Use:     "deleterow NAME ROW",
		Short:   "Delete every cell of a row",
		Example: `  shale table --pd 127.0.0.1:2379 deleterow users alice`,
		Args:    tableArgs(2, 2, "NAME ROW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, row := args[0], args[1]
			if err := tableNonEmpty("table NAME", name); err != nil {
				return err
			}
			if err := tableNonEmpty("ROW", row); err != nil {
				return err
			}
			return run(cmd, func(ctx context.Context, c *kvclient.Client, _ io.Writer) error {
				t, err := c.Table(ctx, name)
				if err != nil {
					return err
				}
				_, err = t.MutateRow(ctx, []byte(row), kvclient.DeleteRow())
				return err
			})
		},
	}
}

// tablePrefixErrors makes every error of the table subcommands start with
// "table SUBCOMMAND: ", keeping the wrapped error for errors.Is.
func tablePrefixErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		if c.RunE == nil {
			continue
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err != nil {
				err = fmt.Errorf("%s: %w", tableCmdName(cmd), err)
			}
			return err
		}
	}
}

// tableCmdName is "table SUBCOMMAND".
func tableCmdName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// tableArgs checks the number of positional arguments (hi -1: no limit)
// and names the expected ones in its error.
func tableArgs(lo, hi int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && (hi < 0 || len(args) <= hi) {
			return nil
		}
		want := "no arguments"
		if names != "" {
			want = names
		}
		return fmt.Errorf("%s: want %s, got %d argument(s) (usage: %s; see --help)",
			tableCmdName(cmd), want, len(args), cmd.UseLine())
	}
}

func tableNonEmpty(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s must not be empty", what)
	}
	return nil
}

// tablePDAddrs splits --pd into addresses.
func tablePDAddrs(pd string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(pd, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("--pd: no placement driver address in %q", pd)
	}
	return addrs, nil
}
