package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/placementdriver/ctl"
	"github.com/shaledb/shale/proto/pdpb"
)

// The pd-ctl style verbs: hot, scheduler, operator, tablet, store, health.

// hotTablet is one row of `ctl hot`: a tablet with its start as table
// and row.
type hotTablet struct {
	ctl.Tablet
	StartTable string `json:"start_table"`
	StartRow   string `json:"start_row"`
}

func newCtlHotCommand() *cobra.Command {
	var by string
	var limit int
	cmd := &cobra.Command{
		Use:   "hot read|write",
		Short: "List the tablets with the most read or write load, busiest first",
		Long: `List the tablets with the highest read or write rate as their leaders last
reported them (every heartbeat, 10s by default), busiest first: --by bytes
(default) or ops per second, at most --limit (default 10). Idle tablets
are left out.`,
		Example: `  shale ctl hot write
  shale ctl hot read --by ops --limit 3 -w json`,
		Args: argsUsage("read|write"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := args[0]
			if kind != "read" && kind != "write" {
				return fmt.Errorf("want read or write, got %q", kind)
			}
			if by != "bytes" && by != "ops" {
				return fmt.Errorf("--by: want bytes or ops, got %q", by)
			}
			if limit <= 0 {
				return fmt.Errorf("--limit: want 1 or more, got %d", limit)
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				found, err := e.cl.ScanAllTablets(ctx, nil, nil, 0, ctlPageSize)
				if err != nil {
					return err
				}
				names, err := ctlTableNames(ctx, e)
				if err != nil {
					return err
				}
				hot := []hotTablet{}
				for _, t := range ctl.HotTablets(ctl.TabletsFromPB(found), kind == "write", by == "bytes", limit) {
					h := hotTablet{Tablet: t}
					start, _ := parseHexKey("start", t.StartKey)
					h.StartTable, h.StartRow = ctl.KeyLabel(start, names)
					hot = append(hot, h)
				}
				return e.print(hot, func(w io.Writer) error { return writeHot(w, hot) })
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "bytes", "rank by bytes or ops per second")
	cmd.Flags().IntVar(&limit, "limit", 10, "list at most this many tablets")
	return cmd
}

func writeHot(w io.Writer, hot []hotTablet) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTART\tLEADER\tREAD_OPS\tWRITE_OPS\tREAD_BYTES\tWRITE_BYTES")
	for _, h := range hot {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.1f/s\t%.1f/s\t%s/s\t%s/s\n", h.ID, keyCell(h.StartTable, h.StartRow), leaderCell(h.LeaderStoreID),
			h.ReadQPS, h.WriteQPS, ctl.HumanBytes(uint64(h.ReadBytesPerSec)), ctl.HumanBytes(uint64(h.WriteBytesPerSec)))
	}
	return tw.Flush()
}

func keyCell(table, row string) string {
	if row == "" {
		return table
	}
	return table + "/" + row
}

func leaderCell(id uint64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatUint(id, 10)
}

// ctlTableNames maps table IDs to names.
func ctlTableNames(ctx context.Context, e *ctlEnv) (map[uint64]string, error) {
	resp, err := e.cl.ListTables(ctx, &pdpb.ListTablesRequest{})
	if err != nil {
		return nil, err
	}
	out := map[uint64]string{}
	for _, t := range resp.Tables {
		out[t.TableId] = t.Name
	}
	return out, nil
}

// scheduler is one scheduler in `ctl scheduler show` and pause/resume.
type scheduler struct {
	Name string `json:"name"`
	// Paused and PausedUntilUnixMs: paused until then (0: running).
	Paused            bool  `json:"paused"`
	PausedUntilUnixMs int64 `json:"paused_until_unix_ms"`
}

func schedulerFromPB(s *pdpb.SchedulerInfo) scheduler {
	return scheduler{Name: s.GetName(), Paused: s.GetPausedUntilUnixMs() != 0, PausedUntilUnixMs: s.GetPausedUntilUnixMs()}
}

func writeSchedulers(w io.Writer, ss []scheduler) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE")
	for _, s := range ss {
		state := "running"
		if s.Paused {
			state = "paused until " + time.UnixMilli(s.PausedUntilUnixMs).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, state)
	}
	return tw.Flush()
}

func newCtlSchedulerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Show, pause and resume the schedulers (balance-leader, balance-tablet, hot)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pauseOrResume := func(cmd *cobra.Command, name string, pause time.Duration) error {
		return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
			resp, err := e.cl.PauseScheduler(ctx, &pdpb.PauseSchedulerRequest{Name: name, PauseMs: pause.Milliseconds()})
			if err != nil {
				return err
			}
			s := schedulerFromPB(resp.Scheduler)
			return e.print(s, func(w io.Writer) error { return writeSchedulers(w, []scheduler{s}) })
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "List the schedulers and whether each is paused",
		Args:  argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.ListSchedulers(ctx, &pdpb.ListSchedulersRequest{})
				if err != nil {
					return err
				}
				ss := []scheduler{}
				for _, s := range resp.Schedulers {
					ss = append(ss, schedulerFromPB(s))
				}
				return e.print(ss, func(w io.Writer) error { return writeSchedulers(w, ss) })
			})
		},
	}, &cobra.Command{
		Use:   "pause NAME DURATION",
		Short: "Pause a scheduler for DURATION (90s, 1h, or seconds as pd-ctl takes them)",
		Long: `Pause a scheduler for DURATION: a Go duration (90s, 30m, 1h) or a number of
seconds, at most 168h. The replica checkers (repair, placement, split,
merge) are never paused. The pause lives in the PD leader's memory: a new
leader starts with every scheduler running.`,
		Args: argsUsage("NAME", "DURATION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := parsePause(args[1])
			if err != nil {
				return err
			}
			return pauseOrResume(cmd, args[0], d)
		},
	}, &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a paused scheduler",
		Args:  argsUsage("NAME"),
		RunE:  func(cmd *cobra.Command, args []string) error { return pauseOrResume(cmd, args[0], 0) },
	})
	return cmd
}

// parsePause parses a pause: a Go duration or whole seconds.
func parsePause(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n == 0 {
			return 0, errors.New("DURATION must be positive (use resume to resume)")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("DURATION: want a positive duration such as 90s or 1h, or seconds, got %q", s)
	}
	return d, nil
}

func newCtlOperatorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Show or remove scheduling operators",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	show := newCtlOperatorsCommand()
	show.Use = "show"
	cmd.AddCommand(show, &cobra.Command{
		Use:   "remove TABLET_ID",
		Short: "Cancel the running operator of a tablet",
		Long: `Cancel the running operator of a tablet. A step already sent to the tablet's
leader may still complete; the operator gives no further steps. The
checkers and schedulers may propose a new operator at the next round
(pause a scheduler to stop that).`,
		Args: argsUsage("TABLET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("TABLET_ID", args[0])
			if err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.RemoveOperator(ctx, &pdpb.RemoveOperatorRequest{TabletId: id})
				if err != nil {
					return err
				}
				op := ctl.OperatorFromPB(resp.Operator)
				return e.print(op, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "removed %s operator of tablet %d: %s\n", op.Kind, op.TabletID, op.Description)
					return err
				})
			})
		},
	})
	return cmd
}

// rowLocation is the answer of `ctl tablet --table T --row KEY`.
type rowLocation struct {
	Table      string     `json:"table"`
	Row        string     `json:"row"`
	Tablet     ctl.Tablet `json:"tablet"`
	StartTable string     `json:"start_table"`
	StartRow   string     `json:"start_row"`
	EndTable   string     `json:"end_table"`
	EndRow     string     `json:"end_row"`
	// Addresses maps the replicas' store IDs to their addresses.
	Addresses map[uint64]string `json:"addresses"`
}

func newCtlTabletCommand() *cobra.Command {
	var table, row string
	cmd := &cobra.Command{
		Use:   "tablet --table TABLE --row ROW",
		Short: "Show which tablet holds a row, and where its replicas and leader are",
		Long: `Show the tablet that holds ROW of TABLE (the row key as written, not hex):
its ID, key range (as table/row), epoch, leader and replicas with the
stores' addresses.`,
		Example: `  shale ctl tablet --table usertable --row user1234
  shale ctl tablet --table kv --row hello -w json`,
		Args: argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if table == "" {
				return errors.New("--table is required")
			}
			if !cmd.Flags().Changed("row") {
				return errors.New("--row is required")
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				loc, err := locateRow(ctx, e, table, row)
				if err != nil {
					return err
				}
				return e.print(loc, func(w io.Writer) error { return writeRowLocation(w, loc) })
			})
		},
	}
	cmd.Flags().StringVar(&table, "table", "", "table name")
	cmd.Flags().StringVar(&row, "row", "", "row key, as written")
	return cmd
}

