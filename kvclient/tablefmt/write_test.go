package tablefmt

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient"
)

// ts is 2026-01-02 03:04:05.000006 UTC in microseconds.
var ts = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC).UnixMicro()

func TestWriteRow(t *testing.T) {
	var b strings.Builder
	WriteRow(&b, &kvclient.Row{Key: []byte("alice"), Cells: []kvclient.Cell{
		{Family: "info", Qualifier: []byte("name"), Timestamp: ts, Value: []byte("Alice")},
		{Family: "s", Qualifier: []byte("bin"), Timestamp: ts, Value: []byte("a\x00\"b\n")},
	}})
	require.Equal(t, "alice\n"+
		"  info:name @ 2026/01/02-03:04:05.000006\n"+
		"    \"Alice\"\n"+
		"  s:bin @ 2026/01/02-03:04:05.000006\n"+
		"    \"a\\x00\\\"b\\n\"\n", b.String())
}

type sliceRows struct {
	rows []*kvclient.Row
	cur  *kvclient.Row
}

func (s *sliceRows) Next() bool {
	if len(s.rows) == 0 {
		return false
	}
	s.cur, s.rows = s.rows[0], s.rows[1:]
	return true
}

func (s *sliceRows) Row() *kvclient.Row { return s.cur }

func TestWriteRows(t *testing.T) {
	var b strings.Builder
	WriteRows(&b, &sliceRows{})
	require.Empty(t, b.String())
	WriteRows(&b, &sliceRows{rows: []*kvclient.Row{{Key: []byte("a")}, {Key: []byte("b")}}})
	dash := strings.Repeat("-", 40) + "\n"
	require.Equal(t, dash+"a\n"+dash+"b\n", b.String())
}

func TestFormatTimestamp(t *testing.T) {
	require.Equal(t, "2026/01/02-03:04:05.000006", FormatTimestamp(ts))
	require.Equal(t, "1970/01/01-00:00:00.000000", FormatTimestamp(0))
}

func TestWriteTableNames(t *testing.T) {
	var b strings.Builder
	WriteTableNames(&b, []*kvclient.TableInfo{{Name: "users"}, {Name: "kv"}, {Name: "events"}})
	require.Equal(t, "events\nkv\nusers\n", b.String())
}

func TestWriteTableInfo(t *testing.T) {
	var b strings.Builder
	require.NoError(t, WriteTableInfo(&b, &kvclient.TableInfo{
		Families: []kvclient.Family{
			{Name: "info", MaxVersions: 3},
			{Name: "stats", MaxAge: 24 * time.Hour},
			{Name: "e", MaxVersions: 1, MaxAge: 90 * time.Minute},
		},
		SplitRows: [][]byte{[]byte("m"), []byte("t\x00")},
	}))
	require.Equal(t, ""+
		"FAMILY  MAX VERSIONS  MAX AGE\n"+
		"info    3             -\n"+
		"stats   -             24h\n"+
		"e       1             1h30m\n"+
		"\n"+
		"SPLIT ROWS\n"+
		"\"m\"\n"+
		"\"t\\x00\"\n", b.String())

	b.Reset()
	require.NoError(t, WriteTableInfo(&b, &kvclient.TableInfo{Families: []kvclient.Family{{Name: "f"}}}))
	require.Equal(t, "FAMILY  MAX VERSIONS  MAX AGE\nf       -             -\n", b.String())
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:                "24h",
		90 * time.Minute:              "1h30m",
		time.Hour + time.Second:       "1h0m1s",
		2 * time.Minute:               "2m",
		90 * time.Second:              "1m30s",
		1500 * time.Millisecond:       "1.5s",
		720*time.Hour + 5*time.Minute: "720h5m",
	} {
		require.Equal(t, want, ShortDuration(d), "%v", d)
		// What describe prints, create accepts back.
		f, err := ParseFamily("f:maxage=" + want)
		require.NoError(t, err)
		require.Equal(t, d, f.MaxAge)
	}
}
