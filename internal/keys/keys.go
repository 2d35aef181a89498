package keys

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// tablePrefixLen is the length of the big-endian table ID at the front of
// every logical key.
const tablePrefixLen = 8

// timestampLen is the length of the complemented timestamp ending a cell key.
const timestampLen = 8

// TablePrefix returns the 8-byte big-endian encoding of tableID, the prefix
// shared by every key of the table.
func TablePrefix(tableID uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, tablePrefixLen), tableID)
}

// RowKey returns TablePrefix(tableID) followed by the encoded row. Tablet
// boundaries are row keys (or bare table prefixes).
func RowKey(tableID uint64, row []byte) []byte {
	dst := make([]byte, 0, tablePrefixLen+encodedLen(row))
	return appendRowKey(dst, tableID, row)
}

// FamilyPrefix returns RowKey(tableID, row) followed by the encoded family:
// the prefix of every cell of that family in that row.
func FamilyPrefix(tableID uint64, row []byte, family string) []byte {
	dst := make([]byte, 0, tablePrefixLen+encodedLen(row)+encodedLen(family))
	return appendEscaped(appendRowKey(dst, tableID, row), family)
}

// ColumnPrefix returns FamilyPrefix(tableID, row, family) followed by the
// encoded qualifier: the prefix of every version of one column.
func ColumnPrefix(tableID uint64, row []byte, family string, qualifier []byte) []byte {
	dst := make([]byte, 0, tablePrefixLen+encodedLen(row)+encodedLen(family)+encodedLen(qualifier))
	return appendColumnPrefix(dst, tableID, row, family, qualifier)
}

// CellKey returns ColumnPrefix(tableID, row, family, qualifier) followed by
// the big-endian encoding of ^uint64(ts), so that newer versions sort first.
// It panics if ts is negative: timestamps come from the HLC and a negative one
// is a caller bug.
func CellKey(tableID uint64, row []byte, family string, qualifier []byte, ts int64) []byte {
	dst := make([]byte, 0, cellKeyLen(row, family, qualifier))
	return AppendCellKey(dst, tableID, row, family, qualifier, ts)
}

// TimestampLen is the size of the timestamp that ends every cell key:
// big-endian ^ts, so that versions sort newest first and timestamp 0 is
// all 0xff.
const TimestampLen = 8

// AppendCellKey appends CellKey(tableID, row, family, qualifier, ts) to dst
// and returns the extended slice. It does not allocate when dst has enough
// capacity, which makes it suitable for hot paths that reuse a buffer.
func AppendCellKey(dst []byte, tableID uint64, row []byte, family string, qualifier []byte, ts int64) []byte {
	if ts < 0 {
		panic(fmt.Sprintf("keys: negative cell timestamp %d", ts))
	}
	dst = appendColumnPrefix(dst, tableID, row, family, qualifier)
	return binary.BigEndian.AppendUint64(dst, ^uint64(ts))
}

func cellKeyLen(row []byte, family string, qualifier []byte) int {
	return tablePrefixLen + encodedLen(row) + encodedLen(family) + encodedLen(qualifier) + timestampLen
}

func appendRowKey(dst []byte, tableID uint64, row []byte) []byte {
	return appendEscaped(binary.BigEndian.AppendUint64(dst, tableID), row)
}

func appendColumnPrefix(dst []byte, tableID uint64, row []byte, family string, qualifier []byte) []byte {
	dst = appendRowKey(dst, tableID, row)
	dst = appendEscaped(dst, family)
	return appendEscaped(dst, qualifier)
}

// Cell is a decoded cell key.
type Cell struct {
	TableID   uint64
	Row       []byte
	Family    string
	Qualifier []byte
	Timestamp int64
}

// DecodeCellKey decodes a key produced by CellKey. Row and Qualifier never
// alias key. It fails with ErrCorruptKey unless key is exactly one cell key.
func DecodeCellKey(key []byte) (Cell, error) {
	if len(key) < tablePrefixLen {
		return Cell{}, fmt.Errorf("%w: cell key too short (%d bytes) for table prefix", ErrCorruptKey, len(key))
	}
	tableID := binary.BigEndian.Uint64(key)
	rest := key[tablePrefixLen:]

	rowN, rowLen, err := scanEscaped(rest)
	if err != nil {
		return Cell{}, fmt.Errorf("cell key row: %w", err)
	}
	rowEnc, rest := rest[:rowN], rest[rowN:]
	famN, famLen, err := scanEscaped(rest)
	if err != nil {
		return Cell{}, fmt.Errorf("cell key family: %w", err)
	}
	famEnc, rest := rest[:famN], rest[famN:]
	qualN, qualLen, err := scanEscaped(rest)
	if err != nil {
		return Cell{}, fmt.Errorf("cell key qualifier: %w", err)
	}
	qualEnc, rest := rest[:qualN], rest[qualN:]
	if len(rest) != timestampLen {
		return Cell{}, fmt.Errorf("%w: cell key timestamp has %d bytes, want %d", ErrCorruptKey, len(rest), timestampLen)
	}
	ts := int64(^binary.BigEndian.Uint64(rest))
	if ts < 0 {
		return Cell{}, fmt.Errorf("%w: cell key timestamp decodes to negative %d", ErrCorruptKey, ts)
	}

	// One allocation holds row, family and qualifier; the family is then
	// copied into its string.
	buf := make([]byte, 0, rowLen+famLen+qualLen)
	buf = appendUnescaped(buf, rowEnc)
	buf = appendUnescaped(buf, famEnc)
	buf = appendUnescaped(buf, qualEnc)
	return Cell{
		TableID:   tableID,
		Row:       buf[:rowLen:rowLen],
		Family:    string(buf[rowLen : rowLen+famLen]),
		Qualifier: buf[rowLen+famLen : rowLen+famLen+qualLen : rowLen+famLen+qualLen],
		Timestamp: ts,
	}, nil
}

