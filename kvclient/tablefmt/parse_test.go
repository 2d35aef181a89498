package tablefmt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient"
)

func TestParseFamily(t *testing.T) {
	for spec, want := range map[string]kvclient.Family{
		"info":                           {Name: "info"},
		"info:maxversions=3":             {Name: "info", MaxVersions: 3},
		"s:maxage=24h":                   {Name: "s", MaxAge: 24 * time.Hour},
		"e:maxversions=1,maxage=1h30m":   {Name: "e", MaxVersions: 1, MaxAge: 90 * time.Minute},
		"e:MaxAge=1500ms, maxversions=2": {Name: "e", MaxVersions: 2, MaxAge: 1500 * time.Millisecond},
	} {
		got, err := ParseFamily(spec)
		require.NoError(t, err, spec)
		require.Equal(t, want, got, spec)
	}
	for spec, want := range map[string]string{
		":maxversions=1":           "empty family name",
		"a=b":                      "must not contain '=' or ','",
		"f:":                       "empty GC policy",
		"f:maxversions":            `policy "maxversions" is not KEY=VALUE`,
		"f:maxversions=0":          "want an integer >= 1",
		"f:maxversions=x":          "want an integer >= 1",
		"f:maxversions=4294967296": "want an integer >= 1",
		"f:maxage=3 days":          "want a Go duration",
		"f:maxage=-1h":             "must be positive",
		"f:maxage=1us":             "granularity",
		"f:ttl=1h":                 `unknown policy "ttl"`,
		"f:maxage=1h,maxage=2h":    "maxage given more than once",
	} {
		_, err := ParseFamily(spec)
		require.ErrorContains(t, err, want, spec)
		require.ErrorContains(t, err, "FAMILY[:maxversions=N,maxage=DURATION]", spec)
	}
}

func TestParseFamilies(t *testing.T) {
	fams, err := ParseFamilies([]string{"a", "b:maxversions=2"})
	require.NoError(t, err)
	require.Equal(t, []kvclient.Family{{Name: "a"}, {Name: "b", MaxVersions: 2}}, fams)
	_, err = ParseFamilies([]string{"f", "f:maxversions=2"})
	require.EqualError(t, err, `family "f" given more than once`)
	_, err = ParseFamilies([]string{"f", ""})
	require.ErrorContains(t, err, "empty family name")
}

func TestParseSplitRows(t *testing.T) {
	rows, err := ParseSplitRows([]string{"g", "p"})
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("g"), []byte("p")}, rows)
	rows, err = ParseSplitRows(nil)
	require.NoError(t, err)
	require.Empty(t, rows)
	_, err = ParseSplitRows([]string{"g", ""})
	require.ErrorContains(t, err, "split row must not be empty")
}

func TestParseCell(t *testing.T) {
	for spec, want := range map[string]kvclient.Cell{
		"info:name=Alice": {Family: "info", Qualifier: []byte("name"), Value: []byte("Alice")},
		"s:v=a=b:c":       {Family: "s", Qualifier: []byte("v"), Value: []byte("a=b:c")},
		"f:=":             {Family: "f", Qualifier: []byte(""), Value: []byte("")},
		"f:q:r=v":         {Family: "f", Qualifier: []byte("q:r"), Value: []byte("v")},
	} {
		got, err := ParseCell(spec)
		require.NoError(t, err, spec)
		require.Equal(t, want, got, spec)
	}
	for spec, want := range map[string]string{
		"fq=v":  `bad cell "fq=v": missing ':'`,
		"f:q":   `bad cell "f:q": missing '='`,
		":q=v":  "empty family",
		"f=x:q": "'=' before the ':'",
	} {
		_, err := ParseCell(spec)
		require.ErrorContains(t, err, want, spec)
	}
	muts, err := ParseSetCells([]string{"a:b=c", "d:e=f"})
	require.NoError(t, err)
	require.Len(t, muts, 2)
	_, err = ParseSetCells([]string{"a:b=c", "bad"})
	require.ErrorContains(t, err, `bad cell "bad"`)
}

func TestParseScanArgs(t *testing.T) {
	o, err := ParseScanArgs(nil)
	require.NoError(t, err)
	require.Equal(t, kvclient.ScanOptions{}, o)
	o, err = ParseScanArgs([]string{"count=10", "end=n", "start=a"})
	require.NoError(t, err)
	require.Equal(t, kvclient.ScanOptions{Start: []byte("a"), End: []byte("n"), Limit: 10}, o)
	for args, want := range map[string][]string{
		`unknown key "from"`:              {"from=a"},
		"want start=ROW":                  {"a"},
		"want an integer >= 1":            {"count=0"},
		`count="x"`:                       {"count=x"},
		"must sort before":                {"start=b", "end=a"},
		"start= given more than once":     {"start=a", "start=b"},
		"end=: the row must not be empty": {"end="},
	} {
		_, err := ParseScanArgs(want)
		require.ErrorContains(t, err, args, "%v", want)
	}
	// start == end is an empty range: rejected rather than read as nothing.
	_, err = ParseScanArgs([]string{"start=a", "end=a"})
	require.ErrorContains(t, err, "must sort before")
}
