package importer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// readAll parses in as one input with readSource and returns a transcript
// of what the callbacks saw, or the read error.
func readAll(in string, o SourceOptions) (string, error) {
	var out strings.Builder
	err := readSource("in", strings.NewReader(in), o,
		func(cols []string) error { fmt.Fprintf(&out, "cols %q\n", cols); return nil },
		func(r *Record) error {
			fmt.Fprintf(&out, "row %d:", r.Line)
			for i, v := range r.Values {
				l, c := r.Pos(i)
				fmt.Fprintf(&out, " %d:%d=%q/%v", l, c, v.Bytes, v.Null)
			}
			out.WriteByte('\n')
			return nil
		},
		func(e *InputError) error { fmt.Fprintf(&out, "bad %s raw %q\n", e, e.Raw); return nil })
	return out.String(), err
}

// fuzzSource checks that an input in format never panics, and that the
// records, line numbers and errors do not depend on where the cutter ends
// its batches (the importer parses batches in parallel).
func fuzzSource(f *testing.F, format Format, seeds ...string) {
	for _, s := range seeds {
		f.Add(s, true, uint8(0))
		f.Add(s, false, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in string, header bool, cut uint8) {
		null := `\N`
		o := SourceOptions{Format: format, Header: header, Null: &null}.EnsureDefaults()
		whole, werr := readAll(in, o)
		old := cutBatchBytes
		cutBatchBytes = 1 + int(cut)%64
		defer func() { cutBatchBytes = old }()
		cut1, cerr := readAll(in, o)
		require.Equal(t, fmt.Sprint(werr), fmt.Sprint(cerr), "read error depends on batch cuts")
		require.Equal(t, whole, cut1, "records depend on batch cuts")
	})
}

func FuzzReadCSV(f *testing.F) {
	fuzzSource(f, CSV,
		"a,b\n1,2\n",
		"a,b\r\n1,\"x, \"\"y\"\"\"\r\n2,\\N\n3\n",
		"\"multi\nline\",v\n\"unterminated\n",
		"k,v\n\"a\"b,c\n,\n\n",
		"\xef\xbb\xbfid,name\n1,\xff\xfe\n")
}

func FuzzReadTSV(f *testing.F) {
	fuzzSource(f, TSV,
		"h1\th2\nk\tv w\n",
		"a\tb\n\"q\tq\"\t2\n\t\n\\N\t\\N\n",
		"x\ty\tz\n1\t2\n")
}

func FuzzReadJSONL(f *testing.F) {
	fuzzSource(f, JSONL,
		`{"id":1,"name":"a"}`+"\n"+`{"id":2,"name":null}`+"\n",
		`{"id":1,"n":{"nested":[1,2]}}`+"\n"+`not json`+"\n"+`{"id":"2"`+"\n",
		`{"a":1.5e300,"b":true,"c":"\u00e9\ud800"}`+"\r\n\n"+`[1,2]`+"\n",
		`{"a":1,"a":2}`+"\n")
}
