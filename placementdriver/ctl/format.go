package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WriteJSON writes v as indented JSON followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows aligned in columns separated by two spaces.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...string) {
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

// dash renders an empty value as "-" so every column has a cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// HumanBytes renders n with a binary unit and at most one decimal:
// 0B, 512B, 1.5KiB, 96MiB, 2.3GiB.
func HumanBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	x := float64(n)
	i := 0
	// Compare after rounding to one decimal, so 1023.99KiB prints as 1MiB.
	for math.Round(x*10)/10 >= 1024 && i < len(units)-1 {
		x /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatUint(n, 10) + "B"
	}
	s := strconv.FormatFloat(x, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + units[i]
}

// Labels renders labels as k=v,k=v sorted by key.
func Labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// Age renders the time since unixMs relative to now ("-" for 0).
func Age(unixMs int64, now time.Time) string {
	if unixMs == 0 {
		return "-"
	}
	d := now.Sub(time.UnixMilli(unixMs))
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return d.Truncate(100*time.Millisecond).String() + " ago"
	case d < 24*time.Hour:
		return d.Truncate(time.Second).String() + " ago"
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// WriteStores prints stores as a table:
//
//	ID  ADDRESS  STATE  LABELS  TABLETS  LEADERS  USED  AVAILABLE  CAPACITY  HEARTBEAT
func WriteStores(w io.Writer, stores []Store, now time.Time) error {
	t := newTable(w, "ID", "ADDRESS", "STATE", "LABELS", "TABLETS", "LEADERS", "USED", "AVAILABLE", "CAPACITY", "HEARTBEAT")
	for _, s := range stores {
		t.row(u64(s.ID), dash(s.Address), dash(s.State), dash(Labels(s.Labels)),
			strconv.Itoa(s.TabletCount), strconv.Itoa(s.LeaderCount),
			HumanBytes(s.UsedBytes), HumanBytes(s.AvailableBytes), HumanBytes(s.CapacityBytes),
			Age(s.LastHeartbeatUnixMs, now))
	}
	return t.flush()
}

// KeyText renders a hex key for the table: the start and end of the key
// space (empty keys) as "(min)" and "(max)".
func KeyText(hexKey string, end bool) string {
	if hexKey != "" {
		return hexKey
	}
	if end {
		return "(max)"
	}
	return "(min)"
}

// PeersText renders peers as store IDs, non-voters with their role:
// "1,2,4(learner)".
func PeersText(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = u64(p.StoreID)
		if p.Role != "" && p.Role != "voter" {
			parts[i] += "(" + p.Role + ")"
		}
		if p.Bad {
			parts[i] += "(bad)"
		}
	}
	return strings.Join(parts, ",")
}

// WriteTablets prints tablets as a table:
//
//	ID  START_KEY  END_KEY  EPOCH  LEADER  PEERS  SIZE  KEYS
//
// EPOCH is version/conf_version; LEADER is the leader's store ID.
func WriteTablets(w io.Writer, tablets []Tablet) error {
	t := newTable(w, "ID", "START_KEY", "END_KEY", "EPOCH", "LEADER", "PEERS", "SIZE", "KEYS")
	for _, tb := range tablets {
		leader := "-"
		if tb.LeaderStoreID != 0 {
			leader = u64(tb.LeaderStoreID)
		}
		peers := dash(PeersText(tb.Peers))
		if tb.Inconsistent {
			peers += " INCONSISTENT"
		}
		t.row(u64(tb.ID), KeyText(tb.StartKey, false), KeyText(tb.EndKey, true),
			u64(tb.Epoch.Version)+"/"+u64(tb.Epoch.ConfVersion), leader, peers,
			HumanBytes(tb.ApproximateSize), u64(tb.ApproximateKeys))
	}
	return t.flush()
}

// FamiliesText renders families as name(versions=N,age=D) with unlimited
// limits left out: "v(versions=1),d(age=24h0m0s)".
func FamiliesText(fams []Family) string {
	parts := make([]string, len(fams))
	for i, f := range fams {
		var opts []string
		if f.MaxVersions != 0 {
			opts = append(opts, "versions="+strconv.FormatUint(uint64(f.MaxVersions), 10))
		}
		if f.MaxAgeMs != 0 {
			opts = append(opts, "age="+(time.Duration(f.MaxAgeMs)*time.Millisecond).String())
		}
		parts[i] = f.Name
		if len(opts) > 0 {
			parts[i] += "(" + strings.Join(opts, ",") + ")"
		}
	}
	return strings.Join(parts, ",")
}

// WriteTables prints tables as a table:
//
//	ID  NAME  VERSION  FAMILIES  SPLIT_ROWS
func WriteTables(w io.Writer, tables []Table) error {
	t := newTable(w, "ID", "NAME", "VERSION", "FAMILIES", "SPLIT_ROWS")
	for _, tb := range tables {
		t.row(u64(tb.ID), dash(tb.Name), u64(tb.Version), dash(FamiliesText(tb.Families)), strconv.Itoa(len(tb.SplitRows)))
	}
	return t.flush()
}

// WriteOperators prints operators as a table:
//
//	TABLET  KIND  STEP  AGE  DESCRIPTION
func WriteOperators(w io.Writer, ops []Operator, now time.Time) error {
	t := newTable(w, "TABLET", "KIND", "STEP", "AGE", "DESCRIPTION")
	for _, op := range ops {
		t.row(u64(op.TabletID), dash(op.Kind), dash(op.Step), Age(op.CreatedUnixMs, now), dash(op.Description))
	}
	return t.flush()
}

// WriteConfig prints the configuration as KEY VALUE lines sorted by key.
func WriteConfig(w io.Writer, cfg map[string]string) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := newTable(w, "KEY", "VALUE")
	for _, k := range keys {
		t.row(k, dash(cfg[k]))
	}
	return t.flush()
}

// WriteMembers prints the PD members as a table; ROLE is leader or
// follower:
//
//	NAME  ID  ROLE  CLIENT_ADDR  PEER_ADDR
func WriteMembers(w io.Writer, m Members) error {
	t := newTable(w, "NAME", "ID", "ROLE", "CLIENT_ADDR", "PEER_ADDR")
	for _, mb := range m.Members {
		role := "follower"
		if mb.Leader {
			role = "leader"
		}
		t.row(mb.Name, u64(mb.MemberID), role, dash(mb.ClientAddr), dash(mb.PeerAddr))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if m.Leader == "" {
		_, err := fmt.Fprintln(w, "no leader elected yet")
		return err
	}
	return nil
}

// DescribeError renders a PD error for a person: the server's message and
// the gRPC code, e.g. "tablet 7 not found (NotFound)".
func DescribeError(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	switch st.Code() {
	case codes.Unimplemented:
		return fmt.Sprintf("not supported by this placement driver: %s (Unimplemented)", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Sprintf("timed out (see --timeout): %s", st.Message())
	}
	return fmt.Sprintf("%s (%s)", st.Message(), st.Code())
}