func locateRow(ctx context.Context, e *ctlEnv, table, row string) (rowLocation, error) {
	tr, err := e.cl.GetTable(ctx, &pdpb.GetTableRequest{Name: table})
	if err != nil {
		return rowLocation{}, err
	}
	id := tr.GetTable().GetTableId()
	resp, err := e.cl.GetTablet(ctx, &pdpb.GetTabletRequest{Key: keys.RowKey(id, []byte(row))})
	if err != nil {
		return rowLocation{}, err
	}
	names := map[uint64]string{id: table}
	loc := rowLocation{Table: table, Row: ctl.Printable([]byte(row)), Tablet: ctl.TabletFromPB(resp.Tablet), Addresses: map[uint64]string{}}
	d := resp.Tablet.GetTablet()
	loc.StartTable, loc.StartRow = ctl.KeyLabel(d.GetStartKey(), names)
	loc.EndTable = "(max)"
	if len(d.GetEndKey()) > 0 {
		loc.EndTable, loc.EndRow = ctl.KeyLabel(d.GetEndKey(), names)
	}
	for _, r := range d.GetReplicas() {
		st, err := e.cl.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: r.StoreId})
		if err != nil {
			return rowLocation{}, err
		}
		loc.Addresses[r.StoreId] = st.GetStore().GetStore().GetAddress()
	}
	return loc, nil
}

func writeRowLocation(w io.Writer, loc rowLocation) error {
	t := loc.Tablet
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "row\t%s/%s\n", loc.Table, loc.Row)
	fmt.Fprintf(tw, "tablet\t%d (epoch %d/%d)\n", t.ID, t.Epoch.Version, t.Epoch.ConfVersion)
	fmt.Fprintf(tw, "range\t[%s, %s)\n", keyCell(loc.StartTable, loc.StartRow), keyCell(loc.EndTable, loc.EndRow))
	leader := "-"
	if t.LeaderStoreID != 0 {
		leader = fmt.Sprintf("store %d at %s", t.LeaderStoreID, loc.Addresses[t.LeaderStoreID])
	}
	fmt.Fprintf(tw, "leader\t%s\n", leader)
	for _, p := range t.Peers {
		fmt.Fprintf(tw, "replica\t%d on store %d at %s (%s)\n", p.ReplicaID, p.StoreID, loc.Addresses[p.StoreID], p.Role)
	}
	return tw.Flush()
}

func newCtlStoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Label, limit or delete a store",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCtlStoreLabelCommand(), newCtlStoreLimitCommand(), newCtlStoreDeleteCommand())
	return cmd
}

func newCtlStoreLabelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "label STORE_ID KEY=VALUE...",
		Short: "Set (KEY=VALUE) or remove (KEY=) labels of a store",
		Long: `Set or remove labels of a store; the others are kept. Placement reads them
(location-labels). A store that registers again with labels of its own
(shale tablet --labels) replaces them; one that registers with none keeps
these.`,
		Example: `  shale ctl store label 4 zone=z2 rack=r7
  shale ctl store label 4 rack=`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("%s: want STORE_ID KEY=VALUE..., got %d argument(s) (usage: %s)", ctlName(cmd), len(args), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("STORE_ID", args[0])
			if err != nil {
				return err
			}
			labels := map[string]string{}
			for _, a := range args[1:] {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("label %q: want KEY=VALUE (KEY= removes the label)", a)
				}
				labels[k] = v
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.SetStoreLabels(ctx, &pdpb.SetStoreLabelsRequest{StoreId: id, Labels: labels})
				if err != nil {
					return err
				}
				res := storeLabels{StoreID: id, Labels: resp.GetStore().GetLabels()}
				if res.Labels == nil {
					res.Labels = map[string]string{}
				}
				return e.print(res, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "store %d labels: %s\n", id, orDash(ctl.Labels(res.Labels)))
					return err
				})
			})
		},
	}
}

type storeLabels struct {
	StoreID uint64            `json:"store_id"`
	Labels  map[string]string `json:"labels"`
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// storeLimit is the answer of `ctl store limit`.
type storeLimit struct {
	StoreID uint64 `json:"store_id"`
	// SnapshotLimit is the store's own limit, 0 when it has none.
	SnapshotLimit uint32 `json:"snapshot_limit"`
	// Effective is the limit that applies.
	Effective uint32 `json:"effective"`
}

func newCtlStoreLimitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "limit [STORE_ID [N]]",
		Short: "Show or set how many snapshots a store may take part in at once",
		Long: `Show (no N) or set how many replica snapshots (add-learner steps, sent or
received) a store may take part in at once, overriding the
max-snapshots-per-store config; N = 0 goes back to the config. Without
STORE_ID it lists every store. Operators you add with shale ctl are
exempt.`,
		Example: `  shale ctl store limit
  shale ctl store limit 4 1
  shale ctl store limit 4 0`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id uint64
			var err error
			if len(args) > 0 {
				if id, err = parseID("STORE_ID", args[0]); err != nil {
					return err
				}
			}
			set, n := len(args) == 2, uint64(0)
			if set {
				if n, err = strconv.ParseUint(args[1], 10, 32); err != nil {
					return fmt.Errorf("N: want 0 (the config) or more, got %q", args[1])
				}
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if set {
					if _, err := e.cl.SetStoreLimit(ctx, &pdpb.SetStoreLimitRequest{StoreId: id, SnapshotLimit: uint32(n)}); err != nil {
						return err
					}
				}
				limits, err := storeLimits(ctx, e, id)
				if err != nil {
					return err
				}
				return e.print(limits, func(w io.Writer) error {
					tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "STORE\tSNAPSHOT_LIMIT")
					for _, l := range limits {
						v := fmt.Sprint(l.Effective)
						if l.SnapshotLimit == 0 {
							v += " (max-snapshots-per-store)"
						}
						fmt.Fprintf(tw, "%d\t%s\n", l.StoreID, v)
					}
					return tw.Flush()
				})
			})
		},
	}
}

