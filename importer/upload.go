package importer

import (
	"context"

	"github.com/golang/snappy"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// uploadChunkBytes is the uncompressed size of one UploadSST message.
const uploadChunkBytes = 1 << 20

// UploadSST streams sst to one store's staging area: 1 MiB chunks,
// snappy-compressed, named by the file's SHA-256 (which the store checks).
func UploadSST(ctx context.Context, cl kvpb.TabletClient, tabletID uint64, sst *SST) (*kvpb.UploadSSTResponse, error) {
	stream, err := cl.UploadSST(ctx)
	if err != nil {
		return nil, err
	}
	data := sst.Data
	first := true
	var enc []byte
	for first || len(data) > 0 {
		n := min(len(data), uploadChunkBytes)
		enc = snappy.Encode(enc[:cap(enc)], data[:n])
		msg := &kvpb.UploadSSTRequest{Chunk: enc}
		if first {
			msg.TabletId, msg.Checksum, msg.Size = tabletID, sst.Checksum, uint64(len(sst.Data))
			first = false
		}
		if err := stream.Send(msg); err != nil {
			// The server's reason arrives with CloseAndRecv.
			_, rerr := stream.CloseAndRecv()
			if rerr != nil {
				return nil, rerr
			}
			return nil, err
		}
		data = data[n:]
	}
	return stream.CloseAndRecv()
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
