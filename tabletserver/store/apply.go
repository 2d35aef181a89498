package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// applyEntries evaluates committed entries into b and returns actions to run
// once b is committed (replying to callers, publishing descriptors). Worker
// only. Evaluation must be deterministic: it may read only b (the engine
// plus earlier writes of this batch) and the command itself.
func (r *replica) applyEntries(b *pebble.Batch, ents []raftpb.Entry, post []func()) []func() {
	for len(ents) > 0 {
		post, ents = r.applyUntilCheck(b, ents, post)
		r.dropPendingCheck()
	}
	return post
}

// applyUntilCheck is applyEntries that stops right after a consistency
// check's entry and returns the entries after it: the caller commits b
// there and snapshots the engine at exactly that log position
// (r.takePendingCheck, processReady).
func (r *replica) applyUntilCheck(b *pebble.Batch, ents []raftpb.Entry, post []func()) ([]func(), []raftpb.Entry) {
	if len(ents) == 0 || r.raw == nil {
		return post, nil
	}
	if r.blocked != nil {
		r.holdEntries(ents) // waiting for a staged file (staged.go)
		return post, nil
	}
	var rest []raftpb.Entry
	for i, e := range ents {
		if e.Index <= r.applied.Index {
			continue // already applied (restart re-delivers)
		}
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				post = r.applyCommand(b, e, post)
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			post = r.applyConfChange(b, e, post)
		}
		if r.blocked != nil {
			// This entry needs a staged file the replica lacks: it and
			// the rest wait, unapplied (staged.go).
			r.holdEntries(ents[i:])
			break
		}
		r.applied.Index, r.applied.Term = e.Index, e.Term
		r.s.metrics.entriesApplied.Inc()
		if r.raw == nil { // destroyed by this entry
			r.dropPendingCheck()
			return post, nil
		}
		if r.pendingCheck != nil {
			rest = ents[i+1:]
			break
		}
	}
	if err := setProto(b, keys.AppliedStateKey(r.tabletID), &r.applied); err != nil {
		r.s.fatal("write applied state", err, r)
	}
	applied, maxTS := r.applied.Index, r.applied.MaxTimestamp
	closed, floor := r.applied.ClosedTimestamp, r.applied.HistoryFloor
	return append(post, func() {
		r.mu.Lock()
		r.mu.applied = applied
		r.mu.floor = floor
		r.setClosedLocked(closed)
		r.mu.Unlock()
		r.storage.Applied(applied) // the batch is committed: uncache
		r.s.observeTimestamp(maxTS, r.tabletID)
		r.publishHealth()
	}), rest
}

