package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/placementdriver/ctl"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
)

func init() { subcommands = append(subcommands, newCtlCommand) }

// ctlConfig is the `ctl` section of the config: flags, SHALE_CTL_* env
// vars, or the config file's ctl table.
type ctlConfig struct {
	PD      []string      `mapstructure:"pd"`
	JSON    bool          `mapstructure:"json"`
	Timeout time.Duration `mapstructure:"timeout"`
	// WriteOut is -w: table or json (--json is -w json).
	WriteOut string `mapstructure:"write-out"`
}

// ctlPageSize is how many tablets one ScanTablets call asks for (a
// variable for tests).
var ctlPageSize = 1000

// ctlNow is the clock for ages in human output; tests pin it.
var ctlNow = time.Now

// ctlExtra are ctl verbs defined in their own files (ctl_check.go).
var ctlExtra []func() *cobra.Command

func newCtlCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Inspect and operate a cluster through the placement driver",
		Long: `Inspect and operate a cluster through the placement driver's gRPC API.
--pd lists PD members' client addresses (any subset; the leader is found
and redirects are followed). Output is an aligned table, or with --json the
same JSON the PD HTTP API (/pd/api/v1/...) serves. Errors go to stderr and
the exit status is non-zero. docs/ctl.md describes every command.

--pd, -w (--write-out), --json and --timeout can also be set as
SHALE_CTL_PD, SHALE_CTL_WRITE_OUT, SHALE_CTL_JSON, SHALE_CTL_TIMEOUT or in
the "ctl" section of the --config file.`,
		Example: `  shale ctl --pd 127.0.0.1:2379 stores
  shale ctl --pd 10.0.0.1:2379,10.0.0.2:2379 tablets --limit 20
  shale ctl config set split-size 256MiB
  shale ctl transfer-leader 12 3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringSlice("pd", []string{"127.0.0.1:2379"}, "placement driver client addresses HOST:PORT,...")
	pf.Bool("json", false, "print JSON (the field names of the PD HTTP API) instead of a table; the same as -w json")
	pf.StringP("write-out", "w", "table", "output format: table or json")
	pf.Duration("timeout", 10*time.Second, "give up after this long (no PD leader reachable, ...)")
	addClientTLSFlags(pf)

	cmd.AddCommand(
		newCtlStoresCommand(),
		newCtlTabletsCommand(),
		newCtlTablesCommand(),
		newCtlOperatorsCommand(),
		newCtlConfigCommand(),
		newCtlSplitCommand(),
		newCtlTransferLeaderCommand(),
		newCtlMoveCommand(),
		newCtlDrainCommand(),
		newCtlMembersCommand(),
		newCtlUserCommand(), newCtlRoleCommand(),
		newCtlHotCommand(),
		newCtlSchedulerCommand(),
		newCtlOperatorCommand(),
		newCtlTabletCommand(),
		newCtlStoreCommand(),
		newCtlHealthCommand(),
	)
	for _, f := range ctlExtra {
		cmd.AddCommand(f())
	}
	prefixErrors(cmd)
	return cmd
}

// prefixErrors makes every error of cmd's leaf commands start with the
// command's name ("split: TABLET_ID: ...").
func prefixErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		prefixErrors(c)
		if c.RunE == nil || c.HasSubCommands() {
			continue
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if p := ctlName(cmd) + ": "; err != nil && !strings.HasPrefix(err.Error(), p) {
				err = fmt.Errorf("%s%w", p, err)
			}
			return err
		}
	}
}

// ctlEnv is what a ctl command runs with.
type ctlEnv struct {
	cfg ctlConfig
	cl  *pdclient.Client
	out io.Writer
}

// print writes v as JSON with -w json (or --json), else calls human.
func (e *ctlEnv) print(v any, human func(io.Writer) error) error {
	if e.cfg.JSON || e.cfg.WriteOut == "json" {
		return ctl.WriteJSON(e.out, v)
	}
	return human(e.out)
}

// runCtl resolves the settings, connects and runs f with a context bounded
// by --timeout. Errors are prefixed with the command's name.
func runCtl(cmd *cobra.Command, f func(context.Context, *ctlEnv) error) error {
	var cfg ctlConfig
	if err := bindConfig(cmd, "ctl", &cfg); err != nil {
		return err
	}
	var endpoints []string
	for _, a := range cfg.PD {
		if a = strings.TrimSpace(a); a != "" {
			endpoints = append(endpoints, a)
		}
	}
	if len(endpoints) == 0 {
		return errors.New("--pd: no placement driver address given")
	}
	if cfg.Timeout <= 0 {
		return fmt.Errorf("--timeout: want a positive duration, got %s", cfg.Timeout)
	}
	if w := cfg.WriteOut; w != "" && w != "table" && w != "json" {
		return fmt.Errorf("-w/--write-out: want table or json, got %q", w)
	}
	tls, err := clientTLS(cmd)
	if err != nil {
		return err
	}
	cl, err := pdclient.New(endpoints, 0, pdclient.WithTLS(tls))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), cfg.Timeout)
	defer cancel()
	// Buffer the output so a failure half-way prints nothing partial.
	var buf bytes.Buffer
	if err := f(ctx, &ctlEnv{cfg: cfg, cl: cl, out: &buf}); err != nil {
		return errors.New(ctl.DescribeError(err)) // prefixed by prefixErrors
	}
	_, err = cmd.OutOrStdout().Write(buf.Bytes())
	return err
}

// ctlName is the command path below "shale ctl", e.g. "config set".
func ctlName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ctl ")
}

// parseID parses a positive decimal ID argument.
func parseID(what, s string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s: want a positive integer, got %q", what, s)
	}
	return n, nil
}

// parseHexKey parses a hex-encoded key argument ("" is the empty key).
func parseHexKey(what, s string) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if err != nil {
		return nil, fmt.Errorf("%s: want a hex-encoded key such as 74800000000000000172, got %q", what, s)
	}
	return k, nil
}

// argsUsage requires exactly the named arguments, with a readable error.
func argsUsage(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("%s: want %d argument(s) %s, got %d (usage: %s)",
				ctlName(cmd), len(names), strings.Join(names, " "), len(args), cmd.UseLine())
		}
		return nil
	}
}

func newCtlStoresCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stores",
		Short: "List the stores with their state and tablet and leader counts",
		Args:  argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.ListStores(ctx, &pdpb.ListStoresRequest{})
				if err != nil {
					return err
				}
				tablets, err := e.cl.ScanAllTablets(ctx, nil, nil, 0, ctlPageSize)
				if err != nil {
					return err
				}
				stores := ctl.StoresFromPB(resp.Stores, ctl.CountTablets(tablets))
				return e.print(stores, func(w io.Writer) error { return ctl.WriteStores(w, stores, ctlNow()) })
			})
		},
	}
}

func newCtlTabletsCommand() *cobra.Command {
	var start, end string
	var limit int
	cmd := &cobra.Command{
		Use:   "tablets",
		Short: "List tablets in key order",
		Long: `List tablets in key order: their key range (hex-encoded encoded row keys),