// DecodeRowKey decodes a key produced by RowKey. The row never aliases key.
// It fails with ErrCorruptKey unless key is exactly one row key (in
// particular, family, column and cell keys are rejected).
func DecodeRowKey(key []byte) (tableID uint64, row []byte, err error) {
	if len(key) < tablePrefixLen {
		return 0, nil, fmt.Errorf("%w: row key too short (%d bytes) for table prefix", ErrCorruptKey, len(key))
	}
	row, rest, err := DecodeBytes(key[tablePrefixLen:])
	if err != nil {
		return 0, nil, fmt.Errorf("row key: %w", err)
	}
	if len(rest) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes after row key", ErrCorruptKey, len(rest))
	}
	return binary.BigEndian.Uint64(key), row, nil
}

// RowPrefix truncates a row, family, column or cell key to its row key, which
// is how split points are derived from arbitrary keys. A bare 8-byte table
// prefix is returned unchanged. Only the table prefix and row are validated;
// whatever follows the row is ignored. The result shares key's memory but has
// its capacity clipped, so appending to it never overwrites key.
func RowPrefix(key []byte) ([]byte, error) {
	if len(key) < tablePrefixLen {
		return nil, fmt.Errorf("%w: key too short (%d bytes) for table prefix", ErrCorruptKey, len(key))
	}
	if len(key) == tablePrefixLen {
		return key[:tablePrefixLen:tablePrefixLen], nil
	}
	n, _, err := scanEscaped(key[tablePrefixLen:])
	if err != nil {
		return nil, fmt.Errorf("row prefix: %w", err)
	}
	n += tablePrefixLen
	return key[:n:n], nil
}

// IsValidSplitKey reports whether key may be a tablet boundary: a bare table
// prefix or an exact row key.
func IsValidSplitKey(key []byte) bool {
	if len(key) == tablePrefixLen {
		return true
	}
	if len(key) < tablePrefixLen {
		return false
	}
	n, _, err := scanEscaped(key[tablePrefixLen:])
	return err == nil && tablePrefixLen+n == len(key)
}

// CellDecoder decodes the cell keys of one ordered iteration. Consecutive
// keys nearly always share their row and family, and versions of a column
// share everything but the timestamp, so it reuses the previous key's
// decoded parts when their encodings repeat: a read allocates once per
// column instead of once per cell, and not at all per extra version. The
// returned Row, Family and Qualifier are shared with later results and must
// not be modified. The zero value is ready to use.
type CellDecoder struct {
	rowEnc, famEnc, qualEnc []byte // encodings of the previous key's parts
	cell                    Cell
}

// Decode decodes a key produced by CellKey, like DecodeCellKey.
func (d *CellDecoder) Decode(key []byte) (Cell, error) {
	if len(key) < tablePrefixLen+timestampLen {
		return Cell{}, fmt.Errorf("%w: cell key too short (%d bytes)", ErrCorruptKey, len(key))
	}
	tableID := binary.BigEndian.Uint64(key)
	rest := key[tablePrefixLen:]
	col, tsEnc := rest[:len(rest)-timestampLen], rest[len(rest)-timestampLen:]
	ts := int64(^binary.BigEndian.Uint64(tsEnc))
	if ts < 0 {
		return Cell{}, fmt.Errorf("%w: cell key timestamp decodes to negative %d", ErrCorruptKey, ts)
	}
	prevCol := len(d.rowEnc) + len(d.famEnc) + len(d.qualEnc)
	if d.cell.TableID == tableID && prevCol > 0 && len(col) == prevCol &&
		bytes.HasPrefix(col, d.rowEnc) && bytes.HasPrefix(col[len(d.rowEnc):], d.famEnc) && bytes.Equal(col[len(d.rowEnc)+len(d.famEnc):], d.qualEnc) {
		d.cell.Timestamp = ts
		return d.cell, nil
	}
	rowN, rowLen, err := scanEscaped(col)
	if err != nil {
		return Cell{}, fmt.Errorf("cell key row: %w", err)
	}
	famN, famLen, err := scanEscaped(col[rowN:])
	if err != nil {
		return Cell{}, fmt.Errorf("cell key family: %w", err)
	}
	qualN, qualLen, err := scanEscaped(col[rowN+famN:])
	if err != nil {
		return Cell{}, fmt.Errorf("cell key qualifier: %w", err)
	}
	if rowN+famN+qualN != len(col) {
		return Cell{}, fmt.Errorf("%w: cell key timestamp has %d bytes, want %d", ErrCorruptKey, len(col)-rowN-famN-qualN+timestampLen, timestampLen)
	}
	rowEnc, famEnc, qualEnc := col[:rowN], col[rowN:rowN+famN], col[rowN+famN:]
	if d.cell.TableID != tableID || !bytes.Equal(rowEnc, d.rowEnc) || d.cell.Row == nil {
		d.cell.Row = appendUnescaped(make([]byte, 0, rowLen), rowEnc)
		d.rowEnc = append(d.rowEnc[:0], rowEnc...)
		d.famEnc = d.famEnc[:0] // force the family to be decoded again
	}
	if len(d.famEnc) == 0 || !bytes.Equal(famEnc, d.famEnc) {
		d.cell.Family = string(appendUnescaped(make([]byte, 0, famLen), famEnc))
		d.famEnc = append(d.famEnc[:0], famEnc...)
	}
	d.cell.Qualifier = appendUnescaped(make([]byte, 0, qualLen), qualEnc)
	d.qualEnc = append(d.qualEnc[:0], qualEnc...)
	d.cell.TableID, d.cell.Timestamp = tableID, ts
	return d.cell, nil
}
