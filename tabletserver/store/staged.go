package store

// Staged ingest files and the entries that name them (docs/decisions.md,
// "Staged ingest files").
//
//   - A staged file is never deleted while an unapplied entry in a local
//     raft log (or held by a replica waiting for a file) names it: the
//     sweep pins those (pinnedStaged).
//   - After a replica ingests a file by reference it keeps the file under
//     <sum>.ingested (a hard link: pebble linked it into the engine, so it
//     costs no space until a compaction rewrites the table) until the
//     sweep, so that a peer that lacks the file can fetch it; a disk-full
//     store drops those first.
//   - A replica that must apply a by-reference entry whose file it lacks
//     (lost, swept while it was down, never uploaded) does not stop the
//     process: it stops applying at that entry, keeps the later committed
//     entries in memory (raft goes on: it still votes, appends and
//     acknowledges, so the group keeps its quorum), refuses reads and
//     writes with NotLeader (its state is behind its log), and fetches the
//     file from a peer (FetchStagedSST), checked against the entry's
//     checksum; then it applies the held entries. A restart meanwhile
//     re-delivers them from the log (the applied state stops before the
//     entry). If no peer has the file any more, the replica keeps asking;
//     PD sees it as a down replica (it reports no progress) and replaces it
//     with a snapshot-fed one.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// keptPath is where a replica keeps a file it ingested by reference, for
// peers that may still need it.
func (st *ingestState) keptPath(sum []byte) string {
	return filepath.Join(st.dir, hex.EncodeToString(sum)+".ingested")
}

// blockedApply is a replica stopped at a by-reference ingest entry: its
// file is missing (the replica fetches it) or the engine is ingesting it
// off the worker (ingestAsync). Worker-owned (replica.blocked).
type blockedApply struct {
	index    uint64
	checksum []byte
	size     uint64
	// held are the committed entries from the blocked one on, to apply
	// once the file is here (or ingested).
	held []raftpb.Entry
	// ingesting is closed when the ingest in flight ends, started when it
	// began; nil while the file is missing.
	ingesting chan struct{}
	started   time.Time
}

// ingestAsync ingests entry e's staged file at path off the worker (the
// hash and the engine's ingest take tens of milliseconds, and the worker
// serves every tablet of the store). Until it ends the replica applies
// nothing more: it holds its later committed entries, as while a file is
// missing, but it goes on serving (its state is simply the one before the
// entry, and nothing the entry or later ones wrote has been acknowledged).
// Then the worker applies the entry again (applyIngest finds r.ingested)
// and the held ones. Worker only.
func (r *replica) ingestAsync(e raftpb.Entry, c *raftcmdpb.IngestSSTCommand, path string) {
	done := make(chan struct{})
	r.blocked = &blockedApply{index: e.Index, checksum: c.Checksum, size: c.Size, ingesting: done, started: r.s.opts.Clock.Now()}
	s, index := r.s, e.Index
	var failure func(r *replica) // what the worker must do when it failed
	task := func(context.Context) {
		ok := s.ingestStaged(r, index, c, path, func(what string, err error) {
			failure = func(r *replica) { r.s.fatal(what, err, r) }
		})
		close(done)
		r.enqueueAdmin(func(r *replica) {
			if failure != nil {
				failure(r)
			}
			r.ingestEnded(index, ok)
		})
	}
	if err := s.stopper.RunAsyncTask(context.Background(), "store.ingest", task); err != nil {
		close(done) // the store is stopping: the entry applies after a restart
	}
}

// awaitIngest waits for the replica's ingest in flight, if any: a
// snapshot or the replica's removal must not meet the engine ingesting
// a file into the tablet's range. Worker only.
func (r *replica) awaitIngest() {
	if bl := r.blocked; bl != nil && bl.ingesting != nil {
		<-bl.ingesting
	}
}

// ingestEnded applies the entry whose file ingestAsync ingested (ok) or
// found gone (the entry applies again and fetches it), and the entries
// held meanwhile. Worker only (an admin function).
func (r *replica) ingestEnded(index uint64, ok bool) {
	bl := r.blocked
	if bl == nil || bl.ingesting == nil || bl.index != index {
		return // a snapshot caught the replica up meanwhile
	}
	r.blocked = nil
	if ok {
		r.ingested = index
	}
	r.s.metrics.ingestApply.Observe(r.s.opts.Clock.Now().Sub(bl.started).Seconds())
	r.applyHeld(bl.held)
}

// blockApply stops the replica's apply at entry e (whose staged file is
// missing) and starts fetching the file. Worker only.
func (r *replica) blockApply(e raftpb.Entry, c *raftcmdpb.IngestSSTCommand) {
	r.blocked = &blockedApply{index: e.Index, checksum: c.Checksum, size: c.Size}
	r.mu.Lock()
	r.mu.applyBlocked = true
	r.mu.Unlock()
	r.s.metrics.stagedMissing.Inc()
	r.log.Warn("staged SST missing; applying stops at this entry until it is fetched from a peer",
		"index", e.Index, "checksum", hex.EncodeToString(c.Checksum))
	r.s.fetchStagedAsync(r, c.Checksum, c.Size)
	if r.raw.BasicStatus().RaftState == raft.StateLeader {
		// Hand the group to the most caught-up follower: a leader whose
		// state is behind its log cannot serve.
		st := r.raw.Status()
		var best, match uint64
		for id, pr := range st.Progress {
			if id != r.replicaID && !pr.IsLearner && pr.Match >= match {
				best, match = id, pr.Match
			}
		}
		if best != 0 {
			r.raw.TransferLeader(best)
		}
	}
}

