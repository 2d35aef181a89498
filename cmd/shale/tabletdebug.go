package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/tabletserver/node"
)

func init() { subcommands = append(subcommands, newTabletDebugCommand) }

// newTabletDebugCommand is a stopgap client for the bootstrap tablet's
// raw-KV table until `shale kv` and kvclient exist.
func newTabletDebugCommand() *cobra.Command {
	var stores string
	cmd := &cobra.Command{
		Use:   "tablet-debug",
		Short: "Read and write the raw-KV table of tablet 1 directly (debugging aid)",
		Long: `Read and write table 1 ("kv", family "v", empty qualifier) on tablet 1 of a
static cluster started with 'shale tablet --bootstrap'. Requests go to the
tablet's leader, following not-leader hints, and are retried with backoff
for up to 10s. This is a debugging aid until 'shale kv' exists.`,
		Example: `  shale tablet-debug --stores 1=127.0.0.1:20161,2=127.0.0.1:20162 put row1 hello
  shale tablet-debug --stores 1=127.0.0.1:20161 get row1
  shale tablet-debug --stores 1=127.0.0.1:20161 scan`,
	}
	cmd.PersistentFlags().StringVar(&stores, "stores", "1=127.0.0.1:20160", "store map STORE_ID=HOST:PORT,... (any subset of the cluster)")

	client := func() (*node.DebugClient, error) {
		m, err := node.ParsePeers(stores)
		if err != nil {
			return nil, fmt.Errorf("--stores: %w", err)
		}
		return node.NewDebugClient(m)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "put ROW VALUE",
		Short: "Set ROW to VALUE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Put(cmd.Context(), []byte(args[0]), []byte(args[1]))
		},
	}, &cobra.Command{
		Use:   "get ROW",
		Short: "Print ROW's value; exit 1 if the row does not exist",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			defer c.Close()
			v, found, err := c.Get(cmd.Context(), []byte(args[0]))
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("row %q not found", args[0])
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
			return err
		},
	}, &cobra.Command{
		Use:   "scan",
		Short: "Print every row as ROW<TAB>VALUE, in key order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			return c.Scan(cmd.Context(), func(row, value []byte) error {
				_, err := fmt.Fprintf(out, "%s\t%s\n", quoteIfNeeded(row), quoteIfNeeded(value))
				return err
			})
		},
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q; want put, get or scan", args[0])
		}
		return errors.New("missing command; want put, get or scan")
	}
	return cmd
}

// quoteIfNeeded prints printable text as is and anything else Go-quoted,
// so that the tab-separated output stays parseable.
func quoteIfNeeded(b []byte) string {
	s := string(b)
	if strings.ContainsAny(s, "\t\n\r\"") || !isPrintable(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
