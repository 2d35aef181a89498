package store

import (
	"bytes"
	"context"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/admission"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// DedupRetention is the default of Options.DedupRetention: how long a
// tablet remembers a request ID's response, in the tablet's HLC time (see
// dedupExpired); kvclient stops resending a write well before.
const DedupRetention = 10 * time.Minute

// dedupExpired reports whether a request-ID record (dedupRecord) is
// garbage once the tablet has applied writes up to HLC timestamp
// tabletTS. Both times are the tablet's commit timestamps, so no store's
// wall clock (a store whose clock runs ahead might become leader) can
// expire a record before the tablet itself has moved DedupRetention past
// it. An unreadable record (no time) is useless and goes.
func dedupExpired(record []byte, tabletTS int64, retention time.Duration) bool {
	ts, ok := dedupRecordTime(record)
	return !ok || ts < tabletTS-retention.Microseconds()
}

// gcBatchKeys bounds one GC command (and so one raft entry).
const gcBatchKeys = 1000

// startGC starts the store's version-GC queue: every GCInterval it walks the
// tablets this store leads, finds cell versions their families' policies
// make garbage, and deletes them through raft so every replica drops the
// same keys. One goroutine per store; it reads from an engine snapshot and
// never blocks the raft worker.
func (s *Store) startGC(ctx context.Context) error {
	if s.opts.GCInterval < 0 {
		return nil
	}
	return s.every(ctx, "store.version-gc", s.opts.GCInterval, func(ctx context.Context) {
		for _, r := range s.replicaList() {
			r.mu.Lock()
			lead := r.mu.isLeader && r.mu.desc != nil
			r.mu.Unlock()
			if !lead {
				continue
			}
			why := r.gcDue(s)
			if why == "" {
				s.metrics.gcDeferred.Inc()
				continue
			}
			if _, err := s.gcTablet(ctx, r.tabletID, why); err != nil {
				r.log.Debug("version gc failed", "err", err)
			}
			if ctx.Err() != nil {
				return
			}
		}
	})
}

// GCTablet collects garbage versions of one tablet this store leads and
// returns how many cell versions it deleted.
func (s *Store) GCTablet(ctx context.Context, tabletID uint64) (int, error) {
	return s.gcTablet(ctx, tabletID, gcWhyManual)
}

// gcTablet is GCTablet; why says what asked for the pass (gcDue).
func (s *Store) gcTablet(ctx context.Context, tabletID uint64, why string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return 0, err
	}
	// Versions at or above the cluster's GC safe point stay (a backup or
	// a read at a timestamp may need them; placementdriver/safepoint.go).
	safePoint := int64(math.MaxInt64)
	if s.opts.GCSafePoint != nil {
		if safePoint = s.opts.GCSafePoint(); safePoint <= 0 {
			return 0, nil // not known yet: collect nothing
		}
	}
	debt := int64(r.gcDebt.Load()) // before the snapshot: later writes count for the next pass
	snap, desc, err := s.pinnedRead(r, nil, 0)
	if err != nil {
		return 0, err
	}
	defer snap.Close()
	var applied raftcmdpb.AppliedState
	if err := getProto(snap, keys.AppliedStateKey(r.tabletID), &applied); err != nil {
		return 0, err
	}
	if m := r.gcMark.Load(); m != nil && m.stillClean(s, applied.Index, safePoint) {
		s.metrics.gcSkipped.Inc()
		return 0, nil
	}
	lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	// User families age by the wall clock, as reads filter them (read.go).
	// Request-ID records age by the tablet's own HLC time, see dedupExpired.
	now := s.opts.WallClock().UnixMicro()
	// The scan is paced by what it reads (a clean tablet is read whole
	// and deletes nothing), and what it sees decides whether the next
	// pass may skip the tablet (gcskip.go).
	pacer := s.newScanPacer(ctx, admission.GC)
	defer func() { s.metrics.gcScannedBytes.WithLabelValues(why).Add(float64(pacer.read)) }()
	mark := &gcMark{index: applied.Index, safePoint: safePoint, debt: debt}
	var (
		garbage [][]byte
		// maskedBy, parallel to garbage: why each key is garbage
		// (GCCommand.masked_by), checked again when the command applies.
		maskedBy [][]byte
		dedup    int // records of dedupFamily in garbage
		deleted  int
		colKey   []byte
		versions int
		// colTS: timestamps of the current column's versions, newest
		// first; threshold: the history floor the garbage so far needs.
		colTS     []int64
		threshold int64
		// masking: the current column has a tombstone or a masking value
		// (cellvalue.MasksOlder) below the safe point, at maskTS; every
		// older version is garbage. deferred: the masking version's key
		// when it is garbage too; it goes after the versions it masks
		// (endColumn), so no GC command deletes it while one is still
		// there, with deferTh the history floor its removal needs.
		masking         bool
		maskTS, deferTh int64
		maskKey         []byte
		deferred        []byte
		deferredBy      []byte // maskedBy of deferred
		schema          *metapb.TableSchema
		policy          = map[string]*metapb.FamilySchema{}
		dropped         = map[string]bool{}
	)
	flush := func() error {
		if len(garbage) == 0 {
			return nil
		}
		if err := s.pace(ctx, admission.GC, keyBytes(garbage)); err != nil {
			return err
		}
		if k := s.opts.Knobs; k != nil && k.BeforeGCPropose != nil {
			k.BeforeGCPropose(r.tabletID)
		}
		_, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_Gc{Gc: &raftcmdpb.GCCommand{Keys: garbage, Threshold: threshold, MaskedBy: maskedBy}}})
		if err == nil {
			deleted += len(garbage)
			s.metrics.gcVersions.Add(float64(len(garbage) - dedup))
			s.metrics.gcDedup.Add(float64(dedup))
		}
		garbage, maskedBy, dedup, threshold = nil, nil, 0, 0
		return err
	}
	endColumn := func() error {
		d := deferred
		masking, deferred = false, nil
		if d == nil {
			return nil
		}
		garbage, threshold = append(garbage, d), max(threshold, deferTh)
		maskedBy = append(maskedBy, deferredBy)
		if len(garbage) >= gcBatchKeys {
			return flush()
		}
		return nil
	}
	check := s.newScanCheck(ctx)
	var dec keys.CellDecoder // the cells of a column share its decoded parts
	for it.First(); it.Valid(); it.Next() {
		// A pass over a big tablet with little garbage may not flush (and
		// so wait on ctx) for a long time: stop on shutdown anyway.
		if err := check.err(); err != nil {
			return deleted, err
		}
		if err := pacer.step(it); err != nil {
			return deleted, err
		}
		ck, err := keys.StripDataKey(it.Key())
		if err != nil {
			return deleted, err
		}
		c, err := dec.Decode(ck)
		if err != nil {
			return deleted, err
		}
		if schema == nil || schema.TableId != c.TableID {
			schema, _ = s.schema(c.TableID)
			mark.sawSchema(schema)
			clear(policy)
			clear(dropped)
			if schema != nil {
				for _, f := range schema.Families {
					policy[f.Name] = f
				}
				for _, f := range schema.DroppedFamilies {
					dropped[f] = true
				}
			}
		}
		// A cell key is its column's prefix and a timestamp.
		if col := ck[:len(ck)-keys.TimestampLen]; !bytes.Equal(col, colKey) {
			if err := endColumn(); err != nil {
				return deleted, err
			}
			colKey, versions, colTS = append(colKey[:0], col...), 0, colTS[:0]
		}
		versions++
		colTS = append(colTS, c.Timestamp)
		p := policy[c.Family]
		ts := c.Timestamp
		if c.Family == dedupFamily {
			if dedupExpired(it.Value(), applied.MaxTimestamp, s.opts.DedupRetention) {
				garbage, maskedBy = append(garbage, bytes.Clone(ck)), append(maskedBy, nil)
				dedup++
			}
			if len(garbage) >= gcBatchKeys {
				if err := flush(); err != nil {
					return deleted, err
				}
			}
			continue
		}
		if p == nil && !dropped[c.Family] {
			mark.unsure = true
			continue // unknown family: keep, the schema may not have arrived yet
		}
		if p != nil && p.MaxAgeMs > 0 {
			mark.ages = true
		}
		// A deleted family's cells all go (reads hide them already);
		// otherwise the family's policy decides, above the safe point.
		if !dropped[c.Family] {
			if masking {
				// Masked by a delete below the safe point: a read at or
				// above maskTS sees nothing of it either way, and reads
				// below maskTS are refused from now on.
				threshold = max(threshold, maskTS)
				garbage, maskedBy = append(garbage, bytes.Clone(ck)), append(maskedBy, maskKey)
				if len(garbage) >= gcBatchKeys {
					if err := flush(); err != nil {
						return deleted, err
					}
				}
				continue
			}
			if ts >= safePoint {
				// Kept, and not counted: a read at the safe point sees the
				// versions below it that the policy keeps.
				versions--
				mark.aboveSafePoint = true
				continue
			}
			if v := it.Value(); cellvalue.MasksOlder(v) {
				// Below the safe point, every read that may still run
				// sees this version or a newer one of the column: the
				// older ones are garbage, and so is a tombstone.
				masking, maskTS, deferTh = true, ts, ts
				maskKey = bytes.Clone(ck)
				if cellvalue.IsTombstone(v) {
					deferred, deferredBy = maskKey, maskKey
					continue
				}
			}
			tooMany := p.MaxVersions > 0 && versions > int(p.MaxVersions)
			if !tooMany && !(p.MaxAgeMs > 0 && ts < now-p.MaxAgeMs*1000) {
				continue
			}
			if tooMany {
				// A read at t < the timestamp of the MaxVersions-th newer
				// version still counts this one among its newest (read.go):
				// such reads are refused from now on. colTS holds every
				// version, those kept for the safe point too. Versions past
				// their max age are hidden from every read already.
				threshold = max(threshold, colTS[len(colTS)-int(p.MaxVersions)-1])
			}
			if masking {
				// A masking value the policy collects: after what it masks.
				deferred, deferredBy, deferTh = bytes.Clone(ck), nil, max(deferTh, threshold)
				continue
			}
		}
		garbage, maskedBy = append(garbage, bytes.Clone(ck)), append(maskedBy, nil)
		if len(garbage) >= gcBatchKeys {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
	}
	if err := it.Error(); err != nil {
		return deleted, err
	}
	if err := endColumn(); err != nil {
		return deleted, err
	}
	if err := flush(); err != nil {
		return deleted, err
	}
	mark.clean, mark.scanned = deleted == 0, pacer.read
	r.gcMark.Store(mark)
	return deleted, nil
}
