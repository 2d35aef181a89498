package keys

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	be1    = []byte{0, 0, 0, 0, 0, 0, 0, 1}
	term   = []byte{0x00, 0x01}
	tsZero = []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF} // ^uint64(0)
	tsFive = []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFA} // ^uint64(5)
	tsMax  = []byte{0x80, 0, 0, 0, 0, 0, 0, 0}                      // ^uint64(MaxInt64)
)

func TestLogicalKeyLayout(t *testing.T) {
	require.Equal(t, be1, TablePrefix(1))
	require.Equal(t, []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}, TablePrefix(0x0102030405060708))

	row := []byte{'r', 0x00}
	rowEnc := []byte{'r', 0x00, 0xFF, 0x00, 0x01}
	require.Equal(t, cat(be1, rowEnc), RowKey(1, row))
	require.Equal(t, cat(be1, term), RowKey(1, nil))
	require.Equal(t, cat(be1, rowEnc, []byte("cf"), term), FamilyPrefix(1, row, "cf"))
	require.Equal(t, cat(be1, rowEnc, []byte("cf"), term, []byte("q"), term), ColumnPrefix(1, row, "cf", []byte("q")))
	require.Equal(t, cat(be1, rowEnc, []byte("cf"), term, []byte("q"), term, tsFive), CellKey(1, row, "cf", []byte("q"), 5))
	require.Equal(t, cat(be1, term, term, term, tsZero), CellKey(1, nil, "", nil, 0))
	require.Equal(t, cat(be1, term, term, term, tsMax), CellKey(1, nil, "", nil, math.MaxInt64))

	// AppendCellKey appends to dst.
	dst := []byte("xy")
	require.Equal(t, cat([]byte("xy"), CellKey(1, row, "cf", []byte("q"), 5)), AppendCellKey(dst, 1, row, "cf", []byte("q"), 5))
}

func TestCellKeyNegativeTimestampPanics(t *testing.T) {
	require.Panics(t, func() { CellKey(1, nil, "f", nil, -1) })
	require.Panics(t, func() { AppendCellKey(nil, 1, nil, "f", nil, math.MinInt64) })
}

func TestCellKeyOrder(t *testing.T) {
	// Keys listed in the order they must sort.
	sorted := [][]byte{
		TablePrefix(1),
		RowKey(1, nil),
		CellKey(1, nil, "", nil, math.MaxInt64),
		CellKey(1, nil, "", nil, 0),
		RowKey(1, []byte{0x00}),
		CellKey(1, []byte{0x00}, "f", []byte("q"), 3),
		RowKey(1, []byte("a")),
		FamilyPrefix(1, []byte("a"), ""),
		CellKey(1, []byte("a"), "", nil, 0),
		FamilyPrefix(1, []byte("a"), "a"),
		ColumnPrefix(1, []byte("a"), "a", nil),
		CellKey(1, []byte("a"), "a", nil, 9),
		CellKey(1, []byte("a"), "a", nil, 8),
		CellKey(1, []byte("a"), "a", []byte{0x00}, 100),
		CellKey(1, []byte("a"), "a", []byte("q"), 1<<40),
		CellKey(1, []byte("a"), "a", []byte("q"), 1<<40-1),
		CellKey(1, []byte("a"), "a", []byte("q"), 0),
		CellKey(1, []byte("a"), "a\x00", nil, 0),
		CellKey(1, []byte("a"), "b", nil, 0),
		CellKey(1, []byte("a\x00"), "a", nil, 0),
		RowKey(1, []byte("ab")),
		CellKey(1, []byte("ab"), "a", nil, 0),
		RowKey(1, []byte{0xFF}),
		CellKey(1, []byte{0xFF, 0xFF}, "", nil, 0),
		TablePrefix(2),
		RowKey(2, nil),
		TablePrefix(math.MaxUint64),
		CellKey(math.MaxUint64, []byte{0xFF}, "\xff", []byte{0xFF}, 0),
	}
	for i := 1; i < len(sorted); i++ {
		require.Negative(t, bytes.Compare(sorted[i-1], sorted[i]), "key %d (%x) !< key %d (%x)", i-1, sorted[i-1], i, sorted[i])
	}
}

func TestRowKeyBoundsRowCells(t *testing.T) {
	// Every cell of a row lies in [RowKey(row), PrefixEnd(RowKey(row))) and
	// no cell of another row does.
	rows := [][]byte{nil, {0x00}, {0x00, 0x00}, []byte("a"), []byte("a\x00"), []byte("ab"), {0xFF}}
	for _, r := range rows {
		lo := RowKey(7, r)
		hi := PrefixEnd(lo)
		for _, other := range rows {
			for _, ts := range []int64{0, 1, math.MaxInt64} {
				k := CellKey(7, other, "f", []byte("q"), ts)
				in := bytes.Compare(lo, k) <= 0 && bytes.Compare(k, hi) < 0
				require.Equal(t, bytes.Equal(r, other), in, "row %x cell of row %x", r, other)
			}
		}
	}
}