func (r *replica) applyCommand(b *pebble.Batch, e raftpb.Entry, post []func()) []func() {
	var cmd raftcmdpb.RaftCommand
	if err := proto.Unmarshal(e.Data, &cmd); err != nil {
		r.s.fatal("decode raft command", err, r)
	}
	var (
		resp proto.Message
		err  error
	)
	r.adoptClosed(&cmd)
	// The commit timestamp strictly increases in log order, whatever the
	// proposer's clock said, and lies above the closed timestamp.
	ts := max(cmd.Timestamp, r.applied.MaxTimestamp+1, r.applied.ClosedTimestamp+1)
	desc := r.appliedDesc
	ev := evaluator{b: b, desc: desc, ts: ts, maxAgeMs: cmd.FamilyMaxAgeMs, maxValueBytes: cmd.MaxValueBytes, bound: newApplyBound(&cmd), closed: r.applied.ClosedTimestamp}
	if r.applied.MergingInto != 0 && isDataOrSplit(&cmd) {
		err = errs.ServerBusy(fmt.Sprintf("tablet %d is being merged into tablet %d", r.tabletID, r.applied.MergingInto), 200)
		cmd.Cmd = nil
	}
	switch c := cmd.Cmd.(type) {
	case nil:
	case *raftcmdpb.RaftCommand_MutateRow:
		resp, err = ev.mutateRow(c.MutateRow)
	case *raftcmdpb.RaftCommand_CheckAndMutateRow:
		resp, err = ev.checkAndMutate(c.CheckAndMutateRow)
	case *raftcmdpb.RaftCommand_ReadModifyWriteRow:
		resp, err = ev.readModifyWrite(c.ReadModifyWriteRow)
	case *raftcmdpb.RaftCommand_BatchMutate:
		resp, err = ev.batchMutate(c.BatchMutate)
	case *raftcmdpb.RaftCommand_Gc:
		err = ev.gc(c.Gc)
	case *raftcmdpb.RaftCommand_ClearRange:
		err = ev.clearRange(c.ClearRange)
	case *raftcmdpb.RaftCommand_Split:
		resp, post, err = r.applySplit(b, &cmd, []*raftcmdpb.SplitCommand{c.Split}, post)
	case *raftcmdpb.RaftCommand_BatchSplit:
		resp, post, err = r.applySplit(b, &cmd, c.BatchSplit.GetSplits(), post)
	case *raftcmdpb.RaftCommand_PrepareMerge:
		resp, err = r.applyPrepareMerge(&cmd, c.PrepareMerge, e.Index)
	case *raftcmdpb.RaftCommand_CommitMerge:
		resp, post, err = r.applyCommitMerge(b, &cmd, c.CommitMerge, post)
	case *raftcmdpb.RaftCommand_RollbackMerge:
		r.applyRollbackMerge()
	case *raftcmdpb.RaftCommand_ComputeChecksum:
		r.pendingCheck = &checksumTask{r: r, cmd: c.ComputeChecksum, index: e.Index, desc: desc}
	case *raftcmdpb.RaftCommand_MarkBadReplicas:
		r.applyMarkBad(c.MarkBadReplicas)
	case *raftcmdpb.RaftCommand_IngestSst:
		if err = ev.bound.check(c.IngestSst.MaxTimestamp); err != nil {
			break
		}
		resp, post, err = r.applyIngest(b, e, &cmd, c.IngestSst, post)
		if r.blocked != nil {
			return post // not applied yet: the proposal waits too
		}
		if err == nil {
			// Later writes must order after every imported cell.
			ev.wrote, ts = true, max(ts, c.IngestSst.MaxTimestamp)
			// Imported cells may lie at any timestamp: reads before
			// the ingest could not have seen them.
			ev.floor = ts
		}
	default:
		err = errs.InvalidArgument("unknown raft command")
	}
	if ev.floor > r.applied.HistoryFloor {
		r.applied.HistoryFloor = ev.floor
	}
	if ev.corrupt != nil || isCorruption(err) {
		// This replica's answer may differ from its peers': it must never
		// serve again (the results are still delivered, as errors).
		r.s.markReplicaBad(r, errors.Join(ev.corrupt, err))
		if err == nil {
			err = r.refuseIfBad()
		}
	}
	if ev.wrote {
		r.applied.MaxTimestamp = ts
		r.load.addUnflushed(r.s.flushEpoch.Load(), uint64(len(e.Data)))
		if cmd.GetIngestSst() == nil {
			// Ingests are not counted: an import mostly fills empty
			// ranges, and counting it had GC reread every imported
			// tablet each round of the import to find nothing
			// (gcskip.go).
			r.gcDebt.Add(uint64(len(e.Data)))
		}
	}
	if p := r.takeProposal(cmd.ProposalId, cmd.Proposer); p != nil {
		// Committed: a quorum acknowledged it after it was proposed.
		r.renewLease(p.proposed, e.Index)
		res := applyResult{resp: resp, err: err}
		if !metrics.Enabled() {
			post = append(post, func() { p.finish(res) })
			return post
		}
		// Committed entries are evaluated in the pass that learns of the
		// commit; the post actions run once the apply batch is written.
		clock := r.s.opts.Clock
		r.s.metrics.proposalCommit.Observe(clock.Now().Sub(p.proposed).Seconds())
		apply := r.s.metrics.proposalApply
		post = append(post, func() {
			apply.Observe(clock.Now().Sub(p.proposed).Seconds())
			p.finish(res)
		})
	}
	return post
}

// dedupFamily is a hidden column family holding, in each row, the
// responses to recent requests that carried a RequestID: qualifier =
// dedupQualifier, value = the marshalled response. Because it is part of
// the row it moves with the row through splits, merges and snapshots. User
// family names cannot start with 0x00, and it sorts before every user
// family, so a whole-row delete can skip it.
const dedupFamily = "\x00rid"

// dedupQualifier names the record of one entry of a request: client_id|seq,
// followed by client_id_hi|index unless both are 0 (the layout records had
// before 128-bit client IDs and batch entry indexes, which it still
// matches). Every bit of the ID and the index is in it: two entries of one
// batch for the same row have their own records.
func dedupQualifier(id *kvpb.RequestID, index uint32) []byte {
	q := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 28), id.ClientId), id.Seq)
	if id.ClientIdHi != 0 || index != 0 {
		q = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(q, id.ClientIdHi), index)
	}
	return q
}

func hasRequestID(id *kvpb.RequestID) bool {
	return id != nil && (id.ClientId != 0 || id.ClientIdHi != 0)
}

// dedupKey is the engine key of a request ID's record. Unlike user cells it
// has one fixed version (timestamp 0): a retry looks it up with a point Get,
// which Pebble's bloom filters answer without touching most SSTs — nearly
// every lookup is for a request that was never seen. The record's age lives
// in its value (see dedupRecord), where version GC reads it.
func dedupKey(tableID uint64, row []byte, id *kvpb.RequestID, index uint32) []byte {
	return keys.DataKey(keys.CellKey(tableID, row, dedupFamily, dedupQualifier(id, index), 0))
}