epoch, leader store, replicas and approximate size. --start and --end
select the tablets overlapping [start, end); --limit caps how many are
printed (0: all).`,
		Args: argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := parseHexKey("--start", start)
			if err != nil {
				return err
			}
			en, err := parseHexKey("--end", end)
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit: want 0 (all) or more, got %d", limit)
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				found, err := e.cl.ScanAllTablets(ctx, s, en, limit, ctlPageSize)
				if err != nil {
					return err
				}
				tablets := ctl.TabletsFromPB(found)
				return e.print(tablets, func(w io.Writer) error { return ctl.WriteTablets(w, tablets) })
			})
		},
	}
	cmd.Flags().StringVar(&start, "start", "", "first key, hex-encoded (default: the start of the key space)")
	cmd.Flags().StringVar(&end, "end", "", "end key (exclusive), hex-encoded (default: the end of the key space)")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most this many tablets (0: all)")
	return cmd
}

func newCtlTablesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tables",
		Short: "List the tables of the catalog",
		Args:  argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.ListTables(ctx, &pdpb.ListTablesRequest{})
				if err != nil {
					return err
				}
				tables := ctl.TablesFromPB(resp.Tables)
				return e.print(tables, func(w io.Writer) error { return ctl.WriteTables(w, tables) })
			})
		},
	}
}

func newCtlOperatorsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "operators",
		Short: "List the running scheduling operators",
		Args:  argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.ListOperators(ctx, &pdpb.ListOperatorsRequest{})
				if err != nil {
					return err
				}
				ops := ctl.OperatorsFromPB(resp.Operators)
				return e.print(ops, func(w io.Writer) error { return ctl.WriteOperators(w, ops, ctlNow()) })
			})
		},
	}
}

// configEntry is the JSON answer of `config set`.
type configEntry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func newCtlConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change the scheduling configuration",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print every configuration key and its value",
		Args:  argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.GetConfig(ctx, &pdpb.GetConfigRequest{})
				if err != nil {
					return err
				}
				cfg := resp.Config
				if cfg == nil {
					cfg = map[string]string{}
				}
				return e.print(cfg, func(w io.Writer) error { return ctl.WriteConfig(w, cfg) })
			})
		},
	}, &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change one configuration key (validated by PD; applies at the next scheduling round)",
		Args:  argsUsage("KEY", "VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, value := strings.TrimSpace(args[0]), args[1]
			if key == "" {
				return errors.New("KEY is empty")
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if _, err := e.cl.SetConfig(ctx, &pdpb.SetConfigRequest{Key: key, Value: value}); err != nil {
					return err
				}
				// Read back the value as PD normalised it (e.g. 262144 → 256KiB).
				if resp, err := e.cl.GetConfig(ctx, &pdpb.GetConfigRequest{}); err == nil {
					if v, ok := resp.Config[key]; ok {
						value = v
					}
				}
				entry := configEntry{Key: key, Value: value}
				return e.print(entry, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s = %s\n", key, value)
					return err
				})
			})
		},
	})
	return cmd
}

// addOperator asks PD for an operator and prints it.
func addOperator(cmd *cobra.Command, req *pdpb.AddOperatorRequest, kind string) error {
	return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
		resp, err := e.cl.AddOperator(ctx, req)
		if err != nil {
			return err
		}
		op := ctl.OperatorFromPB(resp.GetOperator())
		if op.TabletID == 0 {
			op.TabletID = req.TabletId
		}
		if op.Kind == "" {
			op.Kind = kind
		}
		return e.print(op, func(w io.Writer) error {
			line := fmt.Sprintf("added %s operator for tablet %d", op.Kind, op.TabletID)
			if op.Description != "" {
				line += ": " + op.Description
			}
			_, err := fmt.Fprintln(w, line)
			return err
		})
	})
}

func newCtlSplitCommand() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "split TABLET_ID",
		Short: "Split a tablet at --key, or at its middle",
		Args:  argsUsage("TABLET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("TABLET_ID", args[0])
			if err != nil {
				return err
			}
			req := &pdpb.AddOperatorRequest{TabletId: id, Op: &pdpb.AddOperatorRequest_SplitMiddle{SplitMiddle: true}}
			if cmd.Flags().Changed("key") {
				k, err := parseHexKey("--key", key)
				if err != nil {
					return err
				}
				if len(k) == 0 {
					return errors.New("--key: the split key must not be empty (omit --key to split at the middle)")
				}
				req.Op = &pdpb.AddOperatorRequest_SplitKey{SplitKey: k}
			}
			return addOperator(cmd, req, "split")
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "split key: an encoded row key, hex-encoded (default: the middle of the tablet's data)")
	return cmd
}

func newCtlTransferLeaderCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader TABLET_ID STORE_ID",
		Short: "Move a tablet's leadership to its replica on STORE_ID",
		Args:  argsUsage("TABLET_ID", "STORE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("TABLET_ID", args[0])
			if err != nil {
				return err
			}
			to, err := parseID("STORE_ID", args[1])
			if err != nil {
				return err
			}
			return addOperator(cmd, &pdpb.AddOperatorRequest{TabletId: id, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: to}}, "transfer-leader")
		},
	}
}

func newCtlMoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "move TABLET_ID FROM_STORE TO_STORE",
		Short: "Move a tablet's replica from one store to another",
		Args:  argsUsage("TABLET_ID", "FROM_STORE", "TO_STORE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("TABLET_ID", args[0])
			if err != nil {
				return err
			}
			from, err := parseID("FROM_STORE", args[1])
			if err != nil {
				return err
			}
			to, err := parseID("TO_STORE", args[2])
			if err != nil {
				return err
			}
			if from == to {
				return fmt.Errorf("FROM_STORE and TO_STORE are both %d", from)
			}
			return addOperator(cmd, &pdpb.AddOperatorRequest{TabletId: id, Op: &pdpb.AddOperatorRequest_Move{
				Move: &pdpb.AddOperatorRequest_MoveReplica{FromStore: from, ToStore: to},
			}}, "move")
		},
	}
}

// drainResult is the JSON answer of `drain`.
type drainResult struct {
	StoreID  uint64 `json:"store_id"`
	Draining bool   `json:"draining"`
}

func newCtlDrainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "drain STORE_ID",
		Short: "Take a store out of service: PD moves its replicas to other stores",
		Args:  argsUsage("STORE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("STORE_ID", args[0])
			if err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if _, err := e.cl.DrainStore(ctx, &pdpb.DrainStoreRequest{StoreId: id}); err != nil {
					return err
				}
				return e.print(drainResult{StoreID: id, Draining: true}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "store %d is draining: its replicas will be moved to other stores (watch with 'shale ctl stores')\n", id)
					return err
				})
			})
		},
	}
}

func newCtlMembersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the placement driver members and the leader",
		Args:  argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.GetMembers(ctx)
				if err != nil {
					return err
				}
				m := ctl.MembersFromPB(resp)
				return e.print(m, func(w io.Writer) error { return ctl.WriteMembers(w, m) })
			})
		},
	}
}