func TestDecodeCellKey(t *testing.T) {
	cells := []Cell{
		{TableID: 0, Row: []byte{}, Family: "", Qualifier: []byte{}, Timestamp: 0},
		{TableID: 1, Row: []byte("row"), Family: "cf", Qualifier: []byte("q"), Timestamp: 1_700_000_000_000_000},
		{TableID: math.MaxUint64, Row: []byte{0x00, 0xFF, 0x00}, Family: "\x00\x01", Qualifier: []byte{0x00}, Timestamp: math.MaxInt64},
	}
	for _, c := range cells {
		key := CellKey(c.TableID, c.Row, c.Family, c.Qualifier, c.Timestamp)
		got, err := DecodeCellKey(key)
		require.NoError(t, err)
		require.Equal(t, c, got)

		// Decoded slices do not alias the key, and appending to Row does
		// not clobber Qualifier.
		for i := range key {
			key[i] = 0xAA
		}
		require.Equal(t, c, got)
		_ = append(got.Row, 'z', 'z', 'z')
		require.Equal(t, c.Qualifier, got.Qualifier)
	}
}

func TestDecodeCellKeyCorrupt(t *testing.T) {
	good := CellKey(1, []byte("r"), "f", []byte("q"), 5)
	tests := []struct {
		name string
		key  []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"short table prefix", be1[:7], "too short"},
		{"table prefix only", be1, "row: keys: corrupt key: unterminated"},
		{"row key only", RowKey(1, []byte("r")), "family"},
		{"family prefix only", FamilyPrefix(1, []byte("r"), "f"), "qualifier"},
		{"column prefix only", ColumnPrefix(1, []byte("r"), "f", []byte("q")), "timestamp has 0 bytes"},
		{"truncated timestamp", good[:len(good)-1], "timestamp has 7 bytes"},
		{"trailing byte", append(bytes.Clone(good), 0), "timestamp has 9 bytes"},
		{"truncated row terminator", cat(be1, []byte{'r', 0x00}), "row: keys: corrupt key: truncated escape"},
		{"bad row escape", cat(be1, []byte{'r', 0x00, 0x02}, good[11:]), "row: keys: corrupt key: bad escape byte 0x02"},
		{"bad family escape", cat(be1, []byte{'r', 0x00, 0x01, 'f', 0x00, 0x00}), "family: keys: corrupt key: bad escape byte 0x00"},
		{"negative timestamp", cat(ColumnPrefix(1, []byte("r"), "f", []byte("q")), []byte{0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCellKey(tt.key)
			require.ErrorIs(t, err, ErrCorruptKey)
			require.ErrorContains(t, err, tt.msg)
			require.Zero(t, c)
		})
	}
}

func TestDecodeRowKey(t *testing.T) {
	for _, row := range [][]byte{{}, []byte("r"), {0x00}, {0xFF, 0x00, 0xFF}} {
		key := RowKey(42, row)
		id, got, err := DecodeRowKey(key)
		require.NoError(t, err)
		require.Equal(t, uint64(42), id)
		require.Equal(t, row, got)
		key[len(key)-3] ^= 0xAA
		require.Equal(t, row, got, "row aliases key")
	}

	tests := []struct {
		name string
		key  []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 2, 3}, "too short"},
		{"bare table prefix", be1, "unterminated"},
		{"truncated terminator", cat(be1, []byte{'r', 0x00}), "truncated escape"},
		{"bad escape", cat(be1, []byte{'r', 0x00, 0x80}), "bad escape byte 0x80"},
		{"family prefix", FamilyPrefix(1, []byte("r"), "f"), "trailing bytes"},
		{"cell key", CellKey(1, []byte("r"), "f", nil, 0), "trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, row, err := DecodeRowKey(tt.key)
			require.ErrorIs(t, err, ErrCorruptKey)
			require.ErrorContains(t, err, tt.msg)
			require.Zero(t, id)
			require.Nil(t, row)
		})
	}
}

