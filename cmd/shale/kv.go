package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/kvclient"
)

func init() { subcommands = append(subcommands, newKVCommand) }

// newKVCommand is the raw key/value command line on kvclient's raw API
// (the built-in "kv" table).
func newKVCommand() *cobra.Command {
	var (
		pd      string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write raw keys and values (the built-in kv table)",
		Long: `Read and write raw byte keys and values in the cluster's built-in "kv" table.
Keys and values are taken literally from the arguments.`,
		Example: `  shale kv --pd 127.0.0.1:2379 put hello world
  shale kv --pd 127.0.0.1:2379 get hello
  shale kv --pd 127.0.0.1:2379 scan a z --limit 10
  shale kv --pd 127.0.0.1:2379 del hello`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	pf.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	addClientTLSFlags(pf)

	run := func(f func(ctx context.Context, c *kvclient.Client) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			tls, err := clientTLS(cmd)
			if err != nil {
				return err
			}
			c, err := kvclient.Open(ctx, kvclient.Options{PD: strings.Split(pd, ","), TLS: tls})
			if err != nil {
				return err
			}
			defer c.Close()
			return f(ctx, c)
		}
	}
	var limit int
	scan := &cobra.Command{
		Use:   "scan [START [END]]",
		Short: "Print KEY<TAB>VALUE lines for keys in [START, END)",
		Args:  cobra.MaximumNArgs(2),
	}
	scan.Flags().IntVar(&limit, "limit", 0, "print at most this many pairs (0: all)")
	scan.RunE = func(cmd *cobra.Command, args []string) error {
		var start, end []byte
		if len(args) > 0 {
			start = []byte(args[0])
		}
		if len(args) > 1 {
			end = []byte(args[1])
		}
		return run(func(ctx context.Context, c *kvclient.Client) error {
			kvs, err := c.RawScan(ctx, start, end, limit)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", kv.Key, kv.Value)
			}
			return nil
		})(cmd, args)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set KEY to VALUE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(func(ctx context.Context, c *kvclient.Client) error {
				return c.RawPut(ctx, []byte(args[0]), []byte(args[1]))
			})(cmd, args)
		},
	}, &cobra.Command{
		Use:   "get KEY",
		Short: "Print KEY's value; exit 1 with \"not found\" when absent",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(func(ctx context.Context, c *kvclient.Client) error {
				v, ok, err := c.RawGet(ctx, []byte(args[0]))
				if err != nil {
					return err
				}
				if !ok {
					return errNotFound
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
				return nil
			})(cmd, args)
		},
	}, &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(func(ctx context.Context, c *kvclient.Client) error {
				return c.RawDelete(ctx, []byte(args[0]))
			})(cmd, args)
		},
	}, scan)
	return cmd
}

// errNotFound makes `shale kv get` exit 1 with "not found" on stderr.
var errNotFound = errors.New("not found")
