package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

func init() { ctlExtra = append(ctlExtra, newCtlCheckCommand) }

// checkResult is the JSON answer of `check`.
type checkResult struct {
	TabletID       uint64         `json:"tablet_id"`
	CheckID        uint64         `json:"check_id"`
	Index          uint64         `json:"index"`
	Consistent     bool           `json:"consistent"`
	NoMajority     bool           `json:"no_majority"`
	Replicas       []checkReplica `json:"replicas"`
	DifferingSpans [][2]string    `json:"differing_spans"`
	DifferingKeys  []string       `json:"differing_keys"`
}

type checkReplica struct {
	ReplicaID uint64 `json:"replica_id"`
	StoreID   uint64 `json:"store_id"`
	Hash      string `json:"hash"`
	Keys      uint64 `json:"keys"`
	Bad       bool   `json:"bad"`
	Error     string `json:"error,omitempty"`
}

func newCtlCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check TABLET_ID",
		Short: "Compare a tablet's replicas now (a consistency check ordered by raft)",
		Long: `Run a consistency check of the tablet on its leader and wait for it: every
replica hashes the tablet at the same raft log position and the leader
compares. A replica that disagrees with a majority is marked bad and PD
replaces it; with no majority nothing is changed and the tablet is flagged
INCONSISTENT in "shale ctl tablets". Hashing is paced by each store's
--consistency-check-bytes-per-sec (8 MiB/s by default): give a large tablet
a longer --timeout. docs/reliability.md explains the check.`,
		Example: `  shale ctl check 12
  shale ctl check 12 --timeout 5m -w json`,
		Args: argsUsage("TABLET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("TABLET_ID", args[0])
			if err != nil {
				return err
			}
			tls, err := clientTLS(cmd)
			if err != nil {
				return err
			}
			return runCtl(cmd, func(ctx context.Context, e *ctlEnv) error {
				t, err := e.cl.GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: id})
				if err != nil {
					return err
				}
				leader := t.GetTablet().GetLeaderStoreId()
				if leader == 0 {
					return fmt.Errorf("tablet %d has no known leader yet; try again", id)
				}
				st, err := e.cl.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: leader})
				if err != nil {
					return err
				}
				cc, err := grpc.NewClient(st.GetStore().GetStore().GetAddress(), grpcutil.DialOptions(tls)...)
				if err != nil {
					return err
				}
				defer cc.Close()
				resp, err := kvpb.NewTabletClient(cc).CheckTablet(ctx, &kvpb.CheckTabletRequest{TabletId: id})
				if err != nil {
					return err
				}
				res := checkResultFromPB(id, resp)
				return e.print(res, func(w io.Writer) error { return writeCheckResult(w, res) })
			})
		},
	}
}

func checkResultFromPB(id uint64, r *kvpb.CheckTabletResponse) checkResult {
	out := checkResult{TabletID: id, CheckID: r.CheckId, Index: r.Index, Consistent: r.Consistent, NoMajority: r.NoMajority,
		Replicas: []checkReplica{}, DifferingSpans: [][2]string{}, DifferingKeys: []string{}}
	for _, rep := range r.Replicas {
		out.Replicas = append(out.Replicas, checkReplica{ReplicaID: rep.ReplicaId, StoreID: rep.StoreId, Hash: fmt.Sprintf("%016x", rep.Hash), Keys: rep.Keys, Bad: rep.Bad, Error: rep.Error})
	}
	for _, sp := range r.DifferingSpans {
		out.DifferingSpans = append(out.DifferingSpans, [2]string{hex.EncodeToString(sp.Start), hex.EncodeToString(sp.End)})
	}
	for _, k := range r.DifferingKeys {
		out.DifferingKeys = append(out.DifferingKeys, hex.EncodeToString(k))
	}
	return out
}

func writeCheckResult(w io.Writer, r checkResult) error {
	verdict := "consistent"
	switch {
	case r.NoMajority:
		verdict = "INCONSISTENT: no majority agrees; nothing was changed, the tablet is flagged"
	case !r.Consistent && len(r.DifferingSpans) > 0:
		verdict = "MISMATCH: the replicas marked bad are being replaced by PD"
	case !r.Consistent:
		verdict = "incomplete: not every replica answered"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tablet %d, check %016x at log index %d: %s\n", r.TabletID, r.CheckID, r.Index, verdict)
	fmt.Fprintln(tw, "REPLICA\tSTORE\tHASH\tKEYS\tSTATE")
	for _, rep := range r.Replicas {
		state := "ok"
		switch {
		case rep.Error != "":
			state = "no answer: " + rep.Error
		case rep.Bad:
			state = "BAD"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\n", rep.ReplicaID, rep.StoreID, rep.Hash, rep.Keys, state)
	}
	for _, sp := range r.DifferingSpans {
		fmt.Fprintf(tw, "differing span\t[%s, %s)\n", sp[0], sp[1])
	}
	for _, k := range r.DifferingKeys {
		fmt.Fprintf(tw, "differing key\t%s\n", k)
	}
	return tw.Flush()
}
