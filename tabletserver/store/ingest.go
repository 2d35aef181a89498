package store

// Bulk ingest: the tablet-server half of `shale import`.
//
// An importer builds an SST of cells for one tablet and streams it to the
// tablet's replicas (UploadSST: chunked, snappy-compressed, SHA-256-checked,
// rate-limited, fsync'd and staged under <dir>/ingest named by its
// checksum), then asks the leader to ingest it (IngestSST). The leader
// validates its staged copy (only point SETs of cell keys of the named
// table, in existing families, inside the tablet at the request's epoch)
// and proposes an IngestSSTCommand in one of two forms:
//
//   - By reference, when the request says the file is staged on every
//     replica of the tablet (as TiKV's import does): the entry names the
//     file by checksum and size, and each replica ingests its own staged
//     copy, which pebble hard-links into the engine. The bytes cross the
//     network once per replica and are written once per replica; nothing
//     goes through the raft log.
//   - Carried, otherwise (a replica could not be reached, an older
//     importer): the entry CARRIES THE FILE, as CockroachDB's AddSSTable
//     does, and each replica writes it out and ingests it. A follower that
//     was down catches up from the log, at the price of the data being
//     written to the raft log too.
//
// Either way every replica ingests the same bytes at the same log position.
// A follower that falls behind past a log truncation gets a snapshot, which
// contains the ingested data like any other; a new replica is added only by
// a conf change, which changes the epoch, so an ingest proposed for the old
// replica set is refused at apply on every replica alike. Staged files
// survive restarts (an entry appended before a crash is applied after it)
// and are swept StagedTTL after their upload. A replica that applies a
// by-reference entry whose file it does not have stops the process (the
// disk lost a fsync'd file; continuing would diverge), unless its marker
// file shows that it already ingested that file (a retried proposal).
// Re-applying an ingest after a restart re-ingests the same cells (the
// same keys with the same values: idempotent). One file is capped at
// MaxIngestBytes; importers cut larger tablets into several files.
//
// At apply time the command is checked again, deterministically (epoch,
// span inside the tablet, the checksum of carried bytes), then the apply
// batch built so far is committed (with the applied state, synced, so the
// entries before the ingest are never re-applied on top of it) and the file
// is ingested with pebble's DB.Ingest. Ingestion is all-or-nothing per file.
// A staged file is hashed and ingested off the raft worker (ingestAsync,
// staged.go): the tablet's later entries wait for it, the store's other
// tablets do not.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/golang/snappy"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/admission"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// MaxIngestBytes is the largest SST one IngestSST accepts. The file rides
// in a raft entry, so it must stay well below the transport's 64 MiB gRPC
// message limit; BatchMutate entries may reach 32 MiB already.
const MaxIngestBytes = 16 << 20

// ingestTruncateBytes is how many bytes of applied ingest entries make a
// replica truncate its raft log at its next tick. Left to the
// entry-count rule, the carried SSTs stayed in the log long enough to be
// flushed and compacted through the LSM once more; truncated early, the
// range deletion mostly meets them in the memtable and the flush drops
// them (a 300,000-row import on a 3-store playground wrote 2.5 GiB
// instead of 4.1 GiB and used a third less server CPU). The leader still
// keeps what a lagging follower needs.
const ingestTruncateBytes = 4 << 20

// truncateAfterIngestBytes is ingestTruncateBytes, or the test knob
// replacing it.
func (r *replica) truncateAfterIngestBytes() uint64 {
	if k := r.s.opts.Knobs; k != nil && k.IngestTruncateBytes > 0 {
		return k.IngestTruncateBytes
	}
	return ingestTruncateBytes
}

// StagedTTL is how long an uploaded file, and the marker of an ingested
// one, stay in the staging directory. A file is normally consumed by its
// ingest; one that never is (the importer died, or re-cut the file) waits
// this long, which also bounds how long a replica may be down between the
// upload and applying the ingest (past it, the replica cannot apply a
// by-reference entry; PD replaces a store that is down that long anyway).
const StagedTTL = 24 * time.Hour

// ingestState is the store's staging area for uploaded SSTs.
type ingestState struct {
	dir       string
	lastSweep atomic.Int64 // unix nanoseconds
}

