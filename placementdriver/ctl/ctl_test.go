package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

func tablet(id uint64, start, end string, leader uint64, stores ...uint64) *pdpb.TabletInfo {
	d := &metapb.TabletDescriptor{TabletId: id, StartKey: []byte(start), EndKey: []byte(end), Epoch: &metapb.Epoch{Version: 2, ConfVersion: 5}}
	for i, s := range stores {
		d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: id*10 + uint64(i), StoreId: s})
	}
	return &pdpb.TabletInfo{Tablet: d, LeaderStoreId: leader}
}

func TestCountTablets(t *testing.T) {
	got := CountTablets([]*pdpb.TabletInfo{
		tablet(1, "", "b", 1, 1, 2, 3),
		tablet(2, "b", "c", 2, 1, 2),
		tablet(3, "c", "", 0, 3),
	})
	require.Equal(t, map[uint64]Counts{1: {Tablets: 2, Leaders: 1}, 2: {Tablets: 2, Leaders: 1}, 3: {Tablets: 2}}, got)
	require.Empty(t, CountTablets(nil))
}

func TestNames(t *testing.T) {
	require.Equal(t, "Up", StateName(pdpb.StoreState_UP))
	require.Equal(t, "Disconnected", StateName(pdpb.StoreState_DISCONNECTED))
	require.Equal(t, "Tombstone", StateName(pdpb.StoreState_TOMBSTONE))
	require.Equal(t, "voter", RoleName(metapb.ReplicaRole_VOTER))
	require.Equal(t, "voter_incoming", RoleName(metapb.ReplicaRole_VOTER_INCOMING))
	require.Equal(t, "learner", RoleName(metapb.ReplicaRole_LEARNER))
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0B", 512: "512B", 1023: "1023B", 1024: "1KiB", 1536: "1.5KiB",
		96 << 20: "96MiB", 3<<30 + 300<<20: "3.3GiB", 1<<40 - 1: "1TiB", 1 << 50: "1PiB",
	} {
		require.Equal(t, want, HumanBytes(n), "%d", n)
	}
}

func TestAge(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	require.Equal(t, "-", Age(0, now))
	require.Equal(t, "1.5s ago", Age(now.Add(-1520*time.Millisecond).UnixMilli(), now))
	require.Equal(t, "1h2m3s ago", Age(now.Add(-time.Hour-2*time.Minute-3*time.Second).UnixMilli(), now))
	require.Equal(t, "3d ago", Age(now.Add(-80*time.Hour).UnixMilli(), now))
	require.Equal(t, "0s ago", Age(now.Add(time.Second).UnixMilli(), now))
}

// jsonOf marshals v and decodes it generically.
func jsonOf(t *testing.T, v any) any {
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, v))
	var out any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &out))
	return out
}

func TestJSONShapes(t *testing.T) {
	// Empty lists are arrays, never null; missing labels are {}.
	require.Equal(t, []any{}, jsonOf(t, StoresFromPB(nil, nil)))
	require.Equal(t, []any{}, jsonOf(t, TabletsFromPB(nil)))
	require.Equal(t, []any{}, jsonOf(t, TablesFromPB(nil)))
	require.Equal(t, []any{}, jsonOf(t, OperatorsFromPB(nil)))

	st := jsonOf(t, StoreFromPB(&pdpb.StoreInfo{Store: &metapb.Store{StoreId: 4, Address: "a:1"}, State: pdpb.StoreState_OFFLINE}, Counts{Tablets: 7, Leaders: 2}))
	require.Equal(t, map[string]any{
		"id": 4.0, "address": "a:1", "state": "Offline", "labels": map[string]any{}, "tablet_count": 7.0,
		"leader_count": 2.0, "used_bytes": 0.0, "capacity_bytes": 0.0, "available_bytes": 0.0, "last_heartbeat_unix_ms": 0.0,
		"snapshot_limit": 0.0,
	}, st)

	tb := tablet(9, "\x01", "\xff", 3, 3)
	tb.Tablet.Replicas[0].Role = metapb.ReplicaRole_LEARNER
	tb.Stats = &pdpb.TabletStats{ApproximateSize: 10, ApproximateKeys: 2, ReadQps: 1.5, WriteQps: 2, ReadBytesPerSec: 3, WriteBytesPerSec: 4}
	require.Equal(t, map[string]any{
		"id": 9.0, "start_key": "01", "end_key": "ff", "epoch": map[string]any{"version": 2.0, "conf_version": 5.0},
		"peers":           []any{map[string]any{"replica_id": 90.0, "store_id": 3.0, "role": "learner"}},
		"leader_store_id": 3.0, "approximate_size": 10.0, "approximate_keys": 2.0, "read_qps": 1.5, "write_qps": 2.0,
		"read_bytes_per_sec": 3.0, "write_bytes_per_sec": 4.0,
	}, jsonOf(t, TabletFromPB(tb)))

	m := MembersFromPB(&pdpb.GetMembersResponse{Members: []*pdpb.Member{{Name: "b", MemberId: 2}, {Name: "a", MemberId: 1}}})
	require.Equal(t, "", m.Leader)
	require.Equal(t, "a", m.Members[0].Name)
	require.False(t, m.Members[0].Leader || m.Members[1].Leader)
	var buf bytes.Buffer
	require.NoError(t, WriteMembers(&buf, m))
	require.True(t, strings.HasSuffix(buf.String(), "no leader elected yet\n"), buf.String())
}

