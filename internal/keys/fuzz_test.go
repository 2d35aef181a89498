package keys

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"testing"
)

// FuzzEncodeBytes checks that EncodeBytes round-trips, preserves order and is
// prefix-free.
func FuzzEncodeBytes(f *testing.F) {
	seeds := [][2][]byte{
		{nil, nil},
		{{}, {0x00}},
		{{0x00}, {0x00, 0x00}},
		{{0x00, 0x01}, {0x00}},
		{{0x00, 0xFF}, {0x00, 0x01}},
		{{0x01}, {0x00, 0xFF}},
		{[]byte("a"), []byte("a\x00")},
		{[]byte("a\x00b"), []byte("a\x01")},
		{{0xFF}, {0xFF, 0x00}},
		{{0xFF, 0xFF}, {0xFF}},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ea, eb := EncodeBytes(nil, a), EncodeBytes(nil, b)
		if got, want := bytes.Compare(ea, eb), bytes.Compare(a, b); got != want {
			t.Fatalf("order not preserved: Compare(%x, %x) = %d, encodings %x %x compare %d", a, b, want, ea, eb, got)
		}
		if !bytes.Equal(a, b) && (bytes.HasPrefix(ea, eb) || bytes.HasPrefix(eb, ea)) {
			t.Fatalf("not prefix-free: %x, %x", ea, eb)
		}
		if len(ea) != encodedLen(a) {
			t.Fatalf("encodedLen(%x) = %d, encoding has %d bytes", a, encodedLen(a), len(ea))
		}
		// Round-trip with b as trailing data.
		val, rest, err := DecodeBytes(append(ea, b...))
		if err != nil {
			t.Fatalf("DecodeBytes(%x): %v", ea, err)
		}
		if !bytes.Equal(val, a) || !bytes.Equal(rest, b) {
			t.Fatalf("round trip of %x+%x: got value %x rest %x", a, b, val, rest)
		}
		if s := appendEscaped(nil, string(a)); !bytes.Equal(s, ea) {
			t.Fatalf("string encoding %x differs from bytes encoding %x", s, ea)
		}
	})
}

type cellTuple struct {
	table     uint64
	row       []byte
	family    string
	qualifier []byte
	ts        int64
}

// compareTuples is the order cell keys must have: ascending by table, row,
// family and qualifier, then descending by timestamp.
func compareTuples(a, b cellTuple) int {
	if c := cmp.Compare(a.table, b.table); c != 0 {
		return c
	}
	if c := bytes.Compare(a.row, b.row); c != 0 {
		return c
	}
	if c := cmp.Compare(a.family, b.family); c != 0 {
		return c
	}
	if c := bytes.Compare(a.qualifier, b.qualifier); c != 0 {
		return c
	}
	return cmp.Compare(b.ts, a.ts)
}

// nonNegative maps any int64 onto a valid timestamp.
func nonNegative(ts int64) int64 {
	if ts < 0 {
		return ^ts
	}
	return ts
}

// FuzzCellKeyOrder checks that cell key byte order equals tuple order
// (tableID, row, family, qualifier, descending timestamp).
func FuzzCellKeyOrder(f *testing.F) {
	f.Add(uint64(1), []byte("r"), "f", []byte("q"), int64(5), uint64(1), []byte("r"), "f", []byte("q"), int64(6))
	f.Add(uint64(1), []byte("r"), "f", []byte("q"), int64(0), uint64(1), []byte("r"), "f", []byte("q"), int64(math.MaxInt64))
	f.Add(uint64(1), []byte("r"), "f", []byte{}, int64(1), uint64(1), []byte("r"), "f\x00", []byte{}, int64(1))
	f.Add(uint64(1), []byte("r"), "", []byte("x"), int64(1), uint64(1), []byte("r\x00"), "", []byte{}, int64(1))
	f.Add(uint64(1), []byte{}, "\x00", []byte{0}, int64(1), uint64(1), []byte{0}, "", []byte{}, int64(1))
	f.Add(uint64(1), []byte{0xFF}, "\xff", []byte{0xFF}, int64(0), uint64(2), []byte{}, "", []byte{}, int64(0))
	f.Add(uint64(math.MaxUint64), []byte("a\x00\x01"), "a", []byte("b"), int64(-3), uint64(math.MaxUint64), []byte("a\x00"), "a", []byte("b"), int64(3))
	f.Fuzz(func(t *testing.T, t1 uint64, r1 []byte, f1 string, q1 []byte, ts1 int64, t2 uint64, r2 []byte, f2 string, q2 []byte, ts2 int64) {
		a := cellTuple{t1, r1, f1, q1, nonNegative(ts1)}
		b := cellTuple{t2, r2, f2, q2, nonNegative(ts2)}
		ka := CellKey(a.table, a.row, a.family, a.qualifier, a.ts)
		kb := CellKey(b.table, b.row, b.family, b.qualifier, b.ts)
		if got, want := bytes.Compare(ka, kb), compareTuples(a, b); got != want {
			t.Fatalf("key order %d != tuple order %d for %+v (%x) vs %+v (%x)", got, want, a, ka, b, kb)
		}
		// Row keys order rows and bound each row's cells.
		ra, rb := RowKey(a.table, a.row), RowKey(b.table, b.row)
		sameRow := a.table == b.table && bytes.Equal(a.row, b.row)
		if want := cmp.Or(cmp.Compare(a.table, b.table), bytes.Compare(a.row, b.row)); bytes.Compare(ra, rb) != want {
			t.Fatalf("row key order wrong for %+v vs %+v", a, b)
		}
		if inA := bytes.Compare(ra, kb) <= 0 && bytes.Compare(kb, PrefixEnd(ra)) < 0; inA != sameRow {
			t.Fatalf("cell %+v in row span of %+v = %v, same row = %v", b, a, inA, sameRow)
		}
		// Data keys keep the order.
		if bytes.Compare(DataKey(ka), DataKey(kb)) != bytes.Compare(ka, kb) {
			t.Fatal("DataKey changed order")
		}
	})
}

