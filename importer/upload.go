package importer

import (
	"context"
	"io"

	"github.com/golang/snappy"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// uploadChunkBytes is the uncompressed size of one UploadSST message.
const uploadChunkBytes = 1 << 20

// UploadSST streams sst to one store's staging area: 1 MiB chunks,
// snappy-compressed (once per SST, however many replicas it goes to),
// named by the file's SHA-256 (which the store checks).
func UploadSST(ctx context.Context, cl kvpb.TabletClient, tabletID uint64, sst *SST) (*kvpb.UploadSSTResponse, error) {
	stream, err := cl.UploadSST(ctx)
	if err != nil {
		return nil, err
	}
	chunks, raw := sst.chunks()
	for i, chunk := range chunks {
		msg := &kvpb.UploadSSTRequest{Chunk: chunk, Raw: raw}
		if i == 0 {
			msg.TabletId, msg.Checksum, msg.Size, msg.Crc32C = tabletID, sst.Checksum, uint64(len(sst.Data)), sst.CRC32C
		}
		if err := stream.Send(msg); err != nil {
			// The server answered early: an error, or a file it already
			// has (io.EOF here, its response from CloseAndRecv).
			resp, rerr := stream.CloseAndRecv()
			if rerr != nil {
				return nil, rerr
			}
			if err == io.EOF && resp.AlreadyStaged {
				return resp, nil
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// chunks returns the file cut into uploadChunkBytes pieces, compressed
// once however many replicas the file goes to: snappy-compressed, or raw
// when the first piece does not shrink by an eighth (the SST's blocks are
// compressed already, or the values are random), which spares both sides
// the work. An empty file is one empty piece.
func (s *SST) chunks() ([][]byte, bool) {
	s.compress.Do(func() {
		data := s.Data
		for first := true; first || len(data) > 0; first = false {
			n := min(len(data), uploadChunkBytes)
			piece := data[:n]
			data = data[n:]
			if !s.raw {
				enc := snappy.Encode(nil, piece)
				if first && len(enc) > n-n/8 {
					s.raw = true
				} else {
					piece = enc
				}
			}
			s.compressed = append(s.compressed, piece)
		}
	})
	return s.compressed, s.raw
}

// IngestRequest is the IngestSST request naming sst for a tablet at epoch.
func IngestRequest(tabletID uint64, epoch *metapb.Epoch, tableID uint64, sst *SST) *kvpb.IngestSSTRequest {
	return &kvpb.IngestSSTRequest{
		Header:       &kvpb.RequestHeader{TabletId: tabletID, Epoch: epoch},
		TableId:      tableID,
		Checksum:     sst.Checksum,
		Size:         uint64(len(sst.Data)),
		Smallest:     sst.Smallest,
		Largest:      sst.Largest,
		KeyCount:     sst.KeyCount,
		MaxTimestamp: sst.MaxTimestamp,
	}
}

// UploadCompressed reports whether UploadSST sends s snappy-compressed.
func (s *SST) UploadCompressed() bool {
	_, raw := s.chunks()
	return !raw
}