func TestTablesShape(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteStores(&buf, nil, time.Now()))
	require.Equal(t, "ID  ADDRESS  STATE  LABELS  TABLETS  LEADERS  USED  AVAILABLE  CAPACITY  HEARTBEAT\n", buf.String())

	buf.Reset()
	require.NoError(t, WriteTablets(&buf, TabletsFromPB([]*pdpb.TabletInfo{tablet(1, "", "", 0)})))
	require.Equal(t, []string{
		"ID  START_KEY  END_KEY  EPOCH  LEADER  PEERS  SIZE  KEYS",
		"1   (min)      (max)    2/5    -       -      0B    0",
	}, strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"))

	buf.Reset()
	require.NoError(t, WriteConfig(&buf, map[string]string{"b": "2", "a": "1"}))
	require.Equal(t, "KEY  VALUE\na    1\nb    2\n", buf.String())
}

func TestDescribeError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, "tablet 7 not found"), "tablet 7 not found (NotFound)"},
		{status.Error(codes.Unimplemented, "unknown method"), "not supported by this placement driver: unknown method (Unimplemented)"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "timed out (see --timeout): context deadline exceeded"},
		{errors.New("dial tcp: refused"), "dial tcp: refused"},
	} {
		if got := DescribeError(c.err); got != c.want {
			t.Errorf("DescribeError(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestPrintableAndKeyLabel(t *testing.T) {
	require.Equal(t, `user\x00\xff\\1 ünï`, Printable([]byte("user\x00\xff\\1 ünï")))
	require.Equal(t, `\x0a\x09`, Printable([]byte("\n\t")))
	names := map[uint64]string{5: "users"}
	tbl, row := KeyLabel(keys.RowKey(5, []byte("alice\x00")), names)
	require.Equal(t, "users", tbl)
	require.Equal(t, `alice\x00`, row)
	tbl, row = KeyLabel(keys.TablePrefix(7), names)
	require.Equal(t, "table 7", tbl)
	tbl, _ = KeyLabel(keys.TablePrefix(6), names)
	require.Equal(t, "users (end)", tbl)
	require.Equal(t, "", row)
	tbl, _ = KeyLabel(nil, names)
	require.Equal(t, "(min)", tbl)
	// A truncated key (the heat map keeps prefixes) keeps what it has.
	k := keys.RowKey(5, []byte("a\x00bcdefgh"))
	_, row = KeyLabel(k[:13], names)
	require.Equal(t, `a\x00bc…`, row)
}

func TestHotTablets(t *testing.T) {
	ts := []Tablet{
		{ID: 1, ReadQPS: 5, WriteBytesPerSec: 100},
		{ID: 2, ReadQPS: 9},
		{ID: 3, ReadQPS: 5, WriteQPS: 1},
		{ID: 4},
	}
	ids := func(ts []Tablet) (out []uint64) {
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	require.Equal(t, []uint64{2, 1}, ids(HotTablets(ts, false, false, 2)))
	require.Equal(t, []uint64{1}, ids(HotTablets(ts, true, true, 0)))
	require.Equal(t, []uint64{3}, ids(HotTablets(ts, true, false, 0)))
	require.Empty(t, HotTablets(ts, false, true, 0))
}