// unblockBySnapshot: a snapshot at index caught the replica up past the
// entry it was waiting at; held entries it covers are dropped, the rest
// are applied on the next pass. Worker only.
func (r *replica) unblockBySnapshot(index uint64) {
	bl := r.blocked
	if bl == nil || index < bl.index {
		return
	}
	var rest []raftpb.Entry
	for _, e := range bl.held {
		if e.Index > index {
			rest = append(rest, e)
		}
	}
	r.blocked = nil
	r.mu.Lock()
	r.mu.applyBlocked = false
	r.mu.Unlock()
	r.log.Info("caught up by a snapshot while waiting for a staged SST", "index", index, "waited_at", bl.index)
	if len(rest) > 0 {
		r.enqueueAdmin(func(r *replica) {
			b := r.s.db.NewIndexedBatch()
			defer b.Close()
			post := r.applyEntries(b, rest, nil)
			if err := r.s.commitApplyBatch(b, nil, post); err != nil {
				r.s.fatal("commit apply batch", err, r)
			}
		})
	}
}

// refuseBlocked answers NotLeader while the replica waits for a staged
// file: its state is behind its log, so it serves nothing.
func (r *replica) refuseBlocked() error {
	r.mu.Lock()
	blocked := r.mu.applyBlocked
	r.mu.Unlock()
	if blocked {
		return errs.NotLeader(r.tabletID, 0, "")
	}
	return nil
}

// holdEntries keeps committed entries of a blocked replica for later.
// Worker only.
func (r *replica) holdEntries(ents []raftpb.Entry) {
	r.blocked.held = append(r.blocked.held, ents...)
}

// resumeApply applies the held entries once the blocking file is staged.
// Worker only (an admin function).
func (r *replica) resumeApply() {
	bl := r.blocked
	if bl == nil || bl.ingesting != nil || r.raw == nil {
		return
	}
	if _, err := r.s.fs.Stat(r.s.ingest.path(bl.checksum)); err != nil {
		r.s.fetchStagedAsync(r, bl.checksum, bl.size) // gone again: fetch again
		return
	}
	r.blocked = nil
	r.mu.Lock()
	r.mu.applyBlocked = false
	r.mu.Unlock()
	r.log.Info("staged SST fetched; applying resumes", "index", bl.index, "held_entries", len(bl.held))
	r.applyHeld(bl.held)
}

// applyHeld applies entries held while the replica was blocked. Worker
// only.
func (r *replica) applyHeld(held []raftpb.Entry) {
	b := r.s.db.NewIndexedBatch()
	defer b.Close()
	post := r.applyEntries(b, held, nil)
	if err := r.s.commitApplyBatch(b, nil, post); err != nil {
		r.s.fatal("commit apply batch", err, r)
	}
	if r.ingestApplied {
		r.ingestApplied = false
		r.maybeTruncateLog()
	}
	r.releaseAppliedReads()
	r.s.enqueue(r.tabletID)
}

// fetchStagedAsync fetches the staged file sum from the replica's peers
// until it has it (or the replica is gone, or the store stops), then
// resumes the replica's apply on the worker.
func (s *Store) fetchStagedAsync(r *replica, sum []byte, size uint64) {
	sum = bytes.Clone(sum)
	err := s.stopper.RunAsyncTask(context.Background(), "store.fetch-staged", func(ctx context.Context) {
		wait := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			err := s.fetchStaged(ctx, r, sum, size)
			if err == nil {
				s.metrics.stagedFetched.Inc()
				r.enqueueAdmin(func(r *replica) { r.resumeApply() })
				return
			}
			r.mu.Lock()
			gone := r.mu.destroyed
			r.mu.Unlock()
			if gone {
				return
			}
			if attempt == 1 || attempt%20 == 0 {
				r.log.Warn("cannot fetch staged SST from a peer yet", "checksum", hex.EncodeToString(sum), "attempt", attempt, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 10*time.Second)
		}
	})
	if err != nil {
		r.log.Warn("store stopping; staged SST not fetched", "err", err)
	}
}

// fetchStaged asks each peer of r's tablet for the file and stages the
// first copy whose size and SHA-256 match.
func (s *Store) fetchStaged(ctx context.Context, r *replica, sum []byte, size uint64) error {
	desc := r.descriptor()
	if desc == nil {
		return errors.New("replica has no descriptor")
	}
	var errsSeen []string
	for _, rep := range desc.Replicas {
		if rep.StoreId == s.opts.StoreID {
			continue
		}
		data, err := s.fetchFrom(ctx, rep.StoreId, desc.TabletId, sum, size)
		if err != nil {
			errsSeen = append(errsSeen, fmt.Sprintf("store %d: %v", rep.StoreId, err))
			continue
		}
		if err := s.stageFetched(sum, data); err != nil {
			return err
		}
		r.log.Info("staged SST fetched from a peer", "from_store", rep.StoreId, "checksum", hex.EncodeToString(sum), "bytes", len(data))
		return nil
	}
	return fmt.Errorf("no peer has it: %s", strings.Join(errsSeen, "; "))
}