// dedupRecord is the value of a request ID's record: the big-endian apply
// timestamp (HLC micros) followed by the marshalled response.
func dedupRecord(ts int64, resp []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(resp)), uint64(ts)), resp...)
}

// dedupRecordTime returns the apply timestamp stored in a dedup record.
func dedupRecordTime(v []byte) (int64, bool) {
	if len(v) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v)), true
}

// seen returns the stored response of an already applied request.
func (ev *evaluator) seen(tableID uint64, row []byte, id *kvpb.RequestID, index uint32, into proto.Message) (bool, error) {
	if !hasRequestID(id) {
		return false, nil
	}
	v, found, err := getLikelyAbsent(ev.b, dedupKey(tableID, row, id, index))
	if err != nil || !found {
		return false, ev.noteRead(err)
	}
	if len(v) < 8 {
		return false, fmt.Errorf("store: corrupt request-ID record for table %d (%d bytes)", tableID, len(v))
	}
	return true, proto.Unmarshal(v[8:], into)
}

// getLikelyAbsent reads key, which is almost never there (a request ID's
// record: every write looks one up), consulting the bloom filter of every
// level. A plain Get skips the filters of L6, where most data lives
// (Pebble's default, since L6 filters are large), so each lookup read the
// row's data block from disk, on the raft worker, on every replica, for
// every write; during an import, with the block cache churned, that was 7%
// of the store's CPU (docs/performance.md). With the filters, an absent
// record costs a filter probe.
func getLikelyAbsent(r pebble.Reader, key []byte) (value []byte, found bool, err error) {
	it, err := r.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	if !it.SeekPrefixGE(key) || !bytes.Equal(it.Key(), key) {
		return nil, false, it.Error()
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, false, err
	}
	return bytes.Clone(v), true, nil
}

// remember stores a response for a request ID, in the same batch as the
// request's writes.
func (ev *evaluator) remember(tableID uint64, row []byte, id *kvpb.RequestID, index uint32, resp proto.Message) error {
	if !hasRequestID(id) {
		return nil
	}
	v, err := proto.Marshal(resp)
	if err != nil {
		return err
	}
	ev.wrote = true
	return ev.b.Set(dedupKey(tableID, row, id, index), dedupRecord(ev.ts, v), nil)
}

// isDataOrSplit reports commands a frozen (merging) tablet must refuse.
func isDataOrSplit(cmd *raftcmdpb.RaftCommand) bool {
	switch cmd.Cmd.(type) {
	case *raftcmdpb.RaftCommand_PrepareMerge, *raftcmdpb.RaftCommand_RollbackMerge,
		// Checks read, verdicts mark replicas: a frozen tablet takes both.
		*raftcmdpb.RaftCommand_ComputeChecksum, *raftcmdpb.RaftCommand_MarkBadReplicas:
		return false
	}
	return true
}

// evaluator turns one command into writes on b. Every command first plans
// all its writes and only then applies them, so a failing command writes
// nothing.
type evaluator struct {
	b             *pebble.Batch
	desc          *metapb.TabletDescriptor
	ts            int64
	maxAgeMs      map[string]int64
	maxValueBytes int64
	bound         applyBound // client-chosen timestamps allowed
	wrote         bool
	// closed is the tablet's closed timestamp; floor, if set, the history
	// floor this command raises the tablet's to (AppliedState).
	closed, floor int64
	// corrupt is the first corruption error a read of the engine hit.
	corrupt error
	// tombs and collapsed: what planMutations planned of deletes so far
	// in this command, across a batch's entries.
	tombs, collapsed map[string]bool
}

// noteRead remembers a corruption error from an engine read.
func (ev *evaluator) noteRead(err error) error {
	if ev.corrupt == nil && isCorruption(err) {
		ev.corrupt = err
	}
	return err
}

type write struct {
	key, value []byte // value: the engine value (cellvalue envelope)
	rangeEnd   []byte // non-nil: DeleteRange [key, rangeEnd)
	del        bool
	// rewrites: the write changes what reads below the commit timestamp
	// see (a time-range delete removes versions physically; a cell at an
	// explicit timestamp at or below the closed timestamp appears in
	// closed history), so it raises the history floor to the commit
	// timestamp. Other deletes write tombstones and leave history alone.
	rewrites bool
}

func (ev *evaluator) checkRow(tableID uint64, row []byte) error {
	if k := keys.RowKey(tableID, row); !containsKey(ev.desc, k) {
		return errs.KeyNotInTablet(k, ev.desc)
	}
	return nil
}

func (ev *evaluator) commit(ws []write) error {
	for _, w := range ws {
		var err error
		switch {
		case w.rangeEnd != nil:
			err = ev.b.DeleteRange(w.key, w.rangeEnd, nil)
		case w.del:
			err = ev.b.Delete(w.key, nil)
		default:
			err = ev.b.Set(w.key, w.value, nil)
		}
		if err != nil {
			return err
		}
		ev.wrote = true
		if w.rewrites {
			ev.floor = max(ev.floor, ev.ts)
		}
	}
	return nil
}

