package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver/ctl"
)

func init() { subcommands = append(subcommands, newKVCommand) }

// kvDeleteBatch is how many keys one BatchMutate of a range delete holds.
const kvDeleteBatch = 256

// kvPair is one pair of `kv get|scan -w json`; []byte fields encode as
// base64, as etcdctl's do.
type kvPair struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value,omitempty"`
}

// kvResult is the JSON answer of get, scan and del.
type kvResult struct {
	Count   int      `json:"count"`
	KVs     []kvPair `json:"kvs,omitempty"`
	Deleted int      `json:"deleted,omitempty"`
}

// kvFlags are the etcdctl-style options shared by get, scan and del.
type kvFlags struct {
	prefix   bool
	keysOnly bool
	limit    int
	writeOut string
}

// newKVCommand is the raw key/value command line on kvclient's raw API
// (the built-in "kv" table), in the manner of etcdctl.
func newKVCommand() *cobra.Command {
	var (
		pd      string
		timeout time.Duration
		f       kvFlags
	)
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write raw keys and values (the built-in kv table)",
		Long: `Read and write raw byte keys and values in the cluster's built-in "kv" table,
in the manner of etcdctl. Keys and values are taken literally from the
arguments. Output escapes what is not printable: a backslash as \\ and
other bytes as \xNN, so binary keys stay on one line. With -w json, keys
and values are base64, as etcdctl prints them.

  get KEY              the value of KEY (exit 1 "not found" when absent)
  get KEY END          KEY<TAB>VALUE lines for keys in [KEY, END)
  get PREFIX --prefix  the same for keys starting with PREFIX
  del KEY [END]        delete KEY, or every key in [KEY, END); prints the count
  del PREFIX --prefix  delete every key starting with PREFIX

--keys-only prints keys without values; --limit N stops after N keys.`,
		Example: `  shale kv --pd 127.0.0.1:2379 put hello world
  shale kv --pd 127.0.0.1:2379 get hello
  shale kv --pd 127.0.0.1:2379 get user/ --prefix --keys-only
  shale kv --pd 127.0.0.1:2379 get a z --limit 10 -w json
  shale kv --pd 127.0.0.1:2379 scan a z --limit 10
  shale kv --pd 127.0.0.1:2379 del tmp/ --prefix`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	pf.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	pf.StringVarP(&f.writeOut, "write-out", "w", "simple", "output format: simple or json")
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
	rangeFlags := func(c *cobra.Command, del bool) {
		c.Flags().BoolVar(&f.prefix, "prefix", false, "the keys starting with KEY")
		if !del {
			c.Flags().BoolVar(&f.keysOnly, "keys-only", false, "print keys only")
			c.Flags().IntVar(&f.limit, "limit", 0, "at most this many keys (0: all)")
		}
	}
	get := &cobra.Command{
		Use:   "get KEY [END]",
		Short: "Print KEY's value, or the pairs of a range ([KEY, END) or --prefix)",
		Args:  cobra.RangeArgs(1, 2),
	}
	rangeFlags(get, false)
	get.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if len(args) == 1 && !f.prefix {
			return run(func(ctx context.Context, c *kvclient.Client) error {
				return kvGetOne(ctx, c, cmd.OutOrStdout(), args[0], f)
			})(cmd, args)
		}
		start, end, err := kvRange(args, f.prefix)
		if err != nil {
			return err
		}
		return run(func(ctx context.Context, c *kvclient.Client) error {
			return kvPrintRange(ctx, c, cmd.OutOrStdout(), start, end, f)
		})(cmd, args)
	}
	scan := &cobra.Command{
		Use:   "scan [START [END]]",
		Short: "Print KEY<TAB>VALUE lines for keys in [START, END)",
		Args:  cobra.MaximumNArgs(2),
	}
	rangeFlags(scan, false)
	scan.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		var start, end []byte
		if len(args) > 0 {
			start = []byte(args[0])
		}
		if len(args) > 1 {
			end = []byte(args[1])
		}
		if f.prefix {
			if len(args) != 1 {
				return errors.New("--prefix takes exactly one argument, the prefix")
			}
			end = keys.PrefixEnd(start)
		}
		return run(func(ctx context.Context, c *kvclient.Client) error {
			return kvPrintRange(ctx, c, cmd.OutOrStdout(), start, end, f)
		})(cmd, args)
	}
	del := &cobra.Command{
		Use:   "del KEY [END]",
		Short: "Delete KEY, the keys in [KEY, END), or with --prefix those starting with KEY; print the count",
		Args:  cobra.RangeArgs(1, 2),
	}
	rangeFlags(del, true)
	del.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		return run(func(ctx context.Context, c *kvclient.Client) error {
			return kvDelete(ctx, c, cmd.OutOrStdout(), args, f)
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
	}, get, del, scan)
	return cmd
}

func (f kvFlags) check() error {
	if f.writeOut != "simple" && f.writeOut != "json" {
		return fmt.Errorf("-w/--write-out: want simple or json, got %q", f.writeOut)
	}
	if f.limit < 0 {
		return fmt.Errorf("--limit: want 0 (all) or more, got %d", f.limit)
	}
	return nil
}

