package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
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
	pd := sharedPD(t)
	clearKVAtEnd(t, pd)
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

// The etcdctl-style options against a real in-process cluster: --prefix,
// ranges, --keys-only, --limit, -w json, range and prefix deletes, and
// printable escaping of binary keys and values.
func TestKVRangesAndFormats(t *testing.T) {
	pd := sharedPD(t)
	clearKVAtEnd(t, pd)
	kv := func(args ...string) string {
		t.Helper()
		out, err := runShale(t, append([]string{"kv", "--pd", pd}, args...)...)
		require.NoError(t, err)
		return out
	}
	for _, k := range []string{"user/1", "user/2", "user/3", "users", "v"} {
		kv("put", k, "val-"+k)
	}
	kv("put", "bin\x00\xff\\", "a\nb\x01")

	require.Equal(t, "user/1\tval-user/1\nuser/2\tval-user/2\nuser/3\tval-user/3\n", kv("get", "user/", "--prefix"))
	require.Equal(t, "user/1\nuser/2\n", kv("get", "user/", "--prefix", "--keys-only", "--limit", "2"))
	require.Equal(t, "user/3\tval-user/3\nusers\tval-users\n", kv("get", "user/3", "v"))
	require.Equal(t, "user/1\nuser/2\nuser/3\n", kv("scan", "user/", "--prefix", "--keys-only"))
	require.Equal(t, `bin\x00\xff\\`+"\t"+`a\x0ab\x01`+"\n", kv("get", "bin", "--prefix"))
	require.Equal(t, `a\x0ab\x01`+"\n", kv("get", "bin\x00\xff\\"))

	var res struct {
		Count int `json:"count"`
		KVs   []struct {
			Key   []byte `json:"key"`
			Value []byte `json:"value"`
		} `json:"kvs"`
	}
	require.NoError(t, json.Unmarshal([]byte(kv("get", "bin", "--prefix", "-w", "json")), &res))
	require.Equal(t, 1, res.Count)
	require.Equal(t, []byte("bin\x00\xff\\"), res.KVs[0].Key)
	require.Equal(t, []byte("a\nb\x01"), res.KVs[0].Value)
	res.KVs = nil // json would merge into the old elements
	require.NoError(t, json.Unmarshal([]byte(kv("get", "user/", "--prefix", "--keys-only", "-w", "json")), &res))
	require.Equal(t, 3, res.Count)
	require.Nil(t, res.KVs[0].Value)

	// Deletes print how many keys they removed.
	require.Equal(t, "3\n", kv("del", "user/", "--prefix"))
	require.Equal(t, "users\tval-users\n", kv("get", "user", "v"))
	require.Equal(t, "0\n", kv("del", "user/1"))
	require.Equal(t, "1\n", kv("del", "user/3", "v"))
	require.Equal(t, "v\n", kv("scan", "u", "--keys-only"))

	for _, bad := range [][]string{
		{"get", "a", "b", "--prefix"},
		{"get", "b", "a"},
		{"get", "a", "-w", "yaml"},
		{"del", "z", "a"},
	} {
		_, err := runShale(t, append([]string{"kv", "--pd", pd}, bad...)...)
		require.Error(t, err, "%v", bad)
	}
}
