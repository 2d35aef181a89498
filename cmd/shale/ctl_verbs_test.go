package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
)

// ctlReal runs `shale ctl --pd PD args...` against a real cluster.
func ctlReal(t *testing.T, pd string, args ...string) (string, error) {
	t.Helper()
	return runShale(t, append([]string{"ctl", "--pd", pd, "--timeout", "10s"}, args...)...)
}

// ctlRealJSON runs a ctl command with -w json and decodes its output.
func ctlRealJSON(t *testing.T, pd string, out any, args ...string) {
	t.Helper()
	stdout, err := ctlReal(t, pd, append(args, "-w", "json")...)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(stdout), out), stdout)
}

// The pd-ctl style verbs against a real in-process cluster: tablet finds
// a row's tablet by table and row key, hot ranks the loaded tablets,
// schedulers pause and resume, an operator is removed, stores get labels
// and limits and are deleted, and health reports the cluster.
func TestCtlVerbsOnACluster(t *testing.T) {
	t.Parallel()
	c := testcluster.Start(t, testcluster.Options{Stores: 4})
	pd := strings.Join(c.PDEndpoints(), ",")
	_, err := runShale(t, "table", "--pd", pd, "create", "users", "f", "--split", "m")
	require.NoError(t, err)

	// tablet --table --row
	var loc struct {
		Table      string `json:"table"`
		Row        string `json:"row"`
		StartTable string `json:"start_table"`
		StartRow   string `json:"start_row"`
		EndTable   string `json:"end_table"`
		Tablet     struct {
			ID            uint64 `json:"id"`
			LeaderStoreID uint64 `json:"leader_store_id"`
		} `json:"tablet"`
		Addresses map[string]string `json:"addresses"`
	}
	testutils.SucceedsSoon(t, func() error {
		loc.Addresses = nil // json merges into a map
		ctlRealJSON(t, pd, &loc, "tablet", "--table", "users", "--row", "zed")
		if loc.StartRow != "m" || loc.Tablet.LeaderStoreID == 0 {
			return fmt.Errorf("the split at m has no leader yet: %+v", loc)
		}
		return nil
	})
	require.Equal(t, "users", loc.StartTable)
	require.Equal(t, "users (end)", loc.EndTable)
	require.Len(t, loc.Addresses, 3)
	var addrs []string
	for _, s := range c.Stores {
		addrs = append(addrs, s.Addr)
	}
	require.Contains(t, addrs, loc.Addresses[fmt.Sprint(loc.Tablet.LeaderStoreID)])
	out, err := ctlReal(t, pd, "tablet", "--table", "users", "--row", "alice")
	require.NoError(t, err)
	require.Contains(t, out, "range    [users, users/m)")
	require.Contains(t, out, "leader   store ")
	require.Contains(t, out, "row      users/alice")
	_, err = ctlReal(t, pd, "tablet", "--table", "nope", "--row", "x")
	require.ErrorContains(t, err, "nope")
	_, err = ctlReal(t, pd, "tablet", "--table", "users")
	require.ErrorContains(t, err, "--row is required")

	// hot write: rows after m are written; their tablet leads.
	var hot []struct {
		ID         uint64 `json:"id"`
		StartTable string `json:"start_table"`
		StartRow   string `json:"start_row"`
	}
	testutils.SucceedsSoon(t, func() error {
		for i := 0; i < 20; i++ {
			if _, err := runShale(t, "table", "--pd", pd, "set", "users", fmt.Sprintf("row%02d", i), "f:q=v"); err != nil {
				return err
			}
		}
		ctlRealJSON(t, pd, &hot, "hot", "write", "--by", "ops", "--limit", "1")
		if len(hot) == 0 || hot[0].ID != loc.Tablet.ID {
			return fmt.Errorf("want tablet %d first, got %+v", loc.Tablet.ID, hot)
		}
		return nil
	})
	require.Equal(t, "users", hot[0].StartTable)
	require.Equal(t, "m", hot[0].StartRow)
	out, err = ctlReal(t, pd, "hot", "read")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "ID  START"), out)
	_, err = ctlReal(t, pd, "hot", "sideways")
	require.ErrorContains(t, err, "want read or write")

	// scheduler show|pause|resume
	out, err = ctlReal(t, pd, "scheduler", "show")
	require.NoError(t, err)
	require.Equal(t, []string{"NAME            STATE", "balance-leader  running", "balance-tablet  running", "hot             running"}, lines(out))
	out, err = ctlReal(t, pd, "scheduler", "pause", "balance-leader", "3600")
	require.NoError(t, err)
	require.Contains(t, out, "balance-leader  paused until ")
	var scheds []struct {
		Name   string `json:"name"`
		Paused bool   `json:"paused"`
	}
	ctlRealJSON(t, pd, &scheds, "scheduler", "show")
	require.True(t, scheds[0].Paused)
	require.False(t, scheds[1].Paused)
	_, err = ctlReal(t, pd, "scheduler", "resume", "balance-leader")
	require.NoError(t, err)
	ctlRealJSON(t, pd, &scheds, "scheduler", "show")
	require.False(t, scheds[0].Paused)
	_, err = ctlReal(t, pd, "scheduler", "pause", "nope", "1m")
	require.ErrorContains(t, err, `no scheduler "nope"`)
	_, err = ctlReal(t, pd, "scheduler", "pause", "hot", "soon")
	require.ErrorContains(t, err, "DURATION")

	var stores []struct {
		ID            uint64            `json:"id"`
		Address       string            `json:"address"`
		Labels        map[string]string `json:"labels"`
		SnapshotLimit uint32            `json:"snapshot_limit"`
		State         string            `json:"state"`
	}
	ctlRealJSON(t, pd, &stores, "stores")
	require.Len(t, stores, 4)

	// store label|limit
	s1, s2 := fmt.Sprint(stores[0].ID), fmt.Sprint(stores[1].ID)
	out, err = ctlReal(t, pd, "store", "label", s1, "zone=z9", "rack=r1")
	require.NoError(t, err)
	require.Equal(t, "store "+s1+" labels: rack=r1,zone=z9\n", out)
	out, err = ctlReal(t, pd, "store", "label", s1, "rack=")
	require.NoError(t, err)
	require.Equal(t, "store "+s1+" labels: zone=z9\n", out)
	_, err = ctlReal(t, pd, "store", "label", s1, "novalue")
	require.ErrorContains(t, err, "want KEY=VALUE")
	ctlRealJSON(t, pd, &stores, "stores")
	require.Equal(t, map[string]string{"zone": "z9"}, stores[0].Labels)

	out, err = ctlReal(t, pd, "store", "limit", s2, "1")
	require.NoError(t, err)
	require.Equal(t, []string{"STORE  SNAPSHOT_LIMIT", s2 + "   1"}, lines(out))
	out, err = ctlReal(t, pd, "store", "limit")
	require.NoError(t, err)
	require.Contains(t, out, s1+"   4 (max-snapshots-per-store)")
	var limits []struct {
		StoreID   uint64 `json:"store_id"`
		Effective uint32 `json:"effective"`
	}
	ctlRealJSON(t, pd, &limits, "store", "limit", s2, "0")
	require.Equal(t, uint32(4), limits[0].Effective)
	_, err = ctlReal(t, pd, "store", "limit", "99", "1")
	require.ErrorContains(t, err, "store 99 not found")

	// health, then store delete makes a store Offline (still healthy).
	out, err = ctlReal(t, pd, "health")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "healthy: pd leader pd1 (1 member(s)); stores: 4 Up"), out)
	var h struct {
		Healthy bool `json:"healthy"`
	}
	ctlRealJSON(t, pd, &h, "health")
	require.True(t, h.Healthy)

	// operator remove: with balancing paused, a move to a store that was
	// just stopped, so the learner cannot catch up and the operator is
	// still running when removed.
	for _, sch := range []string{"balance-tablet", "balance-leader", "hot"} {
		_, err = ctlReal(t, pd, "scheduler", "pause", sch, "1h")
		require.NoError(t, err)
	}
	var spare uint64
	spareIdx := -1
	var from string
	testutils.SucceedsWithin(t, 30*time.Second, func() error {
		loc.Addresses = nil // json merges into a map
		ctlRealJSON(t, pd, &loc, "tablet", "--table", "users", "--row", "zed")
		spare, spareIdx, from = 0, -1, ""
		for i, s := range stores {
			if _, ok := loc.Addresses[fmt.Sprint(s.ID)]; !ok {
				spare, spareIdx = s.ID, i
			}
		}
		for s := range loc.Addresses {
			if s != fmt.Sprint(loc.Tablet.LeaderStoreID) {
				from = s
			}
		}
		// An operator started before the pause may still be moving a
		// replica onto the spare store (it failed once that way: "already
		// has a replica on store"): wait until none runs on the tablet.
		var running []struct {
			TabletID uint64 `json:"tablet_id"`
		}
		ctlRealJSON(t, pd, &running, "operators")
		busy := false
		for _, op := range running {
			busy = busy || op.TabletID == loc.Tablet.ID
		}
		if busy || spare == 0 || from == "" || len(loc.Addresses) != 3 {
			ops, _ := ctlReal(t, pd, "operators")
			tab, _ := ctlReal(t, pd, "tablet", "--table", "users", "--row", "zed")
			return fmt.Errorf("tablet %d is changing: %v\n%s\n%s", loc.Tablet.ID, loc.Addresses, ops, tab)
		}
		return nil
	})
	for i, st := range c.Stores {
		if st.Addr == stores[spareIdx].Address {
			c.StopStore(i)
		}
	}
	_, err = ctlReal(t, pd, "move", fmt.Sprint(loc.Tablet.ID), from, fmt.Sprint(spare))
	require.NoError(t, err)
	out, err = ctlReal(t, pd, "operator", "show")
	require.NoError(t, err)
	require.Contains(t, out, "move replica from store")
	out, err = ctlReal(t, pd, "operator", "remove", fmt.Sprint(loc.Tablet.ID))
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("removed admin operator of tablet %d", loc.Tablet.ID))
	_, err = ctlReal(t, pd, "operator", "remove", "999999")
	require.ErrorContains(t, err, "has no running operator")

	_, err = ctlReal(t, pd, "store", "delete", fmt.Sprint(spare))
	require.NoError(t, err)
	ctlRealJSON(t, pd, &stores, "stores")
	require.Contains(t, []string{"Offline", "Tombstone"}, stores[spareIdx].State)

	// -w is checked; --json is -w json.
	_, err = ctlReal(t, pd, "stores", "-w", "yaml")
	require.ErrorContains(t, err, "want table or json")
	out, err = ctlReal(t, pd, "scheduler", "show", "--json")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, "["), out)
}
