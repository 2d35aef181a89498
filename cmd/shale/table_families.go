package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/tablefmt"
)

// cbt's verbs for column families, online (PD's ModifyColumnFamilies).
func newTableFamilyCommands(run tableRunFunc) []*cobra.Command {
	modify := func(cmd *cobra.Command, table string, ch kvclient.FamilyChange) error {
		return run(cmd, func(ctx context.Context, c *kvclient.Client, _ io.Writer) error {
			_, err := c.ModifyColumnFamilies(ctx, table, ch)
			return err
		})
	}
	return []*cobra.Command{{
		Use:   "createfamily NAME FAMILY[:maxversions=N,maxage=D]",
		Short: "Add a column family to a table, online",
		Long: `Add a column family, with an optional garbage-collection policy as in
'create'. The stores serve it when the command returns. A family name
deleted from the table cannot be used again there.`,
		Example: `  shale table createfamily users prefs
  shale table createfamily users audit:maxage=720h`,
		Args: tableArgs(2, 2, "NAME FAMILY[:POLICY]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := tablefmt.ParseFamily(args[1])
			if err != nil {
				return err
			}
			return modify(cmd, args[0], kvclient.CreateFamily(f))
		},
	}, {
		Use:   "deletefamily NAME FAMILY",
		Short: "Delete a column family: its cells disappear from reads at once, GC removes them",
		Args:  tableArgs(2, 2, "NAME FAMILY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tableNonEmpty("FAMILY", args[1]); err != nil {
				return err
			}
			return modify(cmd, args[0], kvclient.DropFamily(args[1]))
		},
	}, {
		Use:   "setgcpolicy NAME FAMILY (maxversions=N | maxage=D | maxversions=N or maxage=D | never)",
		Short: "Set a column family's garbage-collection policy, online",
		Long: `Replace a family's garbage-collection policy, as cbt's setgcpolicy:
maxversions=N keeps N versions per column, maxage=D drops versions older
than D (a Go duration), both: either rule removes a version ("or"; cbt's
"and" is not supported), never: keep everything. Reads apply the new
policy at once; GC then removes what it no longer keeps.`,
		Example: `  shale table setgcpolicy users info maxversions=1
  shale table setgcpolicy users stats maxversions=5 or maxage=24h
  shale table setgcpolicy users info never`,
		Args: tableArgs(3, 5, "NAME FAMILY POLICY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseGCPolicy(args[1], args[2:])
			if err != nil {
				return err
			}
			return modify(cmd, args[0], kvclient.UpdateFamily(f))
		},
	}}
}

// parseGCPolicy reads setgcpolicy's policy words into family's schema.
func parseGCPolicy(family string, words []string) (kvclient.Family, error) {
	if err := tableNonEmpty("FAMILY", family); err != nil {
		return kvclient.Family{}, err
	}
	if len(words) == 1 && words[0] == "never" {
		return kvclient.Family{Name: family}, nil
	}
	var rules []string
	for i, w := range words {
		switch {
		case i%2 == 1 && w == "or":
		case i%2 == 1 && w == "and":
			return kvclient.Family{}, fmt.Errorf("setgcpolicy: %q is not supported: a version goes when either rule says so (use \"or\")", w)
		case i%2 == 0 && (strings.HasPrefix(w, "maxversions=") || strings.HasPrefix(w, "maxage=")):
			rules = append(rules, w)
		default:
			return kvclient.Family{}, fmt.Errorf("setgcpolicy: unexpected %q: want maxversions=N, maxage=D, both joined by \"or\", or never", w)
		}
	}
	if len(rules) == 0 || len(words)%2 == 0 {
		return kvclient.Family{}, fmt.Errorf("setgcpolicy: want maxversions=N, maxage=D, both joined by \"or\", or never")
	}
	return tablefmt.ParseFamily(family + ":" + strings.Join(rules, ","))
}