func TestRowPrefix(t *testing.T) {
	row := []byte{'r', 0x00, 's'}
	rk := RowKey(3, row)
	for name, key := range map[string][]byte{
		"row key":                         RowKey(3, row),
		"family prefix":                   FamilyPrefix(3, row, "f"),
		"column prefix":                   ColumnPrefix(3, row, "f", []byte{0x00}),
		"cell key":                        CellKey(3, row, "f", []byte{0x00}, 77),
		"data after row is not validated": cat(rk, []byte{0x00, 0x42}),
	} {
		t.Run(name, func(t *testing.T) {
			orig := bytes.Clone(key)
			got, err := RowPrefix(key)
			require.NoError(t, err)
			require.Equal(t, rk, got)
			require.True(t, IsValidSplitKey(got))
			// Appending to the result must not overwrite key.
			_ = append(got, 0xEE, 0xEE)
			require.Equal(t, orig, key)
		})
	}

	got, err := RowPrefix(TablePrefix(9))
	require.NoError(t, err)
	require.Equal(t, TablePrefix(9), got)

	for name, key := range map[string][]byte{
		"empty":                nil,
		"short":                be1[:5],
		"truncated terminator": cat(be1, []byte{'r', 0x00}),
		"unterminated":         cat(be1, []byte("rrr")),
		"bad escape":           cat(be1, []byte{0x00, 0x10}),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := RowPrefix(key)
			require.ErrorIs(t, err, ErrCorruptKey)
			require.Nil(t, got)
		})
	}
}

func TestIsValidSplitKey(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		want bool
	}{
		{"table prefix", TablePrefix(5), true},
		{"row key", RowKey(5, []byte("r")), true},
		{"empty row key", RowKey(5, nil), true},
		{"row key with zeros", RowKey(5, []byte{0, 0}), true},
		{"empty", nil, false},
		{"short", []byte{1, 2, 3, 4, 5, 6, 7}, false},
		{"family prefix", FamilyPrefix(5, []byte("r"), "f"), false},
		{"cell key", CellKey(5, []byte("r"), "f", nil, 1), false},
		{"unterminated row", cat(be1, []byte("r")), false},
		{"bad escape", cat(be1, []byte{0x00, 0x02}), false},
		{"prefix end of row", PrefixEnd(RowKey(5, []byte("r"))), false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, IsValidSplitKey(tt.key), tt.name)
	}
}

func TestAppendCellKeyNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 128)
	row, qual := []byte("user\x00123"), []byte("name")
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendCellKey(buf[:0], 1, row, "cf", qual, 12345)
	})
	require.Zero(t, allocs)
}

func BenchmarkAppendCellKey(b *testing.B) {
	buf := make([]byte, 0, 128)
	row, qual := []byte("user0000012345"), []byte("field0")
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCellKey(buf[:0], 17, row, "cf", qual, 1_700_000_000_000_000)
	}
}

func BenchmarkDecodeCellKey(b *testing.B) {
	key := CellKey(17, []byte("user0000012345"), "cf", []byte("field0"), 1_700_000_000_000_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCellKey(key); err != nil {
			b.Fatal(err)
		}
	}
}

// CellDecoder returns exactly what DecodeCellKey returns, over a sorted run
// of keys whose rows, families and columns repeat, change and contain
// escaped zero bytes, and it rejects what DecodeCellKey rejects.
func TestCellDecoderMatchesDecodeCellKey(t *testing.T) {
	var ks [][]byte
	for _, table := range []uint64{1, 2} {
		for _, row := range []string{"", "a", "a\x00", "b"} {
			for _, fam := range []string{"\x00rid", "f", "g\x00"} {
				for _, q := range []string{"", "q", "q\x00r"} {
					for _, ts := range []int64{0, 5, math.MaxInt64} {
						ks = append(ks, CellKey(table, []byte(row), fam, []byte(q), ts))
					}
				}
			}
		}
	}
	slices.SortFunc(ks, bytes.Compare)
	var d CellDecoder
	for _, k := range ks {
		want, err := DecodeCellKey(k)
		require.NoError(t, err)
		got, err := d.Decode(k)
		require.NoError(t, err)
		require.Equal(t, want, got, "key %x", k)
	}
	for _, bad := range [][]byte{
		nil,
		be1,
		cat(be1, []byte("row"), term, tsZero), // missing family and qualifier
		cat(be1, []byte("r"), term, []byte("f"), term, tsZero), // missing qualifier
		cat(be1, []byte("r"), term, []byte("f"), term, []byte("q"), term, tsMax[:4]),
		cat(be1, []byte("r"), term, []byte("f"), term, []byte("q"), term, []byte{0, 0, 0, 0, 0, 0, 0, 0}), // negative ts
	} {
		_, wantErr := DecodeCellKey(bad)
		require.Error(t, wantErr, "key %x", bad)
		_, err := d.Decode(bad)
		require.ErrorIs(t, err, ErrCorruptKey, "key %x", bad)
	}
}
