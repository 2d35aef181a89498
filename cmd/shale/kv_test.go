package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testcluster"
)

func runShale(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut syncBuffer // see runShaleStreams
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// shale kv against a real in-process cluster.
func TestKVCommand(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	pd := strings.Join(c.PDEndpoints(), ",")
	for _, kv := range [][2]string{{"b", "2"}, {"a", "1"}, {"c", "3"}} {
		_, err := runShale(t, "kv", "--pd", pd, "put", kv[0], kv[1])
		require.NoError(t, err)
	}
	out, err := runShale(t, "kv", "--pd", pd, "get", "a")
	require.NoError(t, err)
	require.Equal(t, "1\n", out)

	out, err = runShale(t, "kv", "--pd", pd, "scan")
	require.NoError(t, err)
	require.Equal(t, "a\t1\nb\t2\nc\t3\n", out)
	out, err = runShale(t, "kv", "--pd", pd, "scan", "b", "--limit", "1")
	require.NoError(t, err)
	require.Equal(t, "b\t2\n", out)

	_, err = runShale(t, "kv", "--pd", pd, "del", "a")
	require.NoError(t, err)
	_, err = runShale(t, "kv", "--pd", pd, "get", "a")
	require.ErrorIs(t, err, errNotFound)

	_, err = runShale(t, "kv", "--pd", pd, "put", "only-key")
	require.Error(t, err, "put needs a key and a value")
}