func (s *Store) ingestDir() string { return filepath.Join(s.opts.Dir, "ingest") }

// openIngest prepares the staging directory, keeping staged files (an
// ingest entry appended before a restart is applied after it) but removing
// partial uploads and apply scratch files, and sets up the rate limiter.
func (s *Store) openIngest() error {
	dir := s.ingestDir()
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names, err := s.fs.List(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.Contains(n, ".tmp") || strings.HasPrefix(n, "apply-") {
			_ = s.fs.Remove(filepath.Join(dir, n))
		}
	}
	// No sweep here: a replica applies the committed entries in its log
	// right after a restart, and a by-reference one needs its file even
	// if the store was down for longer than StagedTTL. Uploads sweep.
	s.ingest = &ingestState{dir: dir}
	s.ingest.lastSweep.Store(s.opts.Clock.Now().UnixNano())
	return nil
}

// Typed ingest errors (gRPC statuses; importers branch on the code):
//   - errSSTNotStaged: codes.NotFound without a routing detail — upload again;
//   - errSSTChecksum: codes.DataLoss — the bytes differ from their checksum;
//   - errBadSST: codes.InvalidArgument — the file breaks the ingest rules;
//   - errs.KeyNotInTablet / errs.EpochMismatch — re-cut for the new tablets.
func errSSTNotStaged(sum []byte, storeID uint64) error {
	return status.Errorf(codes.NotFound, "ingest: no staged SST %x on store %d; upload it first", sum, storeID)
}

func errSSTChecksum(want, got []byte) error {
	return status.Errorf(codes.DataLoss, "ingest: SST checksum mismatch: the bytes have sha256 %x, expected %x", got, want)
}

func errBadSST(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "ingest: "+format, args...)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (st *ingestState) path(sum []byte) string {
	return filepath.Join(st.dir, hex.EncodeToString(sum)+".sst")
}

// donePath is the marker left when a replica has ingested a staged file by
// reference, so that a retried proposal of the same file is recognised.
func (st *ingestState) donePath(sum []byte) string {
	return filepath.Join(st.dir, hex.EncodeToString(sum)+".done")
}

// sweepStaged removes staged files and markers older than StagedTTL.
func (s *Store) sweepStaged() {
	now := s.opts.Clock.Now()
	if last := s.ingest.lastSweep.Load(); now.UnixNano()-last < int64(time.Minute) && last != 0 {
		return // listing the directory on every upload would be O(files)
	}
	s.ingest.lastSweep.Store(now.UnixNano())
	names, err := s.fs.List(s.ingest.dir)
	if err != nil {
		return
	}
	cutoff := now.Add(-StagedTTL)
	var expired []string
	for _, n := range names {
		p := filepath.Join(s.ingest.dir, n)
		if fi, err := s.fs.Stat(p); err == nil && fi.ModTime().Before(cutoff) {
			expired = append(expired, n)
		}
	}
	if len(expired) == 0 {
		return
	}
	// Never a file an entry not yet applied here names (staged.go).
	pins := s.pinnedStaged()
	for _, n := range expired {
		if sum, _, _ := strings.Cut(n, "."); pins[sum] {
			continue
		}
		_ = s.fs.Remove(filepath.Join(s.ingest.dir, n))
	}
}

