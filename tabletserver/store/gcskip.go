package store

import (
	"sync/atomic"

	"github.com/shaledb/shale/proto/metapb"
)

// Skipping tablets in version GC.
//
// A GC pass reads its tablet whole, so a store that rescanned every tablet
// it leads every GCInterval would spend CPU in proportion to its data,
// forever: to find nothing in tablets nobody writes, and, in tablets that
// take writes, to find a little garbage in a lot of data (a YCSB A at
// 1,000 ops/s over 200,000 rows read ~15 KB per version it deleted). Two
// rules, both from the gcMark the last whole pass left on the replica:
//
//   - Clean (GCTablet): a pass that deleted nothing is not repeated while
//     nothing could have made garbage since (stillClean, below).
//   - Deferred (the queue only; gcDue): a tablet is left for a later
//     round while the bytes written to it since its last pass (gcDebt;
//     ingests are not counted, see below) are
//     under a tenth of what that pass read, so a pass reads at most about
//     ten bytes per byte that may have become garbage, as CockroachDB's
//     MVCC GC queue visits a range only once its stats promise enough
//     garbage. Never longer than gcMaxDefer rounds, which bounds how long
//     garbage that no write announces waits: versions the safe point has
//     since passed, expired request-ID records. Not for a table whose
//     schema changed or that ages its cells by time (every round, as
//     before).
//     An import mostly fills empty ranges: counted, it had every imported
//     tablet reread each round of the import (9% of the store's CPU during
//     one) to find nothing. The garbage of an import over existing cells
//     waits for the gcMaxDefer bound, or for writes.
//   - Provisional (the queue only): a replica that leads without a mark
//     (newly led here, new from a split, restarted) gets one that counts
//     every byte written since the replica started, and is deferred by
//     the rule above against gcMinDebt (provisionalGCMark).
//
// Garbage appears only when
//
//   - a raft entry applies (a write, an ingest, a snapshot, a split or
//     merge, a GC command): the tablet's applied index moves;
//   - a table's schema changes (a family dropped, its policy tightened);
//   - the GC safe point passes versions the last pass kept for it;
//   - time passes over a family with a max age;
//   - a family the last pass did not know yet gets its schema.
//
// The mark records what the pass saw of each, and stillClean checks them.
// Request-ID records expire by the tablet's own HLC time, which moves only
// as entries apply. A new way to make garbage must add its rule here, with
// a test in gcskip_test.go.
type gcMark struct {
	index     uint64 // applied index of the pass's snapshot
	safePoint int64  // safe point the pass collected below
	clean     bool   // the pass deleted nothing
	// debt is the replica's gcDebt when the pass began, scanned the bytes
	// it read; deferred counts the queue's rounds that left the tablet
	// since.
	debt, scanned int64
	deferred      atomic.Int32
	// aboveSafePoint: the pass kept versions at or above safePoint, which
	// a later safe point may make garbage.
	aboveSafePoint bool
	// provisional: no pass left this mark (provisionalGCMark).
	provisional bool
	// ages: the tablet holds a family with a max age.
	ages bool
	// unsure: the pass met a table or family without a schema here.
	unsure bool
	// schemas are the tables' schemas the pass used. A store replaces a
	// table's schema whenever it learns one, so a schema that is still
	// the same object has not changed.
	schemas []*metapb.TableSchema
}

// sawSchema records the schema the pass uses for a table (nil: unknown).
func (m *gcMark) sawSchema(schema *metapb.TableSchema) {
	if schema == nil {
		m.unsure = true
		return
	}
	m.schemas = append(m.schemas, schema)
}

// stillClean reports whether a pass at applied index and safePoint would
// find no garbage, as the pass that left m found none.
func (m *gcMark) stillClean(s *Store, index uint64, safePoint int64) bool {
	if !m.clean || m.unsure || m.ages || index != m.index {
		return false
	}
	if m.aboveSafePoint && safePoint != m.safePoint {
		return false
	}
	return m.schemasCurrent(s)
}

// schemasCurrent reports whether every schema the pass used is still the
// table's.
func (m *gcMark) schemasCurrent(s *Store) bool {
	for _, used := range m.schemas {
		if cur, _ := s.schema(used.TableId); cur != used {
			return false
		}
	}
	return true
}

const (
	// gcScanPerDebt: the queue defers a tablet while the bytes written
	// since its last pass are under 1/gcScanPerDebt of what that pass read.
	gcScanPerDebt = 10
	// gcMinDebt: small tablets are not passed over for every few writes.
	gcMinDebt = 64 << 10
	// gcMaxDefer bounds a deferral, in the queue's rounds (GCInterval).
	gcMaxDefer = 10
)

// Why the queue reads a tablet whole (the reason label of
// shale_store_gc_scanned_bytes_total).
const (
	gcWhyUnmarked = "unmarked" // no pass here yet (new, restarted, split, newly led), and written since the replica started
	gcWhyPolicy   = "policy"   // a schema changed or unknown, or a family ages by time
	gcWhyWritten  = "written"  // written enough since the last pass
	gcWhyOverdue  = "overdue"  // deferred gcMaxDefer rounds
	gcWhyManual   = "manual"   // GCTablet called directly (an operator, a test)
)

var gcWhys = []string{gcWhyUnmarked, gcWhyPolicy, gcWhyWritten, gcWhyOverdue, gcWhyManual}

// provisionalGCMark is the mark a replica that leads without one gets
// from the queue: debt zero, so every byte of writes the replica applied
// since it started counts against gcMinDebt. A mark is its leader's
// alone (a pass's result is not replicated), so without this every
// leader that PD's balancer or an import's scatter moved read its tablet
// whole at once: during a 1 GiB import, ~50 leader moves had GC read
// ~560 MiB of tablets filled by ingests, which make no garbage. What it
// does not know (garbage the old leader left, a schema change, a family
// that ages) waits at most gcMaxDefer of this replica's rounds as leader,
// or until gcMinDebt is written. GC only reclaims space (reads hide
// garbage already), so a deferral costs disk, never a wrong answer.
func provisionalGCMark() *gcMark { return &gcMark{provisional: true} }

// gcDue reports why the GC queue should pass over r's tablet this round,
// or "" when it may leave the tablet for a later round (see the top of
// this file), and then counts the round.
func (r *replica) gcDue(s *Store) string {
	m := r.gcMark.Load()
	if m == nil {
		r.gcMark.CompareAndSwap(nil, provisionalGCMark())
		m = r.gcMark.Load()
	}
	switch {
	case m.unsure || m.ages || !m.schemasCurrent(s): // never for a provisional mark: it saw nothing
		return gcWhyPolicy
	case int64(r.gcDebt.Load())-m.debt >= max(m.scanned/gcScanPerDebt, gcMinDebt):
		if m.provisional {
			return gcWhyUnmarked
		}
		return gcWhyWritten
	case m.deferred.Load() >= gcMaxDefer:
		return gcWhyOverdue
	}
	m.deferred.Add(1)
	return ""
}
