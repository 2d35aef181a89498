package cellsum

import (
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"
)

// The definition in the package comment, spelled out: a client in another
// language computes exactly this.
func TestCellIsTheDocumentedCRC(t *testing.T) {
	row, fam, qual, val := []byte("row1"), "f", []byte("q"), []byte("value")
	var b []byte
	b = append(b, val...)
	b = append(b, 0, 0, 0, 4)
	b = append(b, row...)
	b = append(b, 0, 0, 0, 1)
	b = append(b, fam...)
	b = append(b, 0, 0, 0, 1)
	b = append(b, qual...)
	require.Equal(t, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)), Cell(row, fam, qual, val))
	require.Equal(t, crc32.Checksum(val, crc32.MakeTable(crc32.Castagnoli)), Value(val))
}

// Every single-bit flip, and a byte moved from one part to the next,
// changes the sum.
func TestCellCatchesFlipsAndShifts(t *testing.T) {
	row, fam, qual, val := []byte("row1"), "fam", []byte("qual"), []byte("some value")
	want := Cell(row, fam, qual, val)
	for _, p := range [][]byte{row, qual, val} {
		for i := range p {
			for bit := 0; bit < 8; bit++ {
				p[i] ^= 1 << bit
				require.NotEqual(t, want, Cell(row, fam, qual, val))
				p[i] ^= 1 << bit
			}
		}
	}
	require.NotEqual(t, want, Cell([]byte("row1f"), "am", qual, val))
	require.NotEqual(t, want, Cell(row, "fa", []byte("mqual"), val))
	require.Equal(t, want, Cell(row, fam, qual, val))
}
