package importer

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/shaledb/shale/internal/keys"
)

// memWritable is an objstorage.Writable over a byte buffer.
type memWritable struct{ buf *bytes.Buffer }

func (w memWritable) Write(p []byte) error { _, err := w.buf.Write(p); return err }
func (w memWritable) Finish() error        { return nil }
func (w memWritable) Abort()               {}

// SST is one built file and what IngestSST must declare about it.
type SST struct {
	Data     []byte
	Checksum []byte // SHA-256 of Data
	// Smallest and Largest are cell keys (no data prefix).
	Smallest, Largest []byte
	KeyCount          uint64
	MaxTimestamp      int64
}

// SSTBuilder writes cells, in strictly increasing cell-key order, into an
// in-memory SST in the format the stores write their snapshot SSTs in
// (stores open Pebble at FormatNewest; see tabletserver/store/snapshot.go).
type SSTBuilder struct {
	buf   bytes.Buffer
	w     *sstable.Writer
	sst   SST
	bytes int
}

// NewSSTBuilder starts an empty SST.
func NewSSTBuilder() *SSTBuilder {
	b := &SSTBuilder{}
	b.w = sstable.NewWriter(memWritable{&b.buf}, sstable.WriterOptions{
		TableFormat: pebble.FormatNewest.MaxTableFormat(),
	})
	return b
}

// Add appends one cell; cellKey is keys.CellKey(...) and ts its timestamp.
func (b *SSTBuilder) Add(cellKey, value []byte, ts int64) error {
	if b.sst.KeyCount > 0 && bytes.Compare(cellKey, b.sst.Largest) <= 0 {
		return fmt.Errorf("importer: SST keys out of order: %x after %x", cellKey, b.sst.Largest)
	}
	if err := b.w.Set(keys.DataKey(cellKey), value); err != nil {
		return err
	}
	if b.sst.KeyCount == 0 {
		b.sst.Smallest = append([]byte(nil), cellKey...)
	}
	b.sst.Largest = append(b.sst.Largest[:0], cellKey...)
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
	return &b.sst, nil
}
