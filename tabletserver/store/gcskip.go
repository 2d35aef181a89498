package store

import "github.com/shaledb/shale/proto/metapb"

// Skipping clean tablets in version GC.
//
// A GC pass reads its tablet whole, so a store that rescanned every tablet
// it leads every GCInterval would spend CPU in proportion to its data,
// forever, to find nothing in tablets nobody writes. CockroachDB's MVCC GC
// queue only visits a range once its stats say there is garbage; Shale
// keeps less: a pass that deleted nothing leaves a gcMark on the replica,
// and the next pass skips the tablet while nothing could have made garbage
// since. Garbage appears only when
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
	// aboveSafePoint: the pass kept versions at or above safePoint, which
	// a later safe point may make garbage.
	aboveSafePoint bool
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
	if m.unsure || m.ages || index != m.index {
		return false
	}
	if m.aboveSafePoint && safePoint != m.safePoint {
		return false
	}
	for _, used := range m.schemas {
		if cur, _ := s.schema(used.TableId); cur != used {
			return false
		}
	}
	return true
}