// FuzzCellKeyRoundTrip checks the prefix structure of cell keys and that
// every decoder inverts its encoder.
func FuzzCellKeyRoundTrip(f *testing.F) {
	f.Add(uint64(0), []byte{}, "", []byte{}, int64(0))
	f.Add(uint64(1), []byte("row"), "cf", []byte("q"), int64(1_700_000_000_000_000))
	f.Add(uint64(math.MaxUint64), []byte{0x00, 0xFF, 0x00, 0x01}, "\x00\x01", []byte{0x00}, int64(math.MaxInt64))
	f.Add(uint64(7), []byte{0xFF, 0xFF}, "\xff\x00", []byte{0xFF, 0x00, 0x00}, int64(-1))
	f.Fuzz(func(t *testing.T, table uint64, row []byte, family string, qualifier []byte, ts int64) {
		ts = nonNegative(ts)
		rk := RowKey(table, row)
		fp := FamilyPrefix(table, row, family)
		cp := ColumnPrefix(table, row, family, qualifier)
		ck := CellKey(table, row, family, qualifier, ts)
		if !bytes.HasPrefix(rk, TablePrefix(table)) || !bytes.HasPrefix(fp, rk) || !bytes.HasPrefix(cp, fp) || !bytes.HasPrefix(ck, cp) || len(ck) != len(cp)+8 {
			t.Fatalf("prefix chain broken: %x %x %x %x", rk, fp, cp, ck)
		}
		buf := make([]byte, 3, 64)
		if ak := AppendCellKey(buf, table, row, family, qualifier, ts); !bytes.Equal(ak[3:], ck) {
			t.Fatalf("AppendCellKey %x != CellKey %x", ak[3:], ck)
		}

		for _, k := range [][]byte{rk, fp, cp, ck} {
			p, err := RowPrefix(k)
			if err != nil || !bytes.Equal(p, rk) {
				t.Fatalf("RowPrefix(%x) = %x, %v; want %x", k, p, err, rk)
			}
		}
		if !IsValidSplitKey(rk) || !IsValidSplitKey(TablePrefix(table)) {
			t.Fatalf("row key %x not a valid split key", rk)
		}
		if IsValidSplitKey(fp) || IsValidSplitKey(cp) || IsValidSplitKey(ck) {
			t.Fatalf("non-row key accepted as split key: %x", ck)
		}

		c, err := DecodeCellKey(ck)
		if err != nil {
			t.Fatalf("DecodeCellKey(%x): %v", ck, err)
		}
		want := Cell{TableID: table, Row: row, Family: family, Qualifier: qualifier, Timestamp: ts}
		if c.TableID != want.TableID || !bytes.Equal(c.Row, want.Row) || c.Family != want.Family ||
			!bytes.Equal(c.Qualifier, want.Qualifier) || c.Timestamp != want.Timestamp {
			t.Fatalf("DecodeCellKey round trip: got %+v want %+v", c, want)
		}
		gotTable, gotRow, err := DecodeRowKey(rk)
		if err != nil || gotTable != table || !bytes.Equal(gotRow, row) {
			t.Fatalf("DecodeRowKey(%x) = %d, %x, %v", rk, gotTable, gotRow, err)
		}
		for _, k := range [][]byte{fp, cp, ck} {
			if _, _, err := DecodeRowKey(k); !errors.Is(err, ErrCorruptKey) {
				t.Fatalf("DecodeRowKey accepted non-row key %x", k)
			}
		}
		for _, k := range [][]byte{rk, fp, cp} {
			if _, err := DecodeCellKey(k); !errors.Is(err, ErrCorruptKey) {
				t.Fatalf("DecodeCellKey accepted prefix %x", k)
			}
		}
		if s, err := StripDataKey(DataKey(ck)); err != nil || !bytes.Equal(s, ck) {
			t.Fatalf("StripDataKey(DataKey(%x)) = %x, %v", ck, s, err)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to every decoder. None may panic, every
// failure must wrap ErrCorruptKey, and every success must be canonical:
// re-encoding the result reproduces the input exactly.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x00})
	f.Add([]byte{0x00, 0x01})
	f.Add([]byte{0x00, 0xFF})
	f.Add([]byte{0x00, 0x02})
	f.Add(TablePrefix(1))
	f.Add(RowKey(1, []byte("r\x00")))
	f.Add(FamilyPrefix(1, []byte("r"), "f"))
	f.Add(ColumnPrefix(1, []byte("r"), "f", []byte("q")))
	f.Add(CellKey(1, []byte("r\x00"), "f", []byte("q\x00"), 42))
	f.Add(append(ColumnPrefix(1, nil, "", nil), 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF))
	f.Add(StoreIdentKey())
	f.Add(TableSchemaKey(3))
	f.Add(AppliedStateKey(4))
	f.Add(TombstoneKey(4))
	f.Add(RaftLogKey(4, 5))
	f.Add(DataKey(CellKey(1, []byte("r"), "f", nil, 1)))
	f.Add([]byte{0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		// ok reports whether a decoder succeeded, after checking that a
		// failure wraps ErrCorruptKey.
		ok := func(name string, err error) bool {
			t.Helper()
			if err != nil && !errors.Is(err, ErrCorruptKey) {
				t.Fatalf("%s(%x): error %v does not wrap ErrCorruptKey", name, data, err)
			}
			return err == nil
		}

		if v, rest, err := DecodeBytes(data); ok("DecodeBytes", err) {
			if re := append(EncodeBytes(nil, v), rest...); !bytes.Equal(re, data) {
				t.Fatalf("DecodeBytes(%x) not canonical: re-encoded %x", data, re)
			}
		}
		if c, err := DecodeCellKey(data); ok("DecodeCellKey", err) {
			if re := CellKey(c.TableID, c.Row, c.Family, c.Qualifier, c.Timestamp); !bytes.Equal(re, data) {
				t.Fatalf("DecodeCellKey(%x) not canonical: re-encoded %x", data, re)
			}
		}
		table, row, err := DecodeRowKey(data)
		if ok("DecodeRowKey", err) && !bytes.Equal(RowKey(table, row), data) {
			t.Fatalf("DecodeRowKey(%x) not canonical", data)
		}
		valid := IsValidSplitKey(data)
		if valid != (err == nil || len(data) == tablePrefixLen) {
			t.Fatalf("IsValidSplitKey(%x) = %v disagrees with DecodeRowKey err %v", data, valid, err)
		}
		if p, err := RowPrefix(data); ok("RowPrefix", err) {
			if !bytes.HasPrefix(data, p) || !IsValidSplitKey(p) {
				t.Fatalf("RowPrefix(%x) = %x is not a split-key prefix", data, p)
			}
		}
		if id, idx, err := DecodeRaftLogKey(data); ok("DecodeRaftLogKey", err) {
			if !bytes.Equal(RaftLogKey(id, idx), data) {
				t.Fatalf("DecodeRaftLogKey(%x) not canonical", data)
			}
		}
		if id, suffix, err := DecodeTabletLocalKey(data); ok("DecodeTabletLocalKey", err) {
			if !bytes.HasPrefix(data, TabletLocalPrefix(id)) || data[tabletPrefixLen] != suffix {
				t.Fatalf("DecodeTabletLocalKey(%x) = %d, %q", data, id, suffix)
			}
		}
		if id, err := DecodeTableSchemaKey(data); ok("DecodeTableSchemaKey", err) {
			if !bytes.Equal(TableSchemaKey(id), data) {
				t.Fatalf("DecodeTableSchemaKey(%x) not canonical", data)
			}
		}
		if k, err := StripDataKey(data); ok("StripDataKey", err) {
			if !bytes.Equal(DataKey(k), data) {
				t.Fatalf("StripDataKey(%x) not canonical", data)
			}
		}
		if end := PrefixEnd(data); end != nil {
			if bytes.Compare(end, data) <= 0 || bytes.HasPrefix(end, data) {
				t.Fatalf("PrefixEnd(%x) = %x", data, end)
			}
		} else if len(bytes.TrimLeft(data, "\xff")) != 0 {
			t.Fatalf("PrefixEnd(%x) = nil", data)
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("input modified: %x -> %x", orig, data)
		}
	})
}
