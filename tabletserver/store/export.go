package store

// Backup export: the tablet-server half of `shale backup` (backup/).
//
// One replica of a tablet (a follower when the caller allows it and the
// replica can serve reads at ts, store.WaitReadableAt) pins an engine
// snapshot and streams the cells of [start_key, end_key) ∩ its tablet ∩
// the named table as SST files of about max_file_bytes: the versions a read
// at ts sees (each column's versions <= ts, at most its family's max
// versions of them, none older than its max age), or, for an incremental
// (since_ts > 0), those with timestamps in (since_ts, ts] in "data" files
// and the keys of the older ones still visible in "keys" files (the
// restore keeps a cell of an earlier backup only if the last one lists
// it: that list is how an incremental carries the deletes between the two
// timestamps). Files hold the cells' payloads, not the engine's value
// envelope (internal/cellvalue), and no tombstones: a tombstone at or below
// ts hides the versions it deletes from the export as from a read, and
// the restore writes the envelope again (importer.SSTBuilder). The
// hidden request-ID records are not exported. Memory is one file's buffer; reading is rate-limited by
// Options.ExportBytesPerSec, like snapshots and ingests, so a backup is
// background work.

import (
	"bytes"
	"context"
	"crypto/sha256"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/shaledb/shale/internal/admission"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
)

// Export file sizes: the default and the largest a request may ask for.
const (
	defaultExportFileBytes = 8 << 20
	maxExportFileBytes     = 64 << 20
	exportChunkBytes       = 1 << 20
)

