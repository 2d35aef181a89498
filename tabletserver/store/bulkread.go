package store

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/errs"
)

// scanPaceBytes is how much a paced scan reads between pacing waits, as
// an export does.
const scanPaceBytes = 64 << 10

// scanPacer paces a background scan in its class by the bytes of the keys
// and values it reads: such a scan may read a whole tablet while it
// sends or writes little (an importer's verification answers row keys
// and digests; a GC pass over a clean tablet deletes nothing), so its
// output does not measure its work. A nil pacer (a foreground scan)
// does nothing.
type scanPacer struct {
	s       *Store
	ctx     context.Context
	class   admission.Class
	pending int
	read    int64 // bytes counted so far
}

func (s *Store) newScanPacer(ctx context.Context, c admission.Class) *scanPacer {
	return &scanPacer{s: s, ctx: ctx, class: c}
}

// bulkReadRetryMs is the retry-after of a bulk read refused because the
// store serves as many as it may: a bulk read lasts seconds, so sooner
// would only be refused again.
const bulkReadRetryMs = 500

// admitBulkRead takes one of the store's bulk-read tokens for a Scan the
// client marked as a bulk read, or refuses it with ServerBusy: a paced
// bulk read pins an engine snapshot (and the files under it) for as long
// as it runs, so their number is bounded (Options.MaxConcurrentBulkReads,
// as MaxConcurrentSnapshots bounds snapshots). The caller runs release
// when the Scan ends; for any other Scan it does nothing.
func (s *Store) admitBulkRead(ctx context.Context) (release func(), err error) {
	if !admission.IsBulkRead(ctx) {
		return func() {}, nil
	}
	select {
	case s.bulkReads <- struct{}{}:
		return func() { <-s.bulkReads }, nil
	default:
		return nil, errs.ServerBusy(fmt.Sprintf("store %d is serving %d bulk reads, the most it serves at once", s.opts.StoreID, cap(s.bulkReads)), bulkReadRetryMs)
	}
}

// newBulkReadPacer paces a Scan the client marked as a bulk read
// (admission.BulkReadHeader) in the Export class; nil for any other.
func (s *Store) newBulkReadPacer(ctx context.Context) *scanPacer {
	if !admission.IsBulkRead(ctx) {
		return nil
	}
	return s.newScanPacer(ctx, admission.Export)
}

// step counts the key and value under it (the value's length without
// fetching a separated value) and waits for the class's rate every
// scanPaceBytes.
func (p *scanPacer) step(it *pebble.Iterator) error {
	if p == nil {
		return nil
	}
	lv := it.LazyValue()
	n := len(it.Key()) + lv.Len()
	p.read += int64(n)
	if p.pending += n; p.pending < scanPaceBytes {
		return nil
	}
	n, p.pending = p.pending, 0
	return p.s.pace(p.ctx, p.class, n)
}
