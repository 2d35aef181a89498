package importer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/proto/metapb"
)

func validOptions(t *testing.T) Options {
	return Options{
		Table: "t", WorkDir: t.TempDir(), Inputs: []string{"in.csv"},
		RowKey: "id", Mappings: []Mapping{{Column: "v", Family: "f", Qualifier: "v"}},
	}
}

func TestOptionsEnsureDefaults(t *testing.T) {
	o := validOptions(t)
	d := o.EnsureDefaults()
	require.Equal(t, 256<<20, d.MemoryBytes)
	require.Equal(t, 2, d.Parallel)
	require.Equal(t, 4, d.IngestParallel)
	require.Equal(t, 8<<20, d.SSTBytes)
	require.Equal(t, int64(64<<20), d.SplitBytes)
	require.Equal(t, "error", d.OnDuplicate)
	require.Equal(t, filepath.Join(o.WorkDir, "rejects.txt"), d.RejectFile)
	require.Equal(t, 500*time.Millisecond, d.ProgressInterval)
	require.NotNil(t, d.Logger)
	require.Equal(t, ',', d.Source.Delimiter)
	require.Zero(t, o.MemoryBytes, "EnsureDefaults returns a copy")

	// SSTs stay below one raft entry; negative SplitBytes (no splits) stays.
	d = Options{SSTBytes: 1 << 30, SplitBytes: -1, OnDuplicate: "last", RejectFile: "r"}.EnsureDefaults()
	require.Equal(t, maxSSTBytes*3/4, d.SSTBytes)
	require.Equal(t, int64(-1), d.SplitBytes)
	require.Equal(t, "last", d.OnDuplicate)
	require.Equal(t, "r", d.RejectFile)

	require.Equal(t, '\t', SourceOptions{Format: TSV}.EnsureDefaults().Delimiter)
	require.Equal(t, '|', SourceOptions{Format: TSV, Delimiter: '|'}.EnsureDefaults().Delimiter)
	require.Zero(t, SourceOptions{Format: JSONL}.EnsureDefaults().Delimiter)
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, validOptions(t).EnsureDefaults().Validate())
	sqlEncoder := func(*metapb.TableSchema, int64) (Encoder, error) { return nil, nil }
	for want, change := range map[string]func(*Options){
		"no table given":                       func(o *Options) { o.Table = "" },
		"no work directory given":              func(o *Options) { o.WorkDir = "" },
		"no input given":                       func(o *Options) { o.Inputs = nil },
		`--on-duplicate "first"`:               func(o *Options) { o.OnDuplicate = "first" },
		"raw import needs --row-key":           func(o *Options) { o.RowKey = "" },
		"raw import needs --row-key and --map": func(o *Options) { o.Mappings = nil },
		"unknown format 7":                     func(o *Options) { o.Source.Format = 7 },
		`--delimiter '"'`:                      func(o *Options) { o.Source.Delimiter = '"' },
		`--delimiter '\n'`:                     func(o *Options) { o.Source.Delimiter = '\n' },
	} {
		o := validOptions(t)
		change(&o)
		require.ErrorContains(t, o.EnsureDefaults().Validate(), want)
		// Run refuses it before touching the work directory or the PD.
		_, err := Run(context.Background(), o)
		require.ErrorContains(t, err, want)
	}
	// A SQL import needs no mapping.
	o := validOptions(t)
	o.RowKey, o.Mappings, o.NewEncoder = "", nil, sqlEncoder
	require.NoError(t, o.EnsureDefaults().Validate())
	// JSONL ignores the delimiter.
	require.NoError(t, SourceOptions{Format: JSONL, Delimiter: '"'}.Validate())
}

func TestParseDelimiter(t *testing.T) {
	for in, want := range map[string]rune{",": ',', "|": '|', `\t`: '\t', "tab": '\t', "\t": '\t', "§": '§'} {
		got, err := ParseDelimiter(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for in, want := range map[string]string{
		"":     "must be one character",
		"ab":   "must be one character",
		"\xff": "must be one character",
		`"`:    "cannot separate fields",
		"\n":   "cannot separate fields",
		"\r":   "cannot separate fields",
	} {
		_, err := ParseDelimiter(in)
		require.ErrorContains(t, err, want, "%q", in)
	}
}

// Filling in the format's delimiter leaves the job's fingerprint as it was
// (work directories of older binaries resume).
func TestFingerprintDefaultDelimiter(t *testing.T) {
	o := validOptions(t)
	before := fingerprint(&o, nil)
	d := o.EnsureDefaults()
	d.OnDuplicate = o.OnDuplicate
	require.Equal(t, before, fingerprint(&d, nil))
	d.Source.Delimiter = ';'
	require.NotEqual(t, before, fingerprint(&d, nil))
}