// UploadSST receives one SST into the staging directory. recv returns the
// stream's messages and io.EOF at its end.
func (s *Store) UploadSST(ctx context.Context, recv func() (*kvpb.UploadSSTRequest, error)) (*kvpb.UploadSSTResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	first, err := recv()
	if err == io.EOF {
		return nil, errBadSST("empty upload stream")
	}
	if err != nil {
		return nil, err
	}
	if len(first.Checksum) != sha256.Size {
		return nil, errBadSST("upload names a %d-byte checksum; want SHA-256 (%d bytes)", len(first.Checksum), sha256.Size)
	}
	if first.Size == 0 || first.Size > MaxIngestBytes {
		return nil, errBadSST("SST of %d bytes; the limit is %d", first.Size, MaxIngestBytes)
	}
	if _, err := s.replicaForRequest(first.TabletId); err != nil {
		return nil, err
	}
	if err := s.disk.refuseWrite(first.TabletId); err != nil {
		return nil, err
	}
	s.sweepStaged()
	final := s.ingest.path(first.Checksum)
	if s.stagedIntact(final, first.Checksum, first.Size) {
		// Already here (a retried upload, or a re-cut that left the file
		// as it was): answer at once; the importer stops sending.
		return &kvpb.UploadSSTResponse{AlreadyStaged: true}, nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", final, s.nextID.Add(1))
	f, err := s.createBulk(tmp, "ingest")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = s.fs.Remove(tmp)
		}
	}()
	// The transfer is checked with the CRC-32C the importer sends, and
	// the bytes always with the SHA-256 that names them: a staged file is
	// ingested by reference on every replica, so every replica must hold
	// exactly the bytes its name promises (an importer cannot stage
	// different files under one name on different replicas).
	sum := sha256.New()
	var crc hash.Hash32
	if first.Crc32C != 0 {
		crc = crc32.New(castagnoli)
	}
	var received uint64
	var buf, scratch []byte
	for msg := first; ; {
		if len(msg.Chunk) > 0 {
			n := len(msg.Chunk)
			if !msg.Raw {
				if n, err = snappy.DecodedLen(msg.Chunk); err != nil {
					return nil, errBadSST("chunk at byte %d: %v", received, err)
				}
			}
			if received+uint64(n) > first.Size {
				return nil, errBadSST("upload exceeds its declared size of %d bytes", first.Size)
			}
			if msg.Raw {
				buf = msg.Chunk
			} else if buf, err = snappy.Decode(scratch[:cap(scratch)], msg.Chunk); err != nil {
				return nil, status.Errorf(codes.DataLoss, "ingest: chunk at byte %d does not decompress: %v", received, err)
			} else {
				scratch = buf
			}
			if err := s.waitIngestRate(ctx, len(buf)); err != nil {
				return nil, err
			}
			if _, err := f.Write(buf); err != nil {
				return nil, err
			}
			sum.Write(buf)
			if crc != nil {
				crc.Write(buf)
			}
			received += uint64(len(buf))
		}
		if msg, err = recv(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
	}
	if received != first.Size {
		return nil, errBadSST("upload ended after %d of %d bytes", received, first.Size)
	}
	if crc != nil {
		if got := crc.Sum32(); got != first.Crc32C {
			return nil, status.Errorf(codes.DataLoss, "ingest: SST %x arrived damaged: CRC-32C %08x, expected %08x", first.Checksum, got, first.Crc32C)
		}
	}
	if got := sum.Sum(nil); !bytes.Equal(got, first.Checksum) {
		return nil, errSSTChecksum(first.Checksum, got)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	ok = true
	if err := s.fs.Rename(tmp, final); err != nil {
		_ = s.fs.Remove(tmp)
		return nil, err
	}
	// The file must survive a crash once the importer is told it is
	// staged: an ingest by reference will count on it.
	if err := s.syncIngestDir(); err != nil {
		return nil, err
	}
	return &kvpb.UploadSSTResponse{Received: received}, nil
}

// waitIngestRate blocks until n bytes may be taken in: the ingest class
// of the store's admission control (IngestBytesPerSec is its ceiling).
func (s *Store) waitIngestRate(ctx context.Context, n int) error {
	if err := s.pace(ctx, admission.Ingest, n); err != nil {
		return status.FromContextError(err).Err()
	}
	return nil
}

// IngestSST validates a staged SST and ingests it through the tablet's raft
// log. Leader only.
func (s *Store) IngestSST(ctx context.Context, req *kvpb.IngestSSTRequest) (*kvpb.IngestSSTResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return nil, err
	}
	r, desc, err := s.writeLeader(req.Header)
	if err != nil {
		return nil, err
	}
	if req.Header.GetEpoch() != nil && !sameEpoch(req.Header.Epoch, desc.Epoch) {
		return nil, errs.EpochMismatch(desc)
	}
	// The ingest moves the tablet's max timestamp (and clock) to
	// MaxTimestamp; a wrong one must be refused, not applied.
	if err := s.checkClientTimestamp(req.MaxTimestamp); err != nil {
		return nil, errBadSST("max_timestamp: %s", status.Convert(err).Message())
	}
	path := s.ingest.path(req.Checksum)
	data, err := s.readStaged(path, req)
	if err != nil {
		return nil, err
	}
	if err := s.validateSST(data, req, desc, schema); err != nil {
		return nil, err
	}
	cmd := &raftcmdpb.IngestSSTCommand{
		TableId:      req.TableId,
		Checksum:     req.Checksum,
		Size:         req.Size,
		Smallest:     req.Smallest,
		Largest:      req.Largest,
		KeyCount:     req.KeyCount,
		MaxTimestamp: req.MaxTimestamp,
	}
	byRef := stagedOnAll(desc, req.StagedStoreIds)
	if !byRef {
		cmd.Data = data
	}
	resp, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_IngestSst{IngestSst: cmd}})
	if err != nil {
		return nil, err
	}
	if !byRef {
		_ = s.fs.Remove(path)
	}
	return resp.(*kvpb.IngestSSTResponse), nil
}

