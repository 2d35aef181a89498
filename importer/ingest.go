package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ---- phase 3: build SSTs per tablet, upload, ingest ----

// chunk is a run of whole rows, about SSTBytes, that one worker cuts into
// SSTs at tablet boundaries and ingests; its totals go to the checkpoint
// once every earlier chunk is in.
type chunk struct {
	seq   int
	cells []entry
	rows  []int // start index in cells of each row
	arena []byte
	size  int

	// Totals, filled in by ingestChunk.
	lastKey                                  []byte
	nRows, nCells, bytes, ssts, recuts, dups int64
}

func (p *chunk) addRow(cells []entry, sizeHint int) {
	if p.arena == nil {
		// One allocation per chunk: a chunk ends at the first row past
		// sizeHint, so growth (and the re-slicing below) is rare.
		p.arena = make([]byte, 0, sizeHint+sizeHint/8)
	}
	p.rows = append(p.rows, len(p.cells))
	base := p.arena
	for _, c := range cells {
		off := len(p.arena)
		p.arena = append(p.arena, c.key...)
		p.arena = append(p.arena, c.value...)
		p.cells = append(p.cells, entry{key: p.arena[off : off+len(c.key) : off+len(c.key)], value: p.arena[off+len(c.key) : len(p.arena) : len(p.arena)]})
		p.size += len(c.key) + len(c.value)
	}
	if cap(base) > 0 && &base[:1][0] == &p.arena[:1][0] {
		return // the arena did not move
	}
	// Re-slice after growth moved the arena (only then: doing it for every
	// row made filling a chunk quadratic in its cell count).
	off := 0
	for i := range p.cells {
		kl, vl := len(p.cells[i].key), len(p.cells[i].value)
		p.cells[i].key = p.arena[off : off+kl : off+kl]
		p.cells[i].value = p.arena[off+kl : off+kl+vl : off+kl+vl]
		off += kl + vl
	}
}

func (p *chunk) rowEnd(i int) int {
	if i+1 < len(p.rows) {
		return p.rows[i+1]
	}
	return len(p.cells)
}

