package importer

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// memWritable is an objstorage.Writable over a byte buffer.
type memWritable struct{ buf *bytes.Buffer }

func (w memWritable) Write(p []byte) error { _, err := w.buf.Write(p); return err }
func (w memWritable) Finish() error        { return nil }
func (w memWritable) Abort()               {}

// SST is one built file and what IngestSST must declare about it.
type SST struct {
	Data     []byte
	Checksum []byte // SHA-256 of Data
	CRC32C   uint32 // of Data (Castagnoli): the stores check uploads with it
	// Smallest and Largest are cell keys (no data prefix).
	Smallest, Largest []byte
	KeyCount          uint64
	MaxTimestamp      int64

	compress   sync.Once
	compressed [][]byte // upload chunks (chunks)
	raw        bool     // the chunks are not compressed
}

// SSTBuilder writes cells, in strictly increasing cell-key order, into an
// in-memory SST in the format the stores write their snapshot SSTs in
// (stores open Pebble at FormatNewest; see tabletserver/store/snapshot.go).
type SSTBuilder struct {
	// valueSample holds the first 64 KiB of values (ValuesCompress).
	valueSample []byte
	buf         bytes.Buffer
	w           *sstable.Writer
	sst         SST
	bytes       int
	enc         []byte // the envelope of the value being added
}

// NewSSTBuilder starts an empty SST with snappy-compressed blocks.
func NewSSTBuilder() *SSTBuilder { return newSSTBuilder(true, 0) }

// newSSTBuilder starts an empty SST, its blocks snappy-compressed or not
// (a job whose values do not compress stops trying: see ValuesCompress),
// with room for about sizeHint bytes (growing a buffer to megabytes copies
// it over and over).
func newSSTBuilder(compress bool, sizeHint int) *SSTBuilder {
	b := &SSTBuilder{}
	b.buf.Grow(sizeHint + sizeHint/8)
	o := sstable.WriterOptions{TableFormat: pebble.FormatNewest.MaxTableFormat()}
	if !compress {
		o.Compression = sstable.NoCompression
	}
	b.w = sstable.NewWriter(memWritable{&b.buf}, o)
	return b
}

// ValuesCompress reports whether the values added (a sample of the first
// 64 KiB) shrink by an eighth under snappy: the blocks' keys are
// prefix-compressed by the table format anyway, so the values decide
// whether block compression is worth its CPU.
func (b *SSTBuilder) ValuesCompress() bool { return compressible(b.valueSample) }

// Add appends one cell; cellKey is keys.CellKey(...), ts its timestamp and
// value its payload, which the file stores in the stores' value envelope
// (internal/cellvalue: with its CRC-32C), as the stores' own writes do.
func (b *SSTBuilder) Add(cellKey, value []byte, ts int64) error {
	if b.sst.KeyCount > 0 && bytes.Compare(cellKey, b.sst.Largest) <= 0 {
		return fmt.Errorf("importer: SST keys out of order: %x after %x", cellKey, b.sst.Largest)
	}
	b.enc = cellvalue.Append(b.enc[:0], value)
	if err := b.w.Set(keys.DataKey(cellKey), b.enc); err != nil {
		return err
	}
	if b.sst.KeyCount == 0 {
		b.sst.Smallest = append([]byte(nil), cellKey...)
	}
	b.sst.Largest = append(b.sst.Largest[:0], cellKey...)
	if len(b.valueSample) < 64<<10 {
		b.valueSample = append(b.valueSample, value...)
	}
	b.sst.KeyCount++
	b.sst.MaxTimestamp = max(b.sst.MaxTimestamp, ts)
	b.bytes += len(cellKey) + len(value) + 1
	return nil
}

// Len returns the number of cells added.
func (b *SSTBuilder) Len() uint64 { return b.sst.KeyCount }

// EstimatedSize returns the uncompressed bytes added so far.
func (b *SSTBuilder) EstimatedSize() int { return b.bytes }

// Finish closes the file and returns it.
func (b *SSTBuilder) Finish() (*SST, error) {
	if err := b.w.Close(); err != nil {
		return nil, err
	}
	b.sst.Data = b.buf.Bytes()
	sum := sha256.Sum256(b.sst.Data)
	b.sst.Checksum = sum[:]
	b.sst.CRC32C = crc32.Checksum(b.sst.Data, castagnoli)
	return &b.sst, nil
}
