package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/quota"
	"github.com/shaledb/shale/proto/pdpb"
)

// `shale ctl quota`: table and user quotas (internal/quota; docs/qos.md,
// "Quotas").

func init() { ctlExtra = append(ctlExtra, newCtlQuotaCommand) }

// quotaRow is one quota in `quota show` (JSON: limits per second, 0 none).
type quotaRow struct {
	Table      string `json:"table,omitempty"`
	User       string `json:"user,omitempty"`
	ReadRPS    uint64 `json:"read_rps"`
	WriteRPS   uint64 `json:"write_rps"`
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
}

func rowOf(q *pdpb.Quota) quotaRow {
	return quotaRow{Table: q.TableName, User: q.User,
		ReadRPS: quota.Get(q.Limits, quota.ReadRPS), WriteRPS: quota.Get(q.Limits, quota.WriteRPS),
		ReadBytes: quota.Get(q.Limits, quota.ReadBytes), WriteBytes: quota.Get(q.Limits, quota.WriteBytes)}
}

func newCtlQuotaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Set, show and remove table and user quotas",
		Long: `A quota limits a table's or a user's requests and bytes per second, for
reads and writes separately, across the whole cluster: PD splits each limit
among the stores and a store refuses a request over its share with
QuotaExceeded, which clients wait out (docs/qos.md, "Quotas"). User quotas
apply to callers identified by a client certificate (secure clusters).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var table, user string
	subject := func(c *cobra.Command) {
		c.Flags().StringVar(&table, "table", "", "the table to limit")
		c.Flags().StringVar(&user, "user", "", "the user to limit")
	}
	vals := map[string]*string{}
	set := &cobra.Command{
		Use:   "set (--table T | --user U) [--read-rps N] [--write-rps N] [--read-bytes SIZE] [--write-bytes SIZE]",
		Short: "Set limits of a table or a user (limits not given are kept)",
		Example: `  shale ctl quota set --table t --write-rps 100 --read-bytes 10MiB
  shale ctl quota set --user alice --read-rps 500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := quota.ValidateSubject(table, user); err != nil {
				return err
			}
			l, err := parseQuotaFlags(vals)
			if err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.SetQuota(ctx, &pdpb.SetQuotaRequest{Table: table, User: user, Limits: l})
				if err != nil {
					return err
				}
				return e.print(rowOf(resp.Quota), func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "quota of %s: %s\n", subjectOf(resp.Quota), quota.Describe(resp.Quota.Limits))
					return err
				})
			})
		},
	}
	subject(set)
	for _, n := range quota.Names {
		vals[n] = set.Flags().String(n, "", limitHelp(n))
	}
	var limits []string
	rm := &cobra.Command{
		Use:     "rm (--table T | --user U) [--limit NAME,...]",
		Short:   "Remove a table's or a user's quota (with --limit: only those limits)",
		Example: "  shale ctl quota rm --table t\n  shale ctl quota rm --user alice --limit read-rps",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := quota.ValidateSubject(table, user); err != nil {
				return err
			}
			if err := quota.ValidateNames(limits); err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				if _, err := e.cl.RemoveQuota(ctx, &pdpb.RemoveQuotaRequest{Table: table, User: user, Limits: limits}); err != nil {
					return err
				}
				q := &pdpb.Quota{TableName: table, User: user}
				what := "quota"
				if len(limits) > 0 {
					what = strings.Join(limits, ", ") + " quota"
				}
				return e.print(rowOf(q), func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s of %s removed\n", what, subjectOf(q))
					return err
				})
			})
		},
	}
	subject(rm)
	rm.Flags().StringSliceVar(&limits, "limit", nil, "remove only these limits (read-rps, write-rps, read-bytes, write-bytes)")
	show := &cobra.Command{
		Use:   "show",
		Short: "List every quota",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				resp, err := e.cl.ListQuotas(ctx, &pdpb.ListQuotasRequest{})
				if err != nil {
					return err
				}
				qs := resp.GetState().GetQuotas()
				sort.SliceStable(qs, func(i, j int) bool { return subjectOf(qs[i]) < subjectOf(qs[j]) })
				rows := make([]quotaRow, 0, len(qs))
				for _, q := range qs {
					rows = append(rows, rowOf(q))
				}
				return e.print(rows, func(w io.Writer) error { return writeQuotas(w, qs) })
			})
		},
	}
	cmd.AddCommand(set, show, rm)
	return cmd
}

func limitHelp(n string) string {
	if n == quota.ReadBytes || n == quota.WriteBytes {
		return "bytes per second, with a unit (e.g. 10MiB, 512KiB)"
	}
	return "requests per second"
}

// parseQuotaFlags parses the limits given (a missing flag: not given).
func parseQuotaFlags(vals map[string]*string) (*pdpb.QuotaLimits, error) {
	l := &pdpb.QuotaLimits{}
	for n, p := range vals {
		if *p == "" {
			continue
		}
		parse := quota.ParseRPS
		if n == quota.ReadBytes || n == quota.WriteBytes {
			parse = quota.ParseBytes
		}
		v, err := parse(*p)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", n, err)
		}
		switch n {
		case quota.ReadRPS:
			l.ReadRps = v
		case quota.WriteRPS:
			l.WriteRps = v
		case quota.ReadBytes:
			l.ReadBytes = v
		case quota.WriteBytes:
			l.WriteBytes = v
		}
	}
	return l, quota.ValidateSet(l)
}

func subjectOf(q *pdpb.Quota) string {
	if q.User != "" {
		return "user " + q.User
	}
	return "table " + q.TableName
}

func writeQuotas(w io.Writer, qs []*pdpb.Quota) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tREAD-RPS\tWRITE-RPS\tREAD-BYTES\tWRITE-BYTES")
	cell := func(v uint64, bytes bool) string {
		switch {
		case v == 0:
			return "-"
		case bytes:
			return quota.FormatBytes(v) + "/s"
		}
		return strconv.FormatUint(v, 10)
	}
	for _, q := range qs {
		r := rowOf(q)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", subjectOf(q), cell(r.ReadRPS, false), cell(r.WriteRPS, false), cell(r.ReadBytes, true), cell(r.WriteBytes, true))
	}
	return tw.Flush()
}