// cellValue decodes a user cell's engine value and checks its CRC. A value
// that fails either is corrupt data (isCorruption), like a bad block.
func cellValue(k, v []byte) (payload []byte, tombstone bool, err error) {
	payload, _, tombstone, err = cellvalue.DecodeVerified(v)
	if err != nil {
		return nil, false, fmt.Errorf("store: cell %x: %w (%w)", k, err, pebble.ErrCorruption)
	}
	return payload, tombstone, nil
}

// tombstoneAt is the write of a tombstone of one column at ts.
func tombstoneAt(c keys.Cell, ts int64) write {
	return write{key: keys.DataKey(keys.CellKey(c.TableID, c.Row, c.Family, c.Qualifier, ts)), value: cellvalue.Tombstone()}
}

// planDeleteColumns plans a delete of every column in the cell-key span
// [lo, hi) of one row (a column, a family or the row): a tombstone at the
// commit timestamp for each column whose newest version at or below it is
// a value, as CockroachDB writes one per key. Versions above the commit
// timestamp (written with explicit future timestamps) are removed
// physically, as before tombstones, which raises the history floor; that
// takes a client-chosen timestamp. Cells planned earlier in the same
// command (ws) are deleted too: they are not in the batch yet. The work
// is bounded by the row: one seek per column.
func (ev *evaluator) planDeleteColumns(ws []write, lo, hi []byte) ([]write, error) {
	dlo, dhi := keys.DataKey(lo), keys.DataKey(hi)
	earlier := len(ws)
	it, err := ev.b.NewIter(&pebble.IterOptions{LowerBound: dlo, UpperBound: dhi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var dec keys.CellDecoder
	for valid := it.First(); valid; {
		c, err := decodeDataKey(&dec, it.Key())
		if err != nil {
			return nil, err
		}
		if c.Timestamp > ev.ts {
			ws = append(ws, write{key: bytes.Clone(it.Key()), del: true, rewrites: true})
			valid = it.Next()
			continue
		}
		if !cellvalue.IsTombstone(it.Value()) {
			ws = append(ws, tombstoneAt(c, ev.ts))
		}
		valid = it.SeekGE(keys.DataKey(keys.PrefixEnd(keys.ColumnPrefix(c.TableID, c.Row, c.Family, c.Qualifier))))
	}
	if err := it.Error(); err != nil {
		return nil, ev.noteRead(err)
	}
	for _, w := range ws[:earlier] {
		if w.del || w.rangeEnd != nil || cellvalue.IsTombstone(w.value) || bytes.Compare(w.key, dlo) < 0 || bytes.Compare(w.key, dhi) >= 0 {
			continue
		}
		c, err := decodeDataKey(&dec, w.key)
		if err != nil {
			return nil, err
		}
		if c.Timestamp > ev.ts {
			ws = append(ws, write{key: w.key, del: true})
		} else {
			ws = append(ws, tombstoneAt(c, ev.ts))
		}
	}
	return ws, nil
}

// planDeleteVersions plans a delete of the versions of one column in the
// cell-key span [lo, hi) (a time range): physical, so it raises the
// history floor (docs/limits.md). The deletes in the span stay: a
// tombstone, or a masking value (cellvalue.EncodeMasking) turned into a
// tombstone, is written again after the range deletion, as removing it
// would bring back the versions an earlier delete deleted.
func (ev *evaluator) planDeleteVersions(ws []write, lo, hi []byte) ([]write, error) {
	dlo, dhi := keys.DataKey(lo), keys.DataKey(hi)
	earlier := len(ws)
	ws = append(ws, write{key: dlo, rangeEnd: dhi, rewrites: true})
	it, err := ev.b.NewIter(&pebble.IterOptions{LowerBound: dlo, UpperBound: dhi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if cellvalue.MasksOlder(it.Value()) {
			ws = append(ws, write{key: bytes.Clone(it.Key()), value: cellvalue.Tombstone()})
		}
	}
	if err := it.Error(); err != nil {
		return nil, ev.noteRead(err)
	}
	for _, w := range ws[:earlier] {
		if !w.del && w.rangeEnd == nil && cellvalue.MasksOlder(w.value) && bytes.Compare(w.key, dlo) >= 0 && bytes.Compare(w.key, dhi) < 0 {
			ws = append(ws, write{key: w.key, value: cellvalue.Tombstone()})
		}
	}
	return ws, nil
}

// planMutations converts mutations of one row into writes at ev.ts.
func (ev *evaluator) planMutations(tableID uint64, row []byte, muts []*kvpb.Mutation) ([]write, error) {
	ws := make([]write, 0, len(muts))
	// tombs: keys of the tombstones this command planned so far, across
	// the entries of a batch (a later entry's put at the same timestamp
	// replaces one, and must mask older versions as it did); collapsed:
	// deletes it already made physical (each once: a second range deletion
	// would remove puts planned since). kvnemesis seed 1690922345907278596.
	if ev.tombs == nil {
		ev.tombs, ev.collapsed = map[string]bool{}, map[string]bool{}
	}
	tombs, collapsed := ev.tombs, ev.collapsed
	for _, m := range muts {
		before := len(ws)
		switch x := m.Mutation.(type) {
		case *kvpb.Mutation_SetCell_:
			c := x.SetCell
			if err := ev.bound.check(c.Timestamp); err != nil {
				return nil, err
			}
			if err := checkCellSum(ev.desc.GetTabletId(), 0, row, c, "at apply"); err != nil {
				return nil, err // the same verdict on every replica that sees it (cellsum.go)
			}
			cts := c.Timestamp
			if cts <= 0 {
				cts = ev.ts
			}
			w := write{key: keys.DataKey(keys.CellKey(tableID, row, c.Family, c.Qualifier, cts)), value: cellvalue.Encode(c.Value), rewrites: c.Timestamp > 0 && c.Timestamp <= ev.closed}
			if c.Timestamp > 0 {
				var err error
				if ws, err = ev.collapseDeletesAbove(ws, keys.Cell{TableID: tableID, Row: row, Family: c.Family, Qualifier: c.Qualifier, Timestamp: cts}, tombs, collapsed); err != nil {
					return nil, err
				}
			}
			masks, err := ev.replacesDelete(w.key, c.Timestamp > 0, tombs)
			if err != nil {
				return nil, err
			}
			if masks {
				w.value = cellvalue.AsMasking(w.value)
			}
			ws = append(ws, w)
			continue
		case *kvpb.Mutation_DeleteFromColumn_:
			c := x.DeleteFromColumn
			col := keys.ColumnPrefix(tableID, row, c.Family, c.Qualifier)
			lo, hi := col, keys.PrefixEnd(col)
			var err error
			if tr := c.TimeRange; tr == nil || (tr.StartTs <= 0 && tr.EndTs <= 0) {
				ws, err = ev.planDeleteColumns(ws, lo, hi)
			} else {
				// Versions sort newest first: [end-1 ... start].
				if tr.EndTs > 0 {
					lo = keys.CellKey(tableID, row, c.Family, c.Qualifier, tr.EndTs-1)
				}
				if tr.StartTs > 0 {
					hi = keys.CellKey(tableID, row, c.Family, c.Qualifier, tr.StartTs-1)
				}
				if bytes.Compare(lo, hi) < 0 {
					ws, err = ev.planDeleteVersions(ws, lo, hi)
				}
			}
			if err != nil {
				return nil, err
			}
		case *kvpb.Mutation_DeleteFromFamily_:
			p := keys.FamilyPrefix(tableID, row, x.DeleteFromFamily.Family)
			var err error
			if ws, err = ev.planDeleteColumns(ws, p, keys.PrefixEnd(p)); err != nil {
				return nil, err
			}
		case *kvpb.Mutation_DeleteFromRow_:
			// Everything but the hidden request-ID records, which sort
			// first in the row.
			p := keys.RowKey(tableID, row)
			var err error
			if ws, err = ev.planDeleteColumns(ws, keys.PrefixEnd(keys.FamilyPrefix(tableID, row, dedupFamily)), keys.PrefixEnd(p)); err != nil {
				return nil, err
			}
		default:
			return nil, errs.InvalidArgument("empty mutation")
		}
		for _, w := range ws[before:] {
			if !w.del && w.rangeEnd == nil && cellvalue.IsTombstone(w.value) {
				// A new delete: a put below it must make it physical
				// again, even where an earlier put collapsed the one
				// before (kvnemesis seed 15940634145521198469).
				tombs[string(w.key)] = true
				delete(collapsed, string(w.key))
			}
		}
	}
	return ws, nil
}

// collapseDeletesAbove prepares a put at a client-chosen timestamp cts
// below a delete of its column (col): as when deletes were physical, the
// put must be visible, but a tombstone above it would hide it. The newest
// delete above c.Timestamp (a tombstone or a masking value, stored or planned
// earlier in the command) is made physical: it and every older version
// are removed and a masking value is written back as a plain value.
// Reads below the commit timestamp may have seen what this removes, so it
// raises the history floor, like any write below the closed timestamp.
// Rare: clients seldom write below their own deletes. A delete already
// made physical by an earlier put of this command (collapsed) is not
// removed again: everything below it already is, and a second range
// deletion would remove that earlier put too (kvnemesis seed
// 1690922345907278596: two puts at chosen timestamps in one command kept
// only the second).
func (ev *evaluator) collapseDeletesAbove(ws []write, c keys.Cell, tombs, collapsed map[string]bool) ([]write, error) {
	col := keys.ColumnPrefix(c.TableID, c.Row, c.Family, c.Qualifier)
	var maskKey, maskValue []byte // the newest delete above c.Timestamp
	if c.Timestamp < ev.ts {
		k := keys.DataKey(keys.CellKey(c.TableID, c.Row, c.Family, c.Qualifier, ev.ts))
		if tombs[string(k)] {
			maskKey = k
			for i := len(ws) - 1; i >= 0; i-- { // a put after the delete, in this entry?
				if w := ws[i]; w.rangeEnd == nil && !w.del && bytes.Equal(w.key, k) {
					maskValue = w.value
					break
				}
			}
			if maskValue == nil {
				// Planned by an earlier entry of the batch, and already in
				// the batch: the tombstone, or a put that replaced it.
				v, closer, err := ev.b.Get(k)
				if err != nil && !errors.Is(err, pebble.ErrNotFound) {
					return nil, ev.noteRead(err)
				}
				if err == nil {
					maskValue = bytes.Clone(v)
					closer.Close()
				}
			}
		}
	}
	if maskKey == nil {
		dcol := keys.DataKey(col)
		it, err := ev.b.NewIter(&pebble.IterOptions{LowerBound: dcol, UpperBound: keys.DataKey(keys.CellKey(c.TableID, c.Row, c.Family, c.Qualifier, c.Timestamp))})
		if err != nil {
			return nil, err
		}
		for valid := it.First(); valid; valid = it.Next() {
			if v := it.Value(); cellvalue.MasksOlder(v) {
				maskKey, maskValue = bytes.Clone(it.Key()), bytes.Clone(v)
				break
			}
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return nil, ev.noteRead(err)
		}
	}
	if maskKey == nil || collapsed[string(maskKey)] {
		return ws, nil
	}
	collapsed[string(maskKey)] = true
	ws = append(ws, write{key: maskKey, rangeEnd: keys.DataKey(keys.PrefixEnd(col)), rewrites: true})
	if maskValue != nil && !cellvalue.IsTombstone(maskValue) {
		x, err := cellvalue.Decode(maskValue)
		if err != nil {
			return nil, ev.noteRead(fmt.Errorf("store: cell %x: %w (%w)", maskKey, err, pebble.ErrCorruption))
		}
		ws = append(ws, write{key: maskKey, value: cellvalue.AppendWithCRC(nil, x.Payload, x.CRC)})
	}
	delete(tombs, string(maskKey))
	return ws, nil
}

// replacesDelete reports whether a put at engine key k lands on a delete
// of its column at the same timestamp: a tombstone planned earlier in the
// command (tombs) or, for a client-chosen timestamp, one stored. The put
// then masks older versions itself (cellvalue.EncodeMasking), or it would
// bring back what the delete deleted.
func (ev *evaluator) replacesDelete(k []byte, explicitTS bool, tombs map[string]bool) (bool, error) {
	if tombs[string(k)] {
		return true, nil
	}
	if !explicitTS {
		return false, nil // the commit timestamp is above every earlier command's
	}
	v, closer, err := ev.b.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, ev.noteRead(err)
	}
	defer closer.Close()
	return cellvalue.MasksOlder(v), nil
}

func (ev *evaluator) mutateRow(req *kvpb.MutateRowRequest) (proto.Message, error) {
	if err := ev.checkRow(req.TableId, req.RowKey); err != nil {
		return nil, err
	}
	prev := &kvpb.MutateRowResponse{}
	if ok, err := ev.seen(req.TableId, req.RowKey, req.RequestId, 0, prev); ok || err != nil {
		return prev, err
	}
	ws, err := ev.planMutations(req.TableId, req.RowKey, req.Mutations)
	if err != nil {
		return nil, err
	}
	if err := ev.commit(ws); err != nil {
		return nil, err
	}
	resp := &kvpb.MutateRowResponse{Timestamp: ev.ts}
	return resp, ev.remember(req.TableId, req.RowKey, req.RequestId, 0, resp)
}

// newestCell reads the newest version of a column as of this batch. A
// tombstone, or a version older than the family's max age (measured from
// the command's timestamp, so every replica agrees), counts as absent, as
// it does for reads; ts is still its timestamp.
func (ev *evaluator) newestCell(tableID uint64, row []byte, family string, qualifier []byte) (value []byte, ts int64, found bool, err error) {
	col := keys.ColumnPrefix(tableID, row, family, qualifier)
	it, err := ev.b.NewIter(&pebble.IterOptions{LowerBound: keys.DataKey(col), UpperBound: keys.DataKey(keys.PrefixEnd(col))})
	if err != nil {
		return nil, 0, false, err
	}
	defer it.Close()
	if !it.First() {
		return nil, 0, false, ev.noteRead(it.Error())
	}
	var dec keys.CellDecoder
	c, err := decodeDataKey(&dec, it.Key())
	if err != nil {
		return nil, 0, false, err
	}
	payload, tombstone, err := cellValue(it.Key(), it.Value())
	if err != nil {
		return nil, 0, false, ev.noteRead(err)
	}
	if tombstone {
		return nil, c.Timestamp, false, nil
	}
	if age := ev.maxAgeMs[family]; age > 0 && c.Timestamp < ev.ts-age*1000 {
		return nil, c.Timestamp, false, nil
	}
	return bytes.Clone(payload), c.Timestamp, true, nil
}

func conditionHolds(c *kvpb.Condition, value []byte, found bool) bool {
	switch c.Op {
	case kvpb.Condition_EXISTS:
		return found
	case kvpb.Condition_NOT_EXISTS:
		return !found
	}
	if !found {
		return false
	}
	cmp := bytes.Compare(value, c.Value)
	switch c.Op {
	case kvpb.Condition_EQUAL:
		return cmp == 0
	case kvpb.Condition_NOT_EQUAL:
		return cmp != 0
	case kvpb.Condition_LESS:
		return cmp < 0
	case kvpb.Condition_LESS_OR_EQUAL:
		return cmp <= 0
	case kvpb.Condition_GREATER:
		return cmp > 0
	case kvpb.Condition_GREATER_OR_EQUAL:
		return cmp >= 0
	}
	return false
}

func (ev *evaluator) checkAndMutate(req *kvpb.CheckAndMutateRowRequest) (proto.Message, error) {
	if err := ev.checkRow(req.TableId, req.RowKey); err != nil {
		return nil, err
	}
	prev := &kvpb.CheckAndMutateRowResponse{}
	if ok, err := ev.seen(req.TableId, req.RowKey, req.RequestId, 0, prev); ok || err != nil {
		return prev, err
	}
	c := req.Condition
	v, _, found, err := ev.newestCell(req.TableId, req.RowKey, c.Family, c.Qualifier)
	if err != nil {
		return nil, err
	}
	matched := conditionHolds(c, v, found)
	muts := req.FalseMutations
	if matched {
		muts = req.TrueMutations
	}
	ws, err := ev.planMutations(req.TableId, req.RowKey, muts)
	if err != nil {
		return nil, err
	}
	if err := ev.commit(ws); err != nil {
		return nil, err
	}
	resp := &kvpb.CheckAndMutateRowResponse{PredicateMatched: matched, Timestamp: ev.ts}
	return resp, ev.remember(req.TableId, req.RowKey, req.RequestId, 0, resp)
}

// errNotInt64 is returned for an increment of a cell that is not 8 bytes.
var errNotInt64 = errors.New("cell is not a 64-bit big-endian integer")

func (ev *evaluator) readModifyWrite(req *kvpb.ReadModifyWriteRowRequest) (proto.Message, error) {
	if err := ev.checkRow(req.TableId, req.RowKey); err != nil {
		return nil, err
	}
	prev := &kvpb.ReadModifyWriteRowResponse{}
	if ok, err := ev.seen(req.TableId, req.RowKey, req.RequestId, 0, prev); ok || err != nil {
		return prev, err
	}
	type col struct{ family, qualifier string }
	type cell struct {
		value []byte
		ts    int64
	}
	current := map[col]cell{}
	var order []col
	for _, rule := range req.Rules {
		k := col{rule.Family, string(rule.Qualifier)}
		cur, ok := current[k]
		if !ok {
			v, ts, _, err := ev.newestCell(req.TableId, req.RowKey, rule.Family, rule.Qualifier)
			if err != nil {
				return nil, err
			}
			// The new version must sort above every stored one, even one
			// a client wrote with a future timestamp, or reads would not
			// see it (HBase does the same).
			cur = cell{value: v, ts: max(ev.ts, ts+1)}
			order = append(order, k)
		}
		v := cur.value
		switch x := rule.Rule.(type) {
		case *kvpb.ReadModifyWriteRule_AppendValue:
			v = append(bytes.Clone(v), x.AppendValue...)
		case *kvpb.ReadModifyWriteRule_IncrementAmount:
			var n int64
			switch len(v) {
			case 0:
			case 8:
				n = int64(binary.BigEndian.Uint64(v))
			default:
				return nil, errs.InvalidArgument("increment %s:%q: %v (it has %d bytes)", rule.Family, rule.Qualifier, errNotInt64, len(v))
			}
			v = binary.BigEndian.AppendUint64(nil, uint64(n+x.IncrementAmount))
		default:
			return nil, errs.InvalidArgument("empty read-modify-write rule")
		}
		if ev.maxValueBytes > 0 && int64(len(v)) > ev.maxValueBytes {
			return nil, errs.InvalidArgument("value of %s:%q would be %d bytes; the limit is %d", rule.Family, rule.Qualifier, len(v), ev.maxValueBytes)
		}
		cur.value = v
		current[k] = cur
	}
	row := &kvpb.Row{Key: req.RowKey}
	ws := make([]write, 0, len(order))
	for _, k := range order {
		c := current[k]
		ws = append(ws, write{key: keys.DataKey(keys.CellKey(req.TableId, req.RowKey, k.family, []byte(k.qualifier), c.ts)), value: cellvalue.Encode(c.value)})
		row.Cells = append(row.Cells, &kvpb.Cell{Family: k.family, Qualifier: []byte(k.qualifier), Timestamp: c.ts, Value: c.value})
	}
	if err := ev.commit(ws); err != nil {
		return nil, err
	}
	resp := &kvpb.ReadModifyWriteRowResponse{Row: row}
	return resp, ev.remember(req.TableId, req.RowKey, req.RequestId, 0, resp)
}

func (ev *evaluator) batchMutate(req *kvpb.BatchMutateRequest) (proto.Message, error) {
	resp := &kvpb.BatchMutateResponse{Results: make([]*kvpb.BatchMutateResponse_Result, len(req.Entries))}
	for i, e := range req.Entries {
		res := &kvpb.BatchMutateResponse_Result{}
		resp.Results[i] = res
		if err := ev.checkRow(req.TableId, e.RowKey); err != nil {
			res.Error = errs.ToProto(err)
			continue
		}
		// Per entry, a retried batch returns what the entry's first
		// application returned. Entries of one row apply in order, each
		// seeing the writes of those before it in this batch.
		if ok, err := ev.seen(req.TableId, e.RowKey, req.RequestId, e.Index, res); ok || err != nil {
			if err != nil {
				res.Error = errs.ToProto(err)
			}
			continue
		}
		ws, err := ev.planMutations(req.TableId, e.RowKey, e.Mutations)
		if err == nil {
			err = ev.commit(ws)
		}
		if err != nil {
			res.Error = errs.ToProto(err)
			continue
		}
		res.Timestamp = ev.ts
		if err := ev.remember(req.TableId, e.RowKey, req.RequestId, e.Index, res); err != nil {
			res.Error = errs.ToProto(err)
		}
	}
	return resp, nil
}

// gc deletes versions the leader found to be garbage. Keys outside the
// tablet (it split since) are skipped; their new owner collects them.
func (ev *evaluator) gc(c *raftcmdpb.GCCommand) error {
	ev.floor = max(ev.floor, c.Threshold)
	checked := len(c.MaskedBy) == len(c.Keys)
	for i, k := range c.Keys {
		if !containsDataKey(ev.desc, k) {
			continue
		}
		if checked {
			if ok, err := ev.stillMasked(k, c.MaskedBy[i]); err != nil || !ok {
				if err != nil {
					return err
				}
				continue // written again since the leader's snapshot
			}
		}
		if err := ev.b.Delete(keys.DataKey(k), nil); err != nil {
			return err
		}
	}
	return nil
}

// stillMasked reports whether a key a GC command deletes is still garbage
// for the reason the leader found in its snapshot (GCCommand.masked_by):
// the delete that hid it still masks older versions, or, for the
// tombstone itself (by == k), it is still a tombstone. A put at a
// client-chosen timestamp below the delete may have made it physical and
// written k again since (kvnemesis soak seed 15940634145521198469). No
// reason (by empty): policy garbage, which stays garbage.
func (ev *evaluator) stillMasked(k, by []byte) (bool, error) {
	if len(by) == 0 {
		return true, nil
	}
	v, closer, err := ev.b.Get(keys.DataKey(by))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, ev.noteRead(err)
	}
	defer closer.Close()
	if bytes.Equal(by, k) {
		return cellvalue.IsTombstone(v), nil
	}
	return cellvalue.MasksOlder(v), nil
}

// clearRange deletes the part of [start, end) that lies in the tablet.
func (ev *evaluator) clearRange(c *raftcmdpb.ClearRangeCommand) error {
	lo, hi := c.Start, c.End
	if bytes.Compare(lo, ev.desc.StartKey) < 0 {
		lo = ev.desc.StartKey
	}
	if len(ev.desc.EndKey) > 0 && (len(hi) == 0 || bytes.Compare(hi, ev.desc.EndKey) > 0) {
		hi = ev.desc.EndKey
	}
	if len(hi) > 0 && bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	dlo, dhi := keys.DataSpan(lo, hi)
	ev.wrote = true
	ev.floor = max(ev.floor, ev.ts)
	return ev.b.DeleteRange(dlo, dhi, nil)
}

// containsDataKey reports whether a cell key (without the data prefix)
// belongs to desc.
func containsDataKey(desc *metapb.TabletDescriptor, k []byte) bool {
	row, err := keys.RowPrefix(k)
	return err == nil && containsKey(desc, row)
}
