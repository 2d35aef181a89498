package ycsb

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPropertiesJavaSyntax(t *testing.T) {
	src := `# a comment
! another comment
recordcount=1000
operationcount = 2000
workload:site.ycsb.workloads.CoreWorkload
readproportion 0.5
   updateproportion=0.5
requestdistribution=zip\
    fian
table=user\ttable
key\ with\ spaces=v
empty=
unicode=\u00e9t\u00E9
trailing=backslash\\
next=line
`
	p := NewProperties()
	require.NoError(t, p.Load(strings.NewReader(src), "test.properties"))
	want := map[string]string{
		"recordcount":         "1000",
		"operationcount":      "2000",
		"workload":            "site.ycsb.workloads.CoreWorkload",
		"readproportion":      "0.5",
		"updateproportion":    "0.5",
		"requestdistribution": "zipfian",
		"table":               "user\ttable",
		"key with spaces":     "v",
		"empty":               "",
		"unicode":             "été",
		"trailing":            `backslash\`,
		"next":                "line",
	}
	require.Equal(t, want, p.Map())

	// -p overrides win over the file.
	require.NoError(t, p.SetPair("recordcount=5"))
	require.NoError(t, p.SetPair("table=a=b"))
	n, err := p.Int64("recordcount", 0)
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	require.Equal(t, "a=b", p.String("table", ""))

	var pe *ParseError
	require.ErrorAs(t, p.SetPair("novalue"), &pe)
	require.ErrorAs(t, p.SetPair("=x"), &pe)
	require.ErrorAs(t, p.Load(strings.NewReader("a=1\nbad=\\u12"), "f"), &pe)
	require.Equal(t, 2, pe.Line)
	require.Contains(t, pe.Error(), "f:2:")
}

func TestPropertiesTypedGetters(t *testing.T) {
	p := NewProperties()
	p.Set("n", " 42 ")
	p.Set("f", "0.25")
	p.Set("b", "TRUE")
	p.Set("bad", "lots")
	n, err := p.Int64("n", 0)
	require.NoError(t, err)
	require.Equal(t, int64(42), n)
	f, err := p.Float("f", 0)
	require.NoError(t, err)
	require.Equal(t, 0.25, f)
	b, err := p.Bool("b", false)
	require.NoError(t, err)
	require.True(t, b)
	d, err := p.Int64("unset", 7)
	require.NoError(t, err)
	require.Equal(t, int64(7), d)

	var pe *PropertyError
	_, err = p.Int64("bad", 0)
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "bad", pe.Key)
	require.Equal(t, `property bad="lots": want an integer`, err.Error())
	_, err = p.Float("bad", 0)
	require.ErrorAs(t, err, &pe)
	_, err = p.Bool("bad", false)
	require.ErrorAs(t, err, &pe)

	p.Set("typo", "1")
	require.Equal(t, []string{"typo"}, p.Unused())
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w")
	require.NoError(t, os.WriteFile(path, []byte("recordcount=10\n"), 0o644))
	p := NewProperties()
	require.NoError(t, p.LoadFile(path))
	require.Equal(t, "10", p.String("recordcount", ""))
	err := p.LoadFile(filepath.Join(dir, "missing"))
	require.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
}

func workload(t *testing.T, kv ...string) (*Workload, error) {
	t.Helper()
	p := NewProperties()
	p.Set("recordcount", "100")
	for _, s := range kv {
		require.NoError(t, p.SetPair(s))
	}
	return NewWorkload(p)
}

func TestWorkloadDefaultsAreYCSBs(t *testing.T) {
	w, err := workload(t)
	require.NoError(t, err)
	require.Equal(t, "usertable", w.Table)
	require.Len(t, w.FieldNames, 10)
	require.Equal(t, "field0", w.FieldNames[0])
	require.Equal(t, "field9", w.FieldNames[9])
	require.True(t, w.ReadAllFields)
	require.False(t, w.WriteAllFields)
	require.Equal(t, "uniform", w.Distribution)
	require.Equal(t, int64(100), w.InsertCount)
	require.Equal(t, 1, w.Threads)
	require.Equal(t, []float64{50, 95, 99, 99.9}, w.Percentiles)
	require.Equal(t, Constant(100), w.fieldLength)
	require.Equal(t, Uniform{1, 1000}, w.scanLength)
	// Hashed keys, as YCSB's first record "user6284781860667377211".
	require.Equal(t, "user6284781860667377211", w.KeyName(0))

	w, err = workload(t, "insertorder=ordered", "zeropadding=5", "fieldcount=3", "fieldnameprefix=c", "requestdistribution=zipfian", "readallfields=false")
	require.NoError(t, err)
	require.Equal(t, "user00042", w.KeyName(42))
	require.Equal(t, "user123456", w.KeyName(123456))
	require.Equal(t, []string{"c0", "c1", "c2"}, w.FieldNames)
	require.IsType(t, &ScrambledZipfian{}, w.keyChooser)
}

func TestWorkloadRejectsBadProperties(t *testing.T) {
	for _, tc := range []struct {
		set []string
		key string
	}{
		{[]string{"requestdistribution=exponentialish"}, "requestdistribution"},
		{[]string{"fieldcount=0"}, "fieldcount"},
		{[]string{"fieldlength=-1"}, "fieldlength"},
		{[]string{"readproportion=-0.5"}, "readproportion"},
		{[]string{"readproportion=0", "updateproportion=0"}, "readproportion"},
		{[]string{"maxscanlength=0"}, "maxscanlength"},
		{[]string{"insertorder=random"}, "insertorder"},
		{[]string{"recordcount=abc"}, "recordcount"},
		{[]string{"recordcount=0"}, "recordcount"},
		{[]string{"insertstart=50", "insertcount=60"}, "recordcount"},
		{[]string{"threadcount=0"}, "threadcount"},
		{[]string{"hotspotdatafraction=1.5"}, "hotspotdatafraction"},
		{[]string{"dataintegrity=true", "fieldlengthdistribution=uniform"}, "fieldlengthdistribution"},
		{[]string{"fieldlengthdistribution=gaussian"}, "fieldlengthdistribution"},
		{[]string{"hdrhistogram.percentiles=50,abc"}, "hdrhistogram.percentiles"},
		{[]string{"workload=site.ycsb.workloads.TimeSeriesWorkload"}, "workload"},
		{[]string{"status.interval=0"}, "status.interval"},
		{[]string{"target=-1"}, "target"},
	} {
		_, err := workload(t, tc.set...)
		var pe *PropertyError
		require.ErrorAs(t, err, &pe, "%v", tc.set)
		require.Equal(t, tc.key, pe.Key, "%v: %v", tc.set, err)
	}
}