func (j *job) ingestAll(ctx context.Context) error {
	cp := j.cp
	m, err := newMerger(j.o.WorkDir, cp.Runs)
	if err != nil {
		return err
	}
	defer m.close()
	rs := &rowStream{
		m:         m,
		onDupLast: j.o.OnDuplicate == "last",
		rowOf:     keys.RowPrefix,
		dupErr: func(row []byte, a, b entry) error {
			_, r, _ := keys.DecodeRowKey(row)
			return fmt.Errorf("importer: duplicate row key %q: %s:%d and %s:%d (use --on-duplicate=last to keep the last)",
				r, j.fileName(a.seq), a.line, j.fileName(b.seq), b.line)
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Chunks of about SSTBytes go to IngestParallel workers; the
	// checkpoint advances over the longest prefix of finished chunks, so
	// a resumed job redoes at most the chunks that were in flight (which
	// is harmless: their cells are identical).
	work := make(chan *chunk)
	resumeKey := cp.DoneKey // workers advance cp.DoneKey under mu
	var (
		g        = j.stopper.NewGroup()
		mu       sync.Mutex
		fe       = &firstError{cancel: cancel}
		finished = map[int]*chunk{}
		next     int
	)
	fail := fe.set
	complete := func(c *chunk) {
		mu.Lock()
		defer mu.Unlock()
		finished[c.seq] = c
		for {
			d, ok := finished[next]
			if !ok {
				return
			}
			delete(finished, next)
			next++
			cp.DoneKey = d.lastKey
			cp.RowsIngested += d.nRows
			cp.CellsIngested += d.nCells
			cp.BytesIngested += d.bytes
			cp.SSTs += d.ssts
			cp.Recuts += d.recuts
			cp.Duplicates += d.dups
			if err := cp.save(j.o.WorkDir); err != nil {
				fail(err)
				return
			}
			if j.verify != nil && d.lastKey != nil {
				j.verify.advance(d.lastKey)
			}
			j.hook(Event{Name: "checkpointed"})
		}
	}
	for w := 0; w < j.o.IngestParallel; w++ {
		g.Go(ctx, "importer.ingest", func(ctx context.Context) {
			for c := range work {
				if err := j.ingestChunk(ctx, c); err != nil {
					fail(err)
					continue
				}
				complete(c)
			}
		})
	}
	var sum cellSum
	var dec keys.CellDecoder // a row's cells share its decoded parts
	produce := func() error {
		var dups int64
		seq := 0
		c := &chunk{}
		send := func() error {
			c.seq, c.dups = seq, rs.duplicates-dups
			dups = rs.duplicates
			seq++
			select {
			case work <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
			c = &chunk{}
			return nil
		}
		for {
			cells, err := rs.nextRow()
			if err != nil {
				return err
			}
			if cells == nil {
				break
			}
			for _, c := range cells {
				d, err := dec.Decode(c.key)
				if err != nil {
					return err
				}
				sum.add(d.Row, d.Family, d.Qualifier, c.value)
			}
			if resumeKey != nil && bytes.Compare(cells[len(cells)-1].key, resumeKey) <= 0 {
				dups = rs.duplicates
				continue // ingested before a restart
			}
			c.addRow(cells, j.o.SSTBytes)
			if c.size >= j.o.SSTBytes {
				if err := send(); err != nil {
					return err
				}
			}
		}
		if len(c.cells) > 0 {
			return send()
		}
		return nil
	}
	err = produce()
	close(work)
	if gerr := g.Wait(); gerr != nil {
		fail(gerr)
	}
	firstErr := fe.get()
	if err == nil && firstErr == nil {
		cp.Checksum = sum.String()
	}
	if err != nil {
		if firstErr != nil && errors.Is(err, context.Canceled) {
			return firstErr
		}
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// firstError keeps the first error a group of goroutines reports and
// cancels their context when it arrives (errgroup's rule, for goroutines
// that report from several places and go on draining their queues).
type firstError struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.cancel()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (j *job) fileName(seq uint64) string {
	i := int(seq >> 40)
	if i < len(j.files) {
		if j.files[i].stdin {
			return "<stdin>"
		}
		return j.files[i].path
	}
	return "?"
}

// holdsCell reports whether the row of a cell key lies in r's tablet.
func holdsCell(r kvclient.Route, cellKey []byte) bool {
	row, err := keys.RowPrefix(cellKey)
	return err == nil && r.Contains(row)
}

// ingestChunk ingests every row of p, cutting SSTs at tablet boundaries
// and re-cutting when a tablet splits or moves under an SST.
func (j *job) ingestChunk(ctx context.Context, p *chunk) error {
	var hint *kvclient.Route
	var shownBytes int64
	bo := retry.NewExponential(50*time.Millisecond, time.Second)
	row := 0
	for row < len(p.rows) {
		firstRow, err := keys.RowPrefix(p.cells[p.rows[row]].key)
		if err != nil {
			return err
		}
		loc := hint
		hint = nil
		if loc == nil || !loc.Contains(firstRow) {
			r, err := j.kv.RouteKey(ctx, firstRow, false)
			if err != nil {
				if err := bo.Wait(ctx, 0); err != nil {
					return err
				}
				continue
			}
			loc = &r
		}
		b := newSSTBuilder(!j.rawSSTs.Load(), j.o.SSTBytes)
		end := row
		// The first planned split point above firstRow ends the SST too.
		var splitAt []byte
		if i, _ := slices.BinarySearchFunc(j.splits, firstRow, bytes.Compare); i < len(j.splits) {
			if splitAt = j.splits[i]; bytes.Equal(splitAt, firstRow) {
				splitAt = nil
				if i+1 < len(j.splits) {
					splitAt = j.splits[i+1]
				}
			}
		}
		for end < len(p.rows) {
			rk, err := keys.RowPrefix(p.cells[p.rows[end]].key)
			if err != nil {
				return err
			}
			if !loc.Contains(rk) || (splitAt != nil && bytes.Compare(rk, splitAt) >= 0) {
				break
			}
			for _, c := range p.cells[p.rows[end]:p.rowEnd(end)] {
				if err := b.Add(c.key, c.value, j.cp.Timestamp); err != nil {
					return err
				}
			}
			end++
		}
		sst, err := b.Finish()
		if err != nil {
			return err
		}
		if !b.ValuesCompress() && sst.KeyCount > 1000 {
			// The data does not compress: stop paying for the attempts.
			j.rawSSTs.Store(true)
		}
		if len(sst.Data) > maxSSTBytes {
			return fmt.Errorf("importer: an SST for tablet %d grew to %d bytes (limit %d); lower --sst-size", loc.Desc.TabletId, len(sst.Data), maxSSTBytes)
		}
		j.hook(Event{Name: "sst", TabletID: loc.Desc.TabletId, SST: sst})
		next, err := j.ingestOne(ctx, loc, sst)
		if err != nil {
			return err
		}
		if next != nil { // re-cut for the tablet's new shape
			p.recuts++
			hint = next
			continue
		}
		j.hook(Event{Name: "ingested", TabletID: loc.Desc.TabletId, SST: sst})
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, c := range p.cells[p.rows[row]:p.rowEnd(end-1)] {
			p.bytes += int64(len(c.key) + len(c.value))
		}
		p.nRows += int64(end - row)
		p.nCells += int64(sst.KeyCount)
		p.ssts++
		// The display moves per SST; the checkpoint per finished prefix.
		j.ingestedRows.Add(int64(end - row))
		j.ingestedBytes.Add(p.bytes - shownBytes)
		shownBytes = p.bytes
		j.ssts.Add(1)
		p.lastKey = bytes.Clone(sst.Largest)
		row = end
	}
	return nil
}

// ingestOne uploads sst to every replica of loc and has the leader ingest
// it. It returns a new route when the SST must be re-cut (the tablet
// split, merged or moved since it was cut), nil when it is in. Errors are
// handled by the shared policy (kvclient.Reroute, internal/retry).
func (j *job) ingestOne(ctx context.Context, loc *kvclient.Route, sst *SST) (*kvclient.Route, error) {
	leader := loc.Leader
	staged := map[uint64]bool{} // stores holding the file
	bo := retry.NewExponential(50*time.Millisecond, time.Second)
	var lastErr error
	// reupload: a staged file is missing or damaged; upload it again, at
	// once the first times.
	reupload := func(attempt int) error {
		if attempt < 2 {
			return nil
		}
		return bo.Wait(ctx, 0)
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if attempt > 0 && attempt%8 == 0 {
			j.o.Logger.Warn("ingest retrying", "tablet", loc.Desc.TabletId, "attempt", attempt, "err", lastErr)
		}
		if attempt >= 200 {
			return nil, fmt.Errorf("importer: giving up on tablet %d after %d attempts: %w", loc.Desc.TabletId, attempt, lastErr)
		}
		if leader == 0 {
			// Unknown leader: the routing cache names the replica to
			// try next (Reroute moved it on), or the PD the leader.
			if r, err := j.kv.RouteKey(ctx, loc.Desc.StartKey, false); err == nil && r.Desc.TabletId == loc.Desc.TabletId {
				leader = r.Leader
			}
			if leader == 0 && len(loc.Desc.Replicas) > 0 {
				leader = loc.Desc.Replicas[attempt%len(loc.Desc.Replicas)].StoreId
			}
			if leader == 0 {
				if err := bo.Wait(ctx, 0); err != nil {
					return nil, err
				}
				continue
			}
		}
		cl, err := j.kv.TabletConn(ctx, leader)
		if err != nil {
			lastErr = err
			if next, err := j.route(ctx, err, loc, &leader, sst, bo); next != nil || err != nil {
				return next, err
			}
			continue
		}
		if !staged[leader] {
			t0 := time.Now()
			err := j.stage(ctx, loc, leader, cl, sst, staged)
			j.o.Logger.Debug("SST staged", "tablet", loc.Desc.TabletId, "bytes", len(sst.Data), "stores", len(staged), "took", time.Since(t0), "err", err)
			if err != nil {
				lastErr = err
				if stagedLost(err) { // the upload arrived damaged
					if err := reupload(attempt); err != nil {
						return nil, err
					}
					continue
				}
				if next, err := j.route(ctx, err, loc, &leader, sst, bo); next != nil || err != nil {
					return next, err
				}
				continue
			}
		}
		req := IngestRequest(loc.Desc.TabletId, loc.Desc.Epoch, j.schema.TableId, sst)
		for id := range staged {
			req.StagedStoreIds = append(req.StagedStoreIds, id)
		}
		t0 := time.Now()
		resp, err := cl.IngestSST(ctx, req)
		j.o.Logger.Debug("SST ingest", "tablet", loc.Desc.TabletId, "by_reference", len(staged) >= len(loc.Desc.Replicas), "took", time.Since(t0), "err", err)
		if err == nil {
			if resp.KeyCount != sst.KeyCount {
				return nil, fmt.Errorf("importer: tablet %d acknowledged %d cells of an SST of %d", loc.Desc.TabletId, resp.KeyCount, sst.KeyCount)
			}
			return nil, nil
		}
		lastErr = err
		if stagedLost(err) { // the leader lost the file (restart or sweep)
			delete(staged, leader)
			if err := reupload(attempt); err != nil {
				return nil, err
			}
			continue
		}
		if next, rerr := j.route(ctx, err, loc, &leader, sst, bo); next != nil || rerr != nil {
			return next, rerr
		}
	}
}

// stagedLost reports the ingest protocol's own verdict that a staged SST
// is missing (codes.NotFound without a routing detail) or damaged
// (codes.DataLoss) on the store: not a routing error, the cure is to
// upload again (tabletserver/store/ingest.go).
func stagedLost(err error) bool {
	if errs.Detail(err) != nil {
		return false
	}
	c := status.Code(err)
	return c == codes.NotFound || c == codes.DataLoss
}

// stage uploads sst, at once, to loc's leader (through cl) and to every
// replica of loc that does not hold it yet, and records in staged the
// stores that do. It returns the leader's upload error. A follower that
// cannot take the file is left out: the leader then carries the file in
// the raft entry instead of naming it (tabletserver/store/ingest.go).
func (j *job) stage(ctx context.Context, loc *kvclient.Route, leader uint64, cl kvpb.TabletClient, sst *SST, staged map[uint64]bool) error {
	var mu sync.Mutex
	var leaderErr error
	upload := func(ctx context.Context, id uint64) {
		var err error
		if id == leader {
			_, err = UploadSST(ctx, cl, loc.Desc.TabletId, sst)
		} else {
			// A follower that is down or partitioned must not hold up
			// the ingest for long.
			fctx, cancel := context.WithTimeout(ctx, followerUploadTimeout+time.Duration(len(sst.Data)>>20)*time.Second)
			defer cancel()
			var fcl kvpb.TabletClient
			if fcl, err = j.kv.TabletConn(fctx, id); err == nil {
				_, err = UploadSST(fctx, fcl, loc.Desc.TabletId, sst)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			staged[id] = true
		case id == leader:
			leaderErr = err
		default:
			j.o.Logger.Debug("follower upload failed; the SST will travel in the raft entry", "tablet", loc.Desc.TabletId, "store", id, "err", err)
		}
	}
	// The targets are chosen before any upload starts: the uploads write
	// to staged.
	targets := []uint64{leader}
	for _, rep := range loc.Desc.Replicas {
		if rep.StoreId != leader && !staged[rep.StoreId] {
			targets = append(targets, rep.StoreId)
		}
	}
	g := j.stopper.NewGroup()
	for _, id := range targets {
		g.Go(ctx, "importer.upload", func(ctx context.Context) { upload(ctx, id) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return leaderErr
}

// followerUploadTimeout (plus a second per MiB) bounds a follower's upload.
const followerUploadTimeout = 5 * time.Second

// route reacts to an error of an upload or ingest under the shared retry
// policy (kvclient.Reroute fixes the routing cache): it may change
// *leader, return a route to re-cut for, or a fatal error. Ingesting is
// idempotent (the cells are identical), so an ambiguous outcome is simply
// retried.
func (j *job) route(ctx context.Context, err error, loc *kvclient.Route, leader *uint64, sst *SST, bo *retry.Exponential) (*kvclient.Route, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	act, next := j.kv.Reroute(kvclient.Route{Desc: loc.Desc, Leader: *leader}, *leader, err)
	switch act {
	case retry.Fail:
		return nil, fmt.Errorf("importer: tablet %d: %w", loc.Desc.TabletId, err)
	case retry.RetryElsewhere, retry.Ambiguous:
		*leader = next // 0: the routing cache names the next replica
		if next != 0 {
			return nil, nil
		}
		return nil, bo.Wait(ctx, 0)
	case retry.RefreshRoute:
		// The leader's answer names the tablet's current shape; when the
		// SST still fits in it (SSTs are cut at the planned split
		// points), retry there at once rather than wait for the PD to
		// hear of the split: the bytes, and so the staged copies, are
		// the same.
		if em, ok := errs.As[*errorpb.EpochMismatch](err); ok && *leader != 0 && sst != nil {
			for _, d := range em.Current {
				nl := &kvclient.Route{Desc: d, Leader: *leader}
				if d.TabletId == loc.Desc.TabletId && !sameDesc(d, loc.Desc) && holdsCell(*nl, sst.Smallest) && holdsCell(*nl, sst.Largest) {
					return nl, nil
				}
			}
		}
		if err := bo.Wait(ctx, 0); err != nil {
			return nil, err
		}
		return j.relocate(ctx, loc)
	default: // retry.Backoff
		var after time.Duration
		if sb, ok := errs.As[*errorpb.ServerBusy](err); ok {
			after = time.Duration(sb.RetryAfterMs) * time.Millisecond
		} else if df, ok := errs.As[*errorpb.DiskFull](err); ok {
			// A store out of space: PD moves the tablet; wait for it.
			after = time.Duration(df.RetryAfterMs) * time.Millisecond
		}
		return nil, bo.Wait(ctx, after)
	}
}

// relocate asks the PD for the tablet now holding loc's first row; while
// the PD still reports the old shape, it waits.
func (j *job) relocate(ctx context.Context, loc *kvclient.Route) (*kvclient.Route, error) {
	bo := retry.NewExponential(50*time.Millisecond, time.Second)
	for attempt := 0; attempt < 100; attempt++ {
		r, err := j.kv.RouteKey(ctx, loc.Desc.StartKey, true)
		if err == nil && !sameDesc(r.Desc, loc.Desc) {
			return &r, nil
		}
		if err := bo.Wait(ctx, 0); err != nil {
			return nil, err
		}
	}
	// The PD still shows the shape the store refused; try it again (the
	// store may have refused because it had not caught up).
	return &kvclient.Route{Desc: loc.Desc}, nil
}

func sameDesc(a, b *metapb.TabletDescriptor) bool {
	return a.TabletId == b.TabletId && a.GetEpoch().GetVersion() == b.GetEpoch().GetVersion() &&
		a.GetEpoch().GetConfVersion() == b.GetEpoch().GetConfVersion()
}