// storeLimits lists the snapshot limits of one store (id != 0) or all.
func storeLimits(ctx context.Context, e *ctlEnv, id uint64) ([]storeLimit, error) {
	cfg, err := e.cl.GetConfig(ctx, &pdpb.GetConfigRequest{})
	if err != nil {
		return nil, err
	}
	def, _ := strconv.ParseUint(cfg.Config["max-snapshots-per-store"], 10, 32)
	resp, err := e.cl.ListStores(ctx, &pdpb.ListStoresRequest{})
	if err != nil {
		return nil, err
	}
	out := []storeLimit{}
	for _, si := range resp.Stores {
		sid := si.GetStore().GetStoreId()
		if id != 0 && sid != id {
			continue
		}
		l := storeLimit{StoreID: sid, SnapshotLimit: si.GetSnapshotLimit(), Effective: si.GetSnapshotLimit()}
		if l.Effective == 0 {
			l.Effective = uint32(def)
		}
		out = append(out, l)
	}
	if id != 0 && len(out) == 0 {
		return nil, fmt.Errorf("store %d not found", id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StoreID < out[j].StoreID })
	return out, nil
}

func newCtlStoreDeleteCommand() *cobra.Command {
	cmd := newCtlDrainCommand()
	cmd.Use = "delete STORE_ID"
	cmd.Short = "Remove a store: it goes Offline, PD moves its replicas away, then it is a Tombstone (the same as drain)"
	return cmd
}

// health is the answer of `ctl health`.
type health struct {
	Healthy bool   `json:"healthy"`
	Leader  string `json:"leader"`
	// Members and their roles.
	Members []ctl.Member `json:"members"`
	// StoresByState counts the stores per state.
	StoresByState map[string]int `json:"stores_by_state"`
	// Problems says what makes the cluster unhealthy.
	Problems []string `json:"problems"`
}

func newCtlHealthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Say whether the cluster is healthy: a PD leader, and every store up",
		Long: `Say whether the cluster is healthy: a PD leader is elected and every store
that is not being removed is Up. Otherwise list the problems and exit
with status 1.`,
		Args: argsUsage(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h health
			err := runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				var err error
				if h, err = clusterHealth(ctx, e); err != nil {
					return err
				}
				return e.print(h, func(w io.Writer) error { return writeHealth(w, h) })
			})
			if err == nil && !h.Healthy {
				err = fmt.Errorf("unhealthy: %s", strings.Join(h.Problems, "; "))
			}
			return err
		},
	}
}

func clusterHealth(ctx context.Context, e *ctlEnv) (health, error) {
	m, err := e.cl.GetMembers(ctx)
	if err != nil {
		return health{}, err
	}
	members := ctl.MembersFromPB(m)
	h := health{Leader: members.Leader, Members: members.Members, StoresByState: map[string]int{}, Problems: []string{}}
	if h.Leader == "" {
		h.Problems = append(h.Problems, "no PD leader is elected")
	}
	stores, err := e.cl.ListStores(ctx, &pdpb.ListStoresRequest{})
	if err != nil {
		return health{}, err
	}
	for _, si := range stores.Stores {
		state := ctl.StateName(si.GetState())
		h.StoresByState[state]++
		switch si.GetState() {
		case pdpb.StoreState_DISCONNECTED, pdpb.StoreState_DOWN:
			h.Problems = append(h.Problems, fmt.Sprintf("store %d (%s) is %s", si.GetStore().GetStoreId(), si.GetStore().GetAddress(), state))
		}
	}
	if len(stores.Stores) == 0 {
		h.Problems = append(h.Problems, "no store is registered")
	}
	h.Healthy = len(h.Problems) == 0
	return h, nil
}

func writeHealth(w io.Writer, h health) error {
	verdict := "healthy"
	if !h.Healthy {
		verdict = "UNHEALTHY"
	}
	var states []string
	for s, n := range h.StoresByState {
		states = append(states, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(states)
	fmt.Fprintf(w, "%s: pd leader %s (%d member(s)); stores: %s\n", verdict, orDash(h.Leader), len(h.Members), orDash(strings.Join(states, ", ")))
	for _, p := range h.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	return nil
}