// kvRange is [KEY, END), or with prefix the keys starting with KEY.
func kvRange(args []string, prefix bool) (start, end []byte, err error) {
	start = []byte(args[0])
	switch {
	case prefix && len(args) == 2:
		return nil, nil, errors.New("give either END or --prefix, not both")
	case prefix:
		end = keys.PrefixEnd(start)
	case len(args) == 2:
		end = []byte(args[1])
		if string(end) <= string(start) {
			return nil, nil, fmt.Errorf("END %q must sort after KEY %q", args[1], args[0])
		}
	}
	return start, end, nil
}

func kvGetOne(ctx context.Context, c *kvclient.Client, w io.Writer, key string, f kvFlags) error {
	v, ok, err := c.RawGet(ctx, []byte(key))
	if err != nil {
		return err
	}
	if !ok {
		return errNotFound
	}
	if f.writeOut == "json" {
		p := kvPair{Key: []byte(key), Value: v}
		if f.keysOnly {
			p.Value = nil
		}
		return ctl.WriteJSON(w, kvResult{Count: 1, KVs: []kvPair{p}})
	}
	if f.keysOnly {
		_, err = fmt.Fprintln(w, ctl.Printable([]byte(key)))
		return err
	}
	_, err = fmt.Fprintln(w, ctl.Printable(v))
	return err
}

func kvPrintRange(ctx context.Context, c *kvclient.Client, w io.Writer, start, end []byte, f kvFlags) error {
	var pairs []kvPair
	if f.keysOnly {
		ks, err := kvKeys(ctx, c, start, end, f.limit)
		if err != nil {
			return err
		}
		for _, k := range ks {
			pairs = append(pairs, kvPair{Key: k})
		}
	} else {
		kvs, err := c.RawScan(ctx, start, end, f.limit)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			pairs = append(pairs, kvPair{Key: kv.Key, Value: kv.Value})
		}
	}
	if f.writeOut == "json" {
		return ctl.WriteJSON(w, kvResult{Count: len(pairs), KVs: pairs})
	}
	for _, p := range pairs {
		line := ctl.Printable(p.Key)
		if !f.keysOnly {
			line += "\t" + ctl.Printable(p.Value)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// kvKeys lists the keys in [start, end) without fetching their values
// (the servers send a digest of each row instead).
func kvKeys(ctx context.Context, c *kvclient.Client, start, end []byte, limit int) ([][]byte, error) {
	t, err := c.Table(ctx, "kv")
	if err != nil {
		return nil, err
	}
	sc := t.Scan(ctx, kvclient.ScanOptions{Start: start, End: end, Limit: limit, Read: []kvclient.ReadOption{kvclient.Families("v"), kvclient.Digest()}})
	defer sc.Close()
	var out [][]byte
	for sc.Next() {
		if sc.Row().CellCount > 0 {
			out = append(out, sc.Row().Key)
		}
	}
	return out, sc.Err()
}

func kvDelete(ctx context.Context, c *kvclient.Client, w io.Writer, args []string, f kvFlags) error {
	var deleted int
	if len(args) == 1 && !f.prefix {
		_, ok, err := c.RawGet(ctx, []byte(args[0]))
		if err != nil {
			return err
		}
		if err := c.RawDelete(ctx, []byte(args[0])); err != nil {
			return err
		}
		if ok {
			deleted = 1
		}
	} else {
		start, end, err := kvRange(args, f.prefix)
		if err != nil {
			return err
		}
		if deleted, err = kvDeleteRange(ctx, c, start, end); err != nil {
			return err
		}
	}
	if f.writeOut == "json" {
		return ctl.WriteJSON(w, kvResult{Deleted: deleted})
	}
	_, err := fmt.Fprintln(w, deleted)
	return err
}

// kvDeleteRange deletes the keys in [start, end) in batches and returns
// how many it deleted. It is not atomic: a failure part-way leaves the
// keys deleted so far deleted (the error says how many).
func kvDeleteRange(ctx context.Context, c *kvclient.Client, start, end []byte) (int, error) {
	t, err := c.Table(ctx, "kv")
	if err != nil {
		return 0, err
	}
	deleted := 0
	for {
		ks, err := kvKeys(ctx, c, start, end, kvDeleteBatch)
		if err != nil {
			return deleted, fmt.Errorf("after deleting %d key(s): %w", deleted, err)
		}
		if len(ks) == 0 {
			return deleted, nil
		}
		batch := make([]kvclient.RowMutation, len(ks))
		for i, k := range ks {
			batch[i] = kvclient.RowMutation{Row: k, Mutations: []kvclient.Mutation{kvclient.DeleteRow()}}
		}
		for i, err := range t.BatchMutate(ctx, batch) {
			if err != nil {
				return deleted, fmt.Errorf("after deleting %d key(s), key %s: %w", deleted, ctl.Printable(ks[i]), err)
			}
			deleted++
		}
		start = append(slices.Clone(ks[len(ks)-1]), 0) // the next key after the last
	}
}

// errNotFound makes `shale kv get` exit 1 with "not found" on stderr.
var errNotFound = errors.New("not found")
