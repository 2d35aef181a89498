package tablefmt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseReadArgs(t *testing.T) {
	a, err := ParseReadArgs([]string{"prefix=ab", "count=3", "keys-only=true", "columns=f,g:q,h:"}, nil)
	require.NoError(t, err)
	require.Equal(t, []byte("ab"), a.Scan.Start)
	require.Equal(t, []byte("ac"), a.Scan.End)
	require.Equal(t, 3, a.Limit)
	require.Equal(t, 3, a.Scan.Limit, "no regex: the servers stop at count")
	require.True(t, a.KeysOnly)
	require.Len(t, a.Scan.Read, 3, "families, columns, digest")

	a, err = ParseReadArgs([]string{"regex=row[0-9]", "count=2"}, nil)
	require.NoError(t, err)
	require.Zero(t, a.Scan.Limit, "with a regex count applies after filtering")
	require.True(t, a.Match([]byte("row1")))
	require.False(t, a.Match([]byte("row12")), "the whole key must match")
	require.False(t, a.Match([]byte("xrow1")))

	for _, tc := range []struct{ args []string }{
		{[]string{"prefix="}},
		{[]string{"prefix=a", "end=b"}},
		{[]string{"regex=("}},
		{[]string{"columns=a,:b"}},
		{[]string{"keys-only=maybe"}},
		{[]string{"count=x"}},
		{[]string{"nope=1"}},
		{[]string{"start=b", "end=a"}},
	} {
		_, err := ParseReadArgs(tc.args, nil)
		require.Error(t, err, "%v", tc.args)
	}
	_, err = ParseReadArgs([]string{"count=1"}, []string{"start"})
	require.ErrorContains(t, err, `unknown key "count"`)
}

func TestSplitTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		v    string
		ts   int64
		fail bool
	}{
		{"plain", "plain", 0, false},
		{"v@123", "v", 123, false},
		{"me@host", "me@host", 0, false},
		{"a@b@7", "a@b", 7, false},
		{"trailing@", "trailing@", 0, false},
		{"@5", "", 5, false},
		{"v@99999999999999999999", "", 0, true},
	} {
		v, ts, err := splitTimestamp(tc.in)
		if tc.fail {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.v, v, tc.in)
		require.Equal(t, tc.ts, ts, tc.in)
	}
}