// fetchFrom streams the file from one peer store, checking its size and
// checksum.
func (s *Store) fetchFrom(ctx context.Context, storeID, tabletID uint64, sum []byte, size uint64) ([]byte, error) {
	cc, err := s.transport.Conn(storeID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	stream, err := kvpb.NewTabletClient(cc).FetchStagedSST(ctx, &kvpb.FetchStagedSSTRequest{TabletId: tabletID, Checksum: sum})
	if err != nil {
		return nil, err
	}
	data := make([]byte, 0, size)
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if uint64(len(data)+len(chunk.Data)) > size {
			return nil, fmt.Errorf("peer sent more than the %d bytes the entry names", size)
		}
		data = append(data, chunk.Data...)
	}
	if uint64(len(data)) != size {
		return nil, fmt.Errorf("peer sent %d bytes, the entry names %d", len(data), size)
	}
	if got := sha256.Sum256(data); !bytes.Equal(got[:], sum) {
		return nil, errSSTChecksum(sum, got[:])
	}
	return data, nil
}

// stageFetched writes a fetched file into the staging directory
// atomically and durably.
func (s *Store) stageFetched(sum, data []byte) error {
	final := s.ingest.path(sum)
	tmp := final + ".fetch.tmp"
	if err := s.writeFile(tmp, data); err != nil {
		_ = s.fs.Remove(tmp)
		return err
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		_ = s.fs.Remove(tmp)
		return err
	}
	return s.syncIngestDir()
}

// fetchStagedChunk is the size of one FetchStagedSST message.
const fetchStagedChunk = 1 << 20

// FetchStagedSST streams a staged or kept file to a peer (see the top of
// this file).
func (s *Store) FetchStagedSST(req *kvpb.FetchStagedSSTRequest, send func(*kvpb.FetchStagedSSTResponse) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if len(req.Checksum) != sha256.Size {
		return errBadSST("request names a %d-byte checksum; want SHA-256", len(req.Checksum))
	}
	var f interface {
		io.Reader
		io.Closer
	}
	for _, p := range []string{s.ingest.path(req.Checksum), s.ingest.keptPath(req.Checksum)} {
		file, err := s.fs.Open(p)
		if err == nil {
			f = file
			break
		}
	}
	if f == nil {
		return errSSTNotStaged(req.Checksum, s.opts.StoreID)
	}
	defer f.Close()
	buf := make([]byte, fetchStagedChunk)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if serr := send(&kvpb.FetchStagedSSTResponse{Data: bytes.Clone(buf[:n])}); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (v *Service) FetchStagedSST(req *kvpb.FetchStagedSSTRequest, stream kvpb.Tablet_FetchStagedSSTServer) error {
	return v.s.FetchStagedSST(req, stream.Send)
}

// pinnedStaged returns the checksums (hex) of the staged files that
// entries not yet applied on this store name: in the raft logs past each
// replica's applied index, and held by blocked replicas. Called by the
// sweep only when it has expired files to remove, so its cost (reading
// the unapplied tails of the logs) is off every hot path.
func (s *Store) pinnedStaged() map[string]bool {
	pins := map[string]bool{}
	pin := func(e raftpb.Entry) {
		if e.Type != raftpb.EntryNormal || len(e.Data) == 0 {
			return
		}
		var cmd raftcmdpb.RaftCommand
		if proto.Unmarshal(e.Data, &cmd) != nil {
			return
		}
		if c := cmd.GetIngestSst(); c != nil && len(c.Data) == 0 {
			pins[hex.EncodeToString(c.Checksum)] = true
		}
	}
	for _, r := range s.replicaList() {
		// A blocked replica's held entries are still in its log past its
		// applied index (the log is never truncated past it).
		r.mu.Lock()
		applied, destroyed := r.mu.applied, r.mu.destroyed
		r.mu.Unlock()
		if destroyed || r.storage == nil {
			continue
		}
		last, err := r.storage.LastIndex()
		if err != nil {
			continue
		}
		for lo := applied + 1; lo <= last; {
			ents, err := r.storage.Entries(lo, last+1, 64<<20)
			if err != nil || len(ents) == 0 {
				break
			}
			for _, e := range ents {
				pin(e)
			}
			lo = ents[len(ents)-1].Index + 1
		}
	}
	return pins
}

// dropKeptStaged removes the files kept for peers after their ingest
// (disk-full: they are the first thing to go).
func (s *Store) dropKeptStaged() {
	if s.ingest == nil {
		return
	}
	pins := s.pinnedStaged()
	for _, n := range s.stagingFiles(".ingested") {
		if !pins[strings.TrimSuffix(n, ".ingested")] {
			_ = s.fs.Remove(filepath.Join(s.ingest.dir, n))
		}
	}
}
