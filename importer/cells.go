package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/metapb"
)

// CellIngester ingests cells that already carry their own timestamps (a
// restore, backup/) through the import's path: split and scatter, SSTs cut
// at tablet boundaries, staged on every replica and ingested by reference,
// re-cut when a tablet splits or moves. Ingesting a chunk again is
// harmless (the same keys and values), which makes a restore resumable.
type CellIngester struct {
	j *job
}

// CellIngesterOptions configure a CellIngester.
type CellIngesterOptions struct {
	PD    []string
	TLS   *security.Reloader
	Table string // it must exist
	// MaxTimestamp bounds every cell's timestamp (the backup's); the
	// stores refuse a file whose cells lie above what it declares.
	MaxTimestamp int64
	// SSTBytes is the target size of one SST (default 8 MiB); callers
	// pass chunks of about this size.
	SSTBytes int
	Logger   *slog.Logger
}

// Cell is one cell to ingest: a keys.CellKey of the ingester's table and
// its value.
type Cell struct{ Key, Value []byte }

// IngestStats account for one Ingest.
type IngestStats struct {
	Rows, Cells, Bytes, SSTs, Recuts int64
}

// NewCellIngester connects to the cluster and looks the table up.
func NewCellIngester(ctx context.Context, o CellIngesterOptions) (*CellIngester, error) {
	if o.MaxTimestamp <= 0 {
		return nil, errors.New("importer: cell ingest needs the cells' maximum timestamp")
	}
	io := Options{PD: o.PD, TLS: o.TLS, Table: o.Table, SSTBytes: o.SSTBytes, Logger: o.Logger}.EnsureDefaults()
	j := &job{o: io, started: time.Now(), stopper: stop.New(), cp: &checkpoint{Version: 1, Timestamp: o.MaxTimestamp}}
	ci := &CellIngester{j: j}
	var err error
	if j.cl, err = dialCluster(ctx, o.PD, o.TLS); err != nil {
		return nil, err
	}
	if j.kv, err = kvclient.Open(ctx, kvclient.Options{PD: o.PD, TLS: o.TLS, Logger: io.Logger}); err != nil {
		ci.Close()
		return nil, err
	}
	if j.schema, err = j.cl.table(ctx, o.Table); err != nil {
		ci.Close()
		return nil, err
	}
	return ci, nil
}

// Schema is the table's schema.
func (ci *CellIngester) Schema() *metapb.TableSchema { return ci.j.schema }

// SplitAndScatter splits the table at rows (keys.RowKey of its table,
// increasing) and spreads the tablets' leaders over their replicas. Call it
// before Ingest: SSTs are then never cut across those rows.
func (ci *CellIngester) SplitAndScatter(ctx context.Context, rows [][]byte) error {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, bytes.Compare)
	rows = slices.CompactFunc(rows, bytes.Equal)
	ci.j.splits = rows
	return ci.j.splitAndScatterAt(ctx, rows)
}

// Ingest ingests cells: keys strictly increasing, whole rows (a row's
// cells are never split across two calls), about SSTBytes in all. It
// returns once every cell is in. Calls may run concurrently.
func (ci *CellIngester) Ingest(ctx context.Context, cells []Cell) (IngestStats, error) {
	p := &chunk{}
	var row, prev []byte
	start := 0
	for i, c := range cells {
		if prev != nil && bytes.Compare(c.Key, prev) <= 0 {
			return IngestStats{}, fmt.Errorf("importer: cells out of order: %x after %x", c.Key, prev)
		}
		prev = c.Key
		r, err := keys.RowPrefix(c.Key)
		if err != nil {
			return IngestStats{}, err
		}
		if row != nil && !bytes.Equal(r, row) {
			p.addRow(entries(cells[start:i]), ci.j.o.SSTBytes)
			start = i
		}
		row = r
	}
	if start < len(cells) {
		p.addRow(entries(cells[start:]), ci.j.o.SSTBytes)
	}
	if len(p.rows) == 0 {
		return IngestStats{}, nil
	}
	if err := ci.j.ingestChunk(ctx, p); err != nil {
		return IngestStats{}, err
	}
	return IngestStats{Rows: p.nRows, Cells: p.nCells, Bytes: p.bytes, SSTs: p.ssts, Recuts: p.recuts}, nil
}

func entries(cells []Cell) []entry {
	out := make([]entry, len(cells))
	for i, c := range cells {
		out[i] = entry{key: c.Key, value: c.Value}
	}
	return out
}

// Client is the ingester's kvclient (verification scans).
func (ci *CellIngester) Client() *kvclient.Client { return ci.j.kv }

// Close releases the connections.
func (ci *CellIngester) Close() {
	if ci.j.kv != nil {
		ci.j.kv.Close()
	}
	if ci.j.cl != nil {
		ci.j.cl.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ci.j.stopper.Stop(ctx)
}