// stagedOnAll reports whether the stores an importer staged a file on
// cover every replica of desc.
func stagedOnAll(desc *metapb.TabletDescriptor, staged []uint64) bool {
	if len(staged) == 0 {
		return false
	}
	for _, rep := range desc.Replicas {
		if !slices.Contains(staged, rep.StoreId) {
			return false
		}
	}
	return true
}

// syncIngestDir makes renames and removals in the staging directory
// durable.
func (s *Store) syncIngestDir() error {
	d, err := s.fs.OpenDir(s.ingest.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readStaged reads the staged file req names. Its SHA-256 was checked as
// it arrived and it was fsync'd; damage on disk since then fails the block
// checksums validateSST reads through.
func (s *Store) readStaged(path string, req *kvpb.IngestSSTRequest) ([]byte, error) {
	if len(req.Checksum) != sha256.Size {
		return nil, errBadSST("request names a %d-byte checksum; want SHA-256", len(req.Checksum))
	}
	if req.Size == 0 || req.Size > MaxIngestBytes {
		return nil, errBadSST("SST of %d bytes; the limit is %d", req.Size, MaxIngestBytes)
	}
	f, err := s.fs.Open(path)
	if err != nil {
		if os.IsNotExist(err) || errors.Is(err, os.ErrNotExist) {
			return nil, errSSTNotStaged(req.Checksum, s.opts.StoreID)
		}
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if uint64(fi.Size()) != req.Size {
		_ = s.fs.Remove(path) // not the file the request names
		return nil, errSSTNotStaged(req.Checksum, s.opts.StoreID)
	}
	data := make([]byte, req.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	if got := sha256.Sum256(data); !bytes.Equal(got[:], req.Checksum) {
		// Damaged on this disk since it was verified on arrival. Removed,
		// so that the importer's next upload (its answer to DataLoss)
		// stages it afresh.
		_ = s.fs.Remove(path)
		return nil, errSSTChecksum(req.Checksum, got[:])
	}
	return data, nil
}

// stagedIntact reports whether the file at path holds size bytes whose
// SHA-256 is sum. A damaged file is removed.
func (s *Store) stagedIntact(path string, sum []byte, size uint64) bool {
	fi, err := s.fs.Stat(path)
	if err != nil || uint64(fi.Size()) != size {
		return false
	}
	if err := s.verifyStaged(path, sum); err != nil {
		s.log.Warn("staged SST damaged; removed", "path", path, "err", err)
		_ = s.fs.Remove(path)
		return false
	}
	return true
}

// verifyStaged hashes the file at path and returns errSSTChecksum unless
// its SHA-256 is sum.
func (s *Store) verifyStaged(path string, sum []byte) error {
	f, err := s.fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := h.Sum(nil); !bytes.Equal(got, sum) {
		return errSSTChecksum(sum, got)
	}
	return nil
}

// validateSST enforces the ingest rules on a file the leader is about to
// propose: a table format this engine reads; only point SETs (no deletes,
// range deletions or range keys, which could erase data outside the
// import); every value a valid cell envelope (internal/cellvalue) whose
// CRC matches; every key a cell key of req.TableId in one of its families, at
// a timestamp in [0, req.MaxTimestamp]; keys strictly increasing from
// req.Smallest to req.Largest, req.KeyCount of them; all inside the tablet.
func (s *Store) validateSST(data []byte, req *kvpb.IngestSSTRequest, desc *metapb.TabletDescriptor, schema *metapb.TableSchema) error {
	rd, err := sstable.NewMemReader(data, sstable.ReaderOptions{})
	if err != nil {
		return errBadSST("not an SST: %v", err)
	}
	defer rd.Close()
	tf, err := rd.TableFormat()
	if err != nil {
		return errBadSST("%v", err)
	}
	if max := s.db.FormatMajorVersion().MaxTableFormat(); tf > max {
		return errBadSST("table format %s is newer than this store's %s", tf, max)
	}
	ctx := context.Background()
	if it, err := rd.NewRawRangeDelIter(ctx, sstable.NoFragmentTransforms, sstable.NoReadEnv); err != nil {
		return errBadSST("%v", err)
	} else if it != nil {
		it.Close()
		return errBadSST("SST holds range deletions; only point cells may be ingested")
	}
	if it, err := rd.NewRawRangeKeyIter(ctx, sstable.NoFragmentTransforms, sstable.NoReadEnv); err != nil {
		return errBadSST("%v", err)
	} else if it != nil {
		it.Close()
		return errBadSST("SST holds range keys; only point cells may be ingested")
	}
	families := map[string]bool{}
	for _, f := range schema.Families {
		families[f.Name] = true
	}
	it, err := rd.NewIter(sstable.NoTransforms, nil, nil, sstable.TableBlobContext{})
	if err != nil {
		return errBadSST("%v", err)
	}
	defer it.Close()
	var prev []byte
	var n uint64
	var dec keys.CellDecoder // the cells of a row share its decoded parts
	for kv := it.First(); kv != nil; kv = it.Next() {
		if kv.Kind() != pebble.InternalKeyKindSet {
			return errBadSST("key %x is a %s; only SETs may be ingested", kv.K.UserKey, kv.Kind())
		}
		ck, err := keys.StripDataKey(kv.K.UserKey)
		if err != nil {
			return errBadSST("%v", err)
		}
		if n == 0 {
			if !bytes.Equal(ck, req.Smallest) {
				return errBadSST("first key %x is not the declared smallest %x", ck, req.Smallest)
			}
			if !containsDataKey(desc, ck) {
				return keyNotInTablet(ck, desc)
			}
		} else if bytes.Compare(ck, prev) <= 0 {
			return errBadSST("key %x is not above its predecessor", ck)
		}
		c, err := dec.Decode(ck)
		if err != nil {
			return errBadSST("%v", err)
		}
		if c.TableID != req.TableId {
			return errBadSST("key %x belongs to table %d, not %d", ck, c.TableID, req.TableId)
		}
		if !families[c.Family] {
			return errBadSST("row %q: table %q has no column family %q", c.Row, schema.Name, c.Family)
		}
		if c.Timestamp < 0 || c.Timestamp > req.MaxTimestamp {
			return errBadSST("row %q: timestamp %d outside [0, %d]", c.Row, c.Timestamp, req.MaxTimestamp)
		}
		v, _, err := kv.Value(nil)
		if err != nil {
			return status.Errorf(codes.DataLoss, "ingest: reading SST: %v", err)
		}
		if _, _, _, err := cellvalue.DecodeVerified(v); err != nil {
			return errBadSST("row %q column %s:%q: %v (values must be in the store's envelope, data format %d: build SSTs with importer.SSTBuilder)", c.Row, c.Family, c.Qualifier, err, cellvalue.FormatVersion)
		}
		prev = append(prev[:0], ck...)
		n++
	}
	if err := it.Error(); err != nil {
		return status.Errorf(codes.DataLoss, "ingest: reading SST: %v", err)
	}
	if n == 0 {
		return errBadSST("SST is empty")
	}
	if !bytes.Equal(prev, req.Largest) {
		return errBadSST("last key %x is not the declared largest %x", prev, req.Largest)
	}
	if !containsDataKey(desc, prev) {
		return keyNotInTablet(prev, desc)
	}
	if n != req.KeyCount {
		return errBadSST("SST holds %d keys; the request declares %d", n, req.KeyCount)
	}
	return nil
}

// keyNotInTablet reports a cell key outside desc by its row key, the form
// routing errors use.
func keyNotInTablet(cellKey []byte, desc *metapb.TabletDescriptor) error {
	row, err := keys.RowPrefix(cellKey)
	if err != nil {
		row = cellKey
	}
	return errs.KeyNotInTablet(row, desc)
}

// applyIngest applies an IngestSSTCommand (see the top of this file).
// Worker only; b is the store's apply batch and post its pending actions.
func (r *replica) applyIngest(b *pebble.Batch, e raftpb.Entry, cmd *raftcmdpb.RaftCommand, c *raftcmdpb.IngestSSTCommand, post []func()) (proto.Message, []func(), error) {
	desc := r.appliedDesc
	if !sameEpoch(cmd.Epoch, desc.Epoch) {
		return nil, post, errs.EpochMismatch(desc)
	}
	byRef := len(c.Data) == 0
	if !byRef {
		if got := sha256.Sum256(c.Data); !bytes.Equal(got[:], c.Checksum) {
			return nil, post, errSSTChecksum(c.Checksum, got[:])
		}
	}
	if !containsDataKey(desc, c.Smallest) {
		return nil, post, keyNotInTablet(c.Smallest, desc)
	}
	if !containsDataKey(desc, c.Largest) {
		return nil, post, keyNotInTablet(c.Largest, desc)
	}
	s := r.s
	resp := &kvpb.IngestSSTResponse{KeyCount: c.KeyCount}
	if byRef && r.ingested == e.Index {
		// The engine took the file in off the worker (ingestAsync): the
		// entry applies now.
		r.ingested = 0
		r.noteIngested(e, c, true)
		return resp, post, nil
	}
	// Everything applied before this entry becomes durable first, with its
	// applied state, so a crash never re-applies those entries on top of
	// the ingested cells (re-applying the ingest itself is harmless).
	// The batch is published under applyMu as every apply batch is; the
	// WAL sync comes after (here or in ingestAsync), so that reads (which
	// take applyMu to pin a snapshot) do not wait for the fsync.
	if err := setProto(b, keys.AppliedStateKey(r.tabletID), &r.applied); err != nil {
		s.fatal("write applied state", err, r)
	}
	if err := s.commitApplyBatch(b, pebble.NoSync, post); err != nil {
		s.fatal("commit apply batch before ingest", err, r)
	}
	post = post[:0]
	b.Reset()

	if byRef {
		path := s.ingest.path(c.Checksum)
		fi, err := s.fs.Stat(path)
		if err != nil || uint64(fi.Size()) != c.Size {
			if _, derr := s.fs.Stat(s.ingest.donePath(c.Checksum)); derr == nil {
				// A retried proposal of a file this replica ingested at an
				// earlier index: the cells are in.
				r.log.Info("SST already ingested", "index", e.Index, "checksum", hex.EncodeToString(c.Checksum))
				return resp, post, nil
			}
			if err == nil {
				// Not the file the entry names: set aside, fetch it.
				_ = s.fs.Rename(path, path+".badsize")
			}
			// Lost (or swept while this replica was down): fetch it from
			// a peer; applying waits (staged.go).
			r.blockApply(e, c)
			return nil, post, nil
		}
		// Hashing the file and the engine's ingest (several fsyncs, maybe
		// a memtable flush) take tens of milliseconds: off the worker,
		// which serves every tablet of the store. This tablet's later
		// entries wait (staged.go).
		r.ingestAsync(e, c, path)
		return nil, post, nil
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		s.fatal("sync apply batch before ingest", err, r)
	}
	path := filepath.Join(s.ingest.dir, fmt.Sprintf("apply-%d-%d.sst", r.tabletID, e.Index))
	if err := s.writeFile(path, c.Data); err != nil {
		s.fatal("write SST to ingest", err, r)
	}
	// Not under applyMu: the engine adds the file atomically and the
	// ingest changes no descriptor, so a read pinning its snapshot now
	// sees the tablet before or after it, as one pinned a moment earlier
	// or later would. Holding applyMu would stall every read on the store
	// for the ingest's manifest sync (or a memtable flush).
	if k := s.opts.Knobs; k != nil && k.WhileIngesting != nil {
		k.WhileIngesting(r.tabletID)
	}
	if err := s.db.Ingest(context.Background(), []string{path}); err != nil {
		// The leader validated the bytes every replica holds; an engine
		// that cannot ingest them now would diverge if it went on.
		s.fatal("ingest SST", err, r)
	}
	_ = s.fs.Remove(path)
	r.noteIngested(e, c, false)
	return resp, post, nil
}

// noteIngested records an applied ingest entry. Worker only.
func (r *replica) noteIngested(e raftpb.Entry, c *raftcmdpb.IngestSSTCommand, byRef bool) {
	r.ingestLogBytes += uint64(len(c.Data))
	r.ingestApplied = true
	r.log.Info("SST ingested", "index", e.Index, "keys", c.KeyCount, "bytes", c.Size, "by_reference", byRef)
}

// ingestStaged ingests the staged file at path, which entry index names by
// its checksum, into the engine: it syncs what was applied before the
// entry, checks the file against its checksum, ingests it and leaves the
// marker that it did. It reports false if the file vanished meanwhile.
// Any goroutine; what must stop the replica goes to stop (called on the
// worker, which may panic).
func (s *Store) ingestStaged(r *replica, index uint64, c *raftcmdpb.IngestSSTCommand, path string, stop func(what string, err error)) bool {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		stop("sync apply batch before ingest", err)
		return false
	}
	// Every replica checks its own copy against the checksum that names
	// it before ingesting it: one that differs from its peers' must never
	// be ingested. The replica cannot apply the entry without the bytes,
	// and applying it without them would diverge, so it stops, like a
	// replica whose staged file is missing; the damaged file is kept aside
	// for inspection.
	if err := s.verifyStaged(path, c.Checksum); err != nil {
		if os.IsNotExist(err) || errors.Is(err, os.ErrNotExist) {
			return false // removed since the worker saw it: fetch it
		}
		_ = s.fs.Rename(path, path+".corrupt")
		stop(fmt.Sprintf("ingest by reference: staged SST %x (entry %d) differs from its checksum", c.Checksum, index), err)
		return false
	}
	// Not under applyMu: see applyIngest.
	if k := s.opts.Knobs; k != nil && k.WhileIngesting != nil {
		k.WhileIngesting(r.tabletID)
	}
	err := s.db.Ingest(context.Background(), []string{path})
	if err != nil && (os.IsNotExist(err) || errors.Is(err, os.ErrNotExist)) {
		return false // removed since it was checked: fetch it (staged.go)
	}
	if err != nil {
		// The leader validated the bytes every replica holds; an engine
		// that cannot ingest them now would diverge if it went on.
		stop("ingest SST", err)
		return false
	}
	// The marker first, durably, then the staged link (pebble holds its
	// own): a crash in between leaves a file to re-ingest or a marker,
	// never neither.
	if err := s.writeFile(s.ingest.donePath(c.Checksum), nil); err != nil {
		stop("write ingest marker", err)
		return false
	}
	if err := s.syncIngestDir(); err != nil {
		stop("sync staging directory", err)
		return false
	}
	// Kept (a link to the ingested table) for peers that may still need
	// it, until the sweep (staged.go).
	if err := s.fs.Rename(path, s.ingest.keptPath(c.Checksum)); err != nil {
		_ = s.fs.Remove(path)
	}
	return true
}

func (s *Store) writeFile(path string, data []byte) error {
	f, err := s.createBulk(path, "ingest")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// stagingFiles lists the staging directory's files ending in suffix
// (".sst": staged files; ".done": ingest markers; tests).
func (s *Store) stagingFiles(suffix string) []string {
	names, _ := s.fs.List(s.ingest.dir)
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, n)
		}
	}
	return out
}

// ---- gRPC ----

func (v *Service) UploadSST(stream kvpb.Tablet_UploadSSTServer) error {
	resp, err := v.s.UploadSST(stream.Context(), stream.Recv)
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

func (v *Service) IngestSST(ctx context.Context, req *kvpb.IngestSSTRequest) (*kvpb.IngestSSTResponse, error) {
	return v.s.IngestSST(ctx, req)
}
