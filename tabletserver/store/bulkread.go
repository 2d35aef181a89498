package store

import (
	"context"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/admission"
)

// bulkPaceBytes is how much a bulk-read scan reads between pacing waits,
// as an export does.
const bulkPaceBytes = 64 << 10

// bulkReadPacer paces a Scan the client marked as a bulk read
// (admission.BulkReadHeader: an importer's verification) in the Export
// class, by the bytes of the keys and values it reads: such a scan may
// read a whole table while it sends back only row keys and digests, so
// its pages do not measure its work. A nil pacer (a foreground scan)
// does nothing.
type bulkReadPacer struct {
	s       *Store
	ctx     context.Context
	pending int
}

func (s *Store) newBulkReadPacer(ctx context.Context) *bulkReadPacer {
	if !admission.IsBulkRead(ctx) {
		return nil
	}
	return &bulkReadPacer{s: s, ctx: ctx}
}

// step counts the key and value under it (the value's length without
// fetching a separated value) and waits for the class's rate every
// bulkPaceBytes.
func (p *bulkReadPacer) step(it *pebble.Iterator) error {
	if p == nil {
		return nil
	}
	lv := it.LazyValue()
	if p.pending += len(it.Key()) + lv.Len(); p.pending < bulkPaceBytes {
		return nil
	}
	n := p.pending
	p.pending = 0
	return p.s.pace(p.ctx, admission.Export, n)
}