// Export streams one tablet's cells as of req.Ts as SST files (see the
// top of this file).
func (s *Store) Export(ctx context.Context, req *kvpb.ExportRequest, send func(*kvpb.ExportResponse) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if req.Ts <= 0 || req.SinceTs < 0 || req.SinceTs >= req.Ts {
		return errs.InvalidArgument("export: need 0 <= since_ts < ts, got since_ts %d, ts %d", req.SinceTs, req.Ts)
	}
	fileBytes := int(req.MaxFileBytes)
	if fileBytes <= 0 {
		fileBytes = defaultExportFileBytes
	}
	fileBytes = min(fileBytes, maxExportFileBytes)
	schema, err := s.schema(req.TableId)
	if err != nil {
		return err
	}
	r, err := s.replicaForRequest(req.Header.GetTabletId())
	if err != nil {
		return err
	}
	if err := s.checkEpoch(r.descriptor(), req.Header); err != nil {
		return err
	}
	if err := s.WaitReadableAt(ctx, r.tabletID, req.Ts); err != nil {
		return err
	}
	// At req.Ts: if a time-range delete, ingest or version GC after it
	// raised the tablet's history floor past it, the export is refused
	// (ReadTooOld) rather than silently missing what they removed. Other
	// deletes write tombstones and do not raise it.
	snap, desc, err := s.pinnedRead(r, req.Header, req.Ts)
	if err != nil {
		return err
	}
	defer snap.Close()
	// [lo, hi): the request's range within the table and the tablet.
	tlo := keys.TablePrefix(req.TableId)
	thi := keys.PrefixEnd(tlo)
	lo := maxKey(maxKey(tlo, req.StartKey), desc.StartKey)
	hi := minEnd(minEnd(thi, req.EndKey), desc.EndKey)
	if len(hi) > 0 && bytes.Compare(lo, hi) >= 0 {
		return send(&kvpb.ExportResponse{Done: true, CoveredEnd: hi, StoreId: s.opts.StoreID})
	}
	dlo, dhi := keys.DataSpan(lo, hi)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: dlo, UpperBound: dhi})
	if err != nil {
		return err
	}
	defer it.Close()
	maxVersions, maxAge := map[string]int{}, map[string]int64{}
	for _, f := range schema.Families {
		maxVersions[f.Name], maxAge[f.Name] = int(f.MaxVersions), f.MaxAgeMs
	}
	now := s.opts.WallClock().UnixMicro()
	data := newExportFile("data", fileBytes)
	var old *exportFile // incremental: keys of visible cells <= since_ts
	if req.SinceTs > 0 {
		old = newExportFile("keys", fileBytes)
	}
	var (
		col      []byte
		versions int
		masked   bool // the column has a tombstone at or below req.Ts
		dec      keys.CellDecoder
		pending  int
		digester keys.CellDigester
		digest   uint64
		cells    uint64
	)
	check := s.newScanCheck(ctx)
	for it.First(); it.Valid(); it.Next() {
		// Skipped cells (newer than req.Ts, masked, dropped) never reach
		// the pacing wait, and the export holds off Close (enter).
		if err := check.err(); err != nil {
			return err
		}
		ck, err := keys.StripDataKey(it.Key())
		if err != nil {
			return err
		}
		c, err := dec.Decode(ck)
		if err != nil {
			return err
		}
		if c.Family == dedupFamily || c.Timestamp > req.Ts {
			continue
		}
		mv, known := maxVersions[c.Family]
		if !known {
			continue // a family dropped from the schema: not readable
		}
		if k := keys.ColumnPrefix(c.TableID, c.Row, c.Family, c.Qualifier); !bytes.Equal(k, col) {
			col, versions, masked = k, 0, false
		}
		if masked {
			continue
		}
		v, tombstone, err := cellValue(it.Key(), it.Value())
		if err != nil {
			return err
		}
		if cellvalue.MasksOlder(it.Value()) {
			masked = true // a masking value is exported, what it masks is not
		}
		if tombstone {
			continue
		}
		versions++
		if mv > 0 && versions > mv {
			continue
		}
		if age := maxAge[c.Family]; age > 0 && c.Timestamp < now-age*1000 {
			continue
		}
		digest += digester.CellDigest(c.Row, c.Family, c.Qualifier, v)
		cells++
		pending += len(ck) + len(v)
		if pending >= 64<<10 {
			if err := s.pace(ctx, admission.Export, pending); err != nil {
				return err
			}
			pending = 0
		}
		f := data
		if old != nil && c.Timestamp <= req.SinceTs {
			f, v = old, nil
		}
		if err := f.add(ck, v, c.Timestamp); err != nil {
			return err
		}
		if f.full() {
			if err := f.flush(send); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	for _, f := range []*exportFile{data, old} {
		if f != nil {
			if err := f.flush(send); err != nil {
				return err
			}
		}
	}
	return send(&kvpb.ExportResponse{Done: true, CoveredEnd: hi, StoreId: s.opts.StoreID, StateDigest: digest, StateCells: cells})
}

// Export serves the Export RPC.
func (v *Service) Export(req *kvpb.ExportRequest, stream kvpb.Tablet_ExportServer) error {
	return v.s.Export(stream.Context(), req, stream.Send)
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

// minEnd returns the smaller of two range ends (empty: no bound).
func minEnd(a, b []byte) []byte {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	case bytes.Compare(a, b) <= 0:
		return a
	}
	return b
}

// exportFile builds one SST of cell keys (no engine prefix) in memory.
type exportFile struct {
	kind      string
	limit     int
	buf       bytes.Buffer
	w         *sstable.Writer
	n         uint64
	raw       uint64
	smallest  []byte
	largest   []byte
	maxTS     int64
	sizeGuess int
}

func newExportFile(kind string, limit int) *exportFile {
	return &exportFile{kind: kind, limit: limit}
}

type memFile struct{ buf *bytes.Buffer }

func (w memFile) Write(p []byte) error { _, err := w.buf.Write(p); return err }
func (w memFile) Finish() error        { return nil }
func (w memFile) Abort()               {}

func (f *exportFile) add(k, v []byte, ts int64) error {
	if f.w == nil {
		f.buf.Reset()
		f.w = sstable.NewWriter(memFile{&f.buf}, sstable.WriterOptions{TableFormat: pebble.FormatNewest.MaxTableFormat()})
		f.n, f.raw, f.maxTS, f.sizeGuess = 0, 0, 0, 0
		f.smallest = bytes.Clone(k)
	}
	if err := f.w.Set(k, v); err != nil {
		return err
	}
	f.largest = append(f.largest[:0], k...)
	f.n++
	f.raw += uint64(len(k) + len(v))
	f.sizeGuess += len(k) + len(v) + 8
	f.maxTS = max(f.maxTS, ts)
	return nil
}

// full reports whether the file reached its size (uncompressed estimate:
// the writer's own estimate lags its buffered block).
func (f *exportFile) full() bool { return f.w != nil && f.sizeGuess >= f.limit }

// flush finishes the file, if any, and sends it in chunks; the last one
// names it.
func (f *exportFile) flush(send func(*kvpb.ExportResponse) error) error {
	if f.w == nil {
		return nil
	}
	if err := f.w.Close(); err != nil {
		return err
	}
	f.w = nil
	data := f.buf.Bytes()
	sum := sha256.Sum256(data)
	for len(data) > exportChunkBytes {
		if err := send(&kvpb.ExportResponse{Chunk: data[:exportChunkBytes]}); err != nil {
			return err
		}
		data = data[exportChunkBytes:]
	}
	return send(&kvpb.ExportResponse{
		Chunk: data, FileDone: true, Sha256: sum[:], Size: uint64(f.buf.Len()), KeyCount: f.n,
		Smallest: f.smallest, Largest: bytes.Clone(f.largest), MaxTimestamp: f.maxTS, Kind: f.kind, BytesOfCells: f.raw,
	})
}
