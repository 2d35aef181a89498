package cellsum

import (
	"encoding/binary"
	"hash/crc32"
)

var table = crc32.MakeTable(crc32.Castagnoli)

// Value returns the CRC-32C of a cell's value.
func Value(value []byte) uint32 { return crc32.Checksum(value, table) }

// Cell returns the CRC-32C of a cell a client writes (see the package
// comment for what it covers).
func Cell(row []byte, family string, qualifier, value []byte) uint32 {
	return Extend(Value(value), row, family, qualifier)
}

// Extend continues a value's CRC-32C over the cell's row key, family and
// qualifier, giving Cell.
func Extend(valueSum uint32, row []byte, family string, qualifier []byte) uint32 {
	var buf [64]byte // family names are short: no allocation for the copy
	fam := append(buf[:0], family...)
	return part(part(part(valueSum, row), fam), qualifier)
}

func part(sum uint32, p []byte) uint32 {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(p)))
	return crc32.Update(crc32.Update(sum, table, n[:]), table, p)
}
