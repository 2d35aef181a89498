package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/atomicfile"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// RestoreOptions configure one restore.
type RestoreOptions struct {
	PD  []string
	TLS *security.Reloader
	// From is the backup's URL; an incremental brings its chain.
	From string
	// Tables to restore (names in the backup); empty: all.
	Tables []string
	// As restores the one table of Tables under this name.
	As string
	// WorkDir records finished pieces so a killed restore resumes.
	// Default: shale-restore-<backup id> in the current directory.
	WorkDir string
	// Parallel is how many pieces are restored at once. Default 4.
	Parallel int
	// SSTBytes is the target size of one ingested SST. Default 8 MiB.
	SSTBytes         int
	Progress         func(Progress)
	ProgressInterval time.Duration
	Logger           *slog.Logger
	// Hook, if set, is called after each piece is ingested ("piece"),
	// from the restore's workers, concurrently when Parallel > 1.
	Hook func(event string)
}

// RestoreSummary is a finished restore's account.
type RestoreSummary struct {
	From      string
	Timestamp int64
	Chain     int // backups applied (1: a full one)
	Tables    []string
	Cells     int64
	Bytes     int64 // backup file bytes read
	SSTs      int64
	Digest    string
	Resumed   bool
	Duration  time.Duration
	WorkDir   string
}

// restoreCheckpoint is the work directory's record.
type restoreCheckpoint struct {
	BackupID string                   `json:"backup_id"`
	Tables   map[string]*restoreTable `json:"tables"` // by target name
}

type restoreTable struct {
	SourceID uint64            `json:"source_id"`
	TableID  uint64            `json:"table_id"` // created in the target
	Split    bool              `json:"split"`
	Done     map[int]*pieceSum `json:"done"` // piece index → its sums
}

type pieceSum struct {
	Cells  uint64 `json:"cells"`
	Digest uint64 `json:"digest"`
}

type link struct {
	st *storage
	m  *Manifest
}

// Restore restores a backup (and its chain) into the cluster.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreSummary, error) {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.As != "" && len(o.Tables) != 1 {
		return nil, errors.New("backup: --as needs exactly one --table")
	}
	started := time.Now()
	chain, err := openChain(ctx, o.From)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, l := range chain {
			l.st.close()
		}
	}()
	last := chain[len(chain)-1].m
	tables, err := pickTables(last, o.Tables)
	if err != nil {
		return nil, err
	}
	if o.WorkDir == "" {
		o.WorkDir = "shale-restore-" + last.ID
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	cp, resumed, err := loadRestoreCheckpoint(o.WorkDir, last.ID)
	if err != nil {
		return nil, err
	}
	pd, err := pdclient.New(o.PD, 0, pdclient.WithTLS(o.TLS))
	if err != nil {
		return nil, err
	}
	defer pd.Close()
	r := &restorer{o: o, chain: chain, cp: cp, pd: pd, started: started}
	sum := &RestoreSummary{From: o.From, Timestamp: last.Timestamp, Chain: len(chain), Resumed: resumed, WorkDir: o.WorkDir}
	stop := runReporter(ctx, o.Progress, o.ProgressInterval, func(final bool) Progress {
		p := r.progress()
		if final {
			p.Phase = "done"
		}
		return p
	})
	defer stop()
	var digest uint64
	for _, t := range tables {
		name := t.Name
		if o.As != "" {
			name = o.As
		}
		d, err := r.restoreTable(ctx, t, name)
		if err != nil {
			return nil, err
		}
		digest += d
		sum.Tables = append(sum.Tables, name)
	}
	stop()
	sum.Cells, sum.Bytes, sum.SSTs = r.cells.Load(), r.bytes.Load(), r.ssts.Load()
	sum.Digest = fmt.Sprintf("%016x", digest)
	sum.Duration = time.Since(started)
	return sum, nil
}

// openChain opens a backup and, for an incremental, its parents back to
// the full one; the result starts with the full backup.
func openChain(ctx context.Context, url string) ([]link, error) {
	var chain []link
	for url != "" {
		if len(chain) > 1000 {
			return nil, errors.New("backup: a chain of more than 1000 backups (a loop?)")
		}
		st, err := openStorage(ctx, url, false)
		if err != nil {
			closeChain(chain)
			return nil, err
		}
		m, err := readManifest(ctx, st)
		if err != nil {
			st.close()
			closeChain(chain)
			return nil, err
		}
		if len(chain) > 0 {
			child := chain[0].m
			if child.ParentID != m.ID {
				st.close()
				closeChain(chain)
				return nil, fmt.Errorf("backup: %s is not the backup %s was taken on top of (id %s, expected %s)", url, chain[0].st.url, m.ID, child.ParentID)
			}
			if m.Timestamp != child.Since {
				st.close()
				closeChain(chain)
				return nil, fmt.Errorf("backup: %s is at timestamp %d, but %s continues from %d", url, m.Timestamp, chain[0].st.url, child.Since)
			}
		}
		chain = append([]link{{st, m}}, chain...)
		url = m.Parent
	}
	return chain, nil
}

func closeChain(chain []link) {
	for _, l := range chain {
		l.st.close()
	}
}

func pickTables(m *Manifest, names []string) ([]*Table, error) {
	if len(names) == 0 {
		return m.Tables, nil
	}
	var out []*Table
	for _, n := range names {
		found := false
		for _, t := range m.Tables {
			if t.Name == n {
				out = append(out, t)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("backup: the backup holds no table %q", n)
		}
	}
	return out, nil
}

const restoreCheckpointName = "restore.json"

func loadRestoreCheckpoint(dir, backupID string) (*restoreCheckpoint, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, restoreCheckpointName))
	if errors.Is(err, os.ErrNotExist) {
		return &restoreCheckpoint{BackupID: backupID, Tables: map[string]*restoreTable{}}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("backup: %w", err)
	}
	cp := &restoreCheckpoint{}
	if err := json.Unmarshal(data, cp); err != nil {
		return nil, false, fmt.Errorf("backup: the restore checkpoint %s is unreadable (%v); remove the work directory to start over", filepath.Join(dir, restoreCheckpointName), err)
	}
	if cp.BackupID != backupID {
		return nil, false, fmt.Errorf("backup: work directory %s belongs to a restore of backup %s, not %s; use another --work-dir", dir, cp.BackupID, backupID)
	}
	if cp.Tables == nil {
		cp.Tables = map[string]*restoreTable{}
	}
	return cp, true, nil
}

type restorer struct {
	o       RestoreOptions
	chain   []link
	pd      *pdclient.Client
	started time.Time

	mu sync.Mutex // cp and its file
	cp *restoreCheckpoint

	pieces, pending, cells, bytes, ssts, files atomic.Int64
}

func (r *restorer) progress() Progress {
	return Progress{Phase: "restore", Pieces: r.pieces.Load(), Pending: r.pending.Load(), Files: r.files.Load(), Bytes: r.bytes.Load(), Cells: r.cells.Load(), Elapsed: time.Since(r.started)}
}

// save writes the checkpoint atomically. Callers hold r.mu.
func (r *restorer) saveLocked() error {
	data, err := json.Marshal(r.cp)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(r.o.WorkDir, restoreCheckpointName), data, 0o644)
}

// createTable creates the target table, or finds the one an earlier run
// of this restore created.
func (r *restorer) createTable(ctx context.Context, t *Table, name string) (*restoreTable, *metapb.TableSchema, error) {
	schema, err := t.schema()
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	rt := r.cp.Tables[name]
	r.mu.Unlock()
	resp, err := r.pd.GetTable(ctx, &pdpb.GetTableRequest{Name: name})
	exists := err == nil && resp.Table != nil
	if err != nil && status.Code(err) != codes.NotFound {
		return nil, nil, fmt.Errorf("backup: looking up table %q: %w", name, err)
	}
	if exists {
		if rt != nil && rt.TableID == resp.Table.TableId {
			return rt, resp.Table, nil
		}
		// Every cluster has the raw "kv" table: an empty table of the
		// same name is taken over, anything else refused.
		empty, err := r.tableEmpty(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		if !empty {
			return nil, nil, fmt.Errorf("backup: table %q already exists in the cluster and holds data; restore into an empty cluster or use --as NEW_NAME", name)
		}
		rt = &restoreTable{SourceID: t.ID, TableID: resp.Table.TableId, Done: map[int]*pieceSum{}}
		r.mu.Lock()
		r.cp.Tables[name] = rt
		err = r.saveLocked()
		r.mu.Unlock()
		return rt, resp.Table, err
	}
	if rt != nil && rt.TableID != 0 {
		return nil, nil, fmt.Errorf("backup: table %q, which this restore created (id %d), was dropped; remove the work directory %s to start over", name, rt.TableID, r.o.WorkDir)
	}
	cr, err := r.pd.CreateTable(ctx, &pdpb.CreateTableRequest{Name: name, Families: schema.Families, SqlSchema: schema.SqlSchema})
	if err != nil {
		return nil, nil, fmt.Errorf("backup: creating table %q: %w", name, err)
	}
	rt = &restoreTable{SourceID: t.ID, TableID: cr.Table.TableId, Done: map[int]*pieceSum{}}
	r.mu.Lock()
	r.cp.Tables[name] = rt
	err = r.saveLocked()
	r.mu.Unlock()
	return rt, cr.Table, err
}

func (r *restorer) tableEmpty(ctx context.Context, name string) (bool, error) {
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: r.o.PD, TLS: r.o.TLS, Logger: r.o.Logger})
	if err != nil {
		return false, err
	}
	defer kv.Close()
	tbl, err := kv.Table(ctx, name)
	if err != nil {
		return false, err
	}
	sc := tbl.Scan(ctx, kvclient.ScanOptions{Limit: 1, Read: []kvclient.ReadOption{kvclient.Digest()}})
	defer sc.Close()
	has := sc.Next()
	return !has, sc.Err()
}

// level is one backup of the chain, for one table.
type level struct {
	st    *storage
	table *Table
}

// restoreTable restores one table and returns its verified digest.
func (r *restorer) restoreTable(ctx context.Context, t *Table, name string) (uint64, error) {
	last := r.chain[len(r.chain)-1]
	rt, target, err := r.createTable(ctx, t, name)
	if err != nil {
		return 0, err
	}
	ing, err := importer.NewCellIngester(ctx, importer.CellIngesterOptions{PD: r.o.PD, TLS: r.o.TLS, Table: name, MaxTimestamp: last.m.Timestamp, SSTBytes: r.o.SSTBytes, Logger: r.o.Logger})
	if err != nil {
		return 0, err
	}
	defer ing.Close()
	// The chain's levels holding this table: from the newest back to the
	// last full backup of it.
	var levels []level
	for i := len(r.chain) - 1; i >= 0; i-- {
		lt := findTable(r.chain[i].m, t.ID)
		if lt == nil {
			break
		}
		levels = append([]level{{r.chain[i].st, lt}}, levels...)
		if lt.Since == 0 {
			break
		}
	}
	if len(levels) == 0 || levels[0].table.Since != 0 {
		return 0, fmt.Errorf("backup: the chain of %s holds no full backup of table %q", last.st.url, t.Name)
	}
	rekey := func(k []byte) ([]byte, error) {
		c, err := keys.DecodeCellKey(k)
		if err != nil {
			return nil, err
		}
		if c.TableID != t.ID {
			return nil, fmt.Errorf("a cell of table %d in a file of table %d", c.TableID, t.ID)
		}
		return keys.CellKey(target.TableId, c.Row, c.Family, c.Qualifier, c.Timestamp), nil
	}
	newest := levels[len(levels)-1].table
	if !rt.Split {
		var rows [][]byte
		for _, p := range newest.Pieces {
			if _, row, err := keys.DecodeRowKey(p.Start); err == nil && len(row) > 0 {
				rows = append(rows, keys.RowKey(target.TableId, row))
			}
		}
		if err := ing.SplitAndScatter(ctx, rows); err != nil {
			r.o.Logger.Warn("splitting the restored table failed; ingesting anyway", "table", name, "err", err)
		}
		r.mu.Lock()
		rt.Split = true
		err := r.saveLocked()
		r.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	// Pieces of the newest backup, Parallel at once.
	var todo []int
	for i := range newest.Pieces {
		r.mu.Lock()
		_, done := rt.Done[i]
		r.mu.Unlock()
		if !done {
			todo = append(todo, i)
		} else {
			r.pieces.Add(1)
		}
	}
	r.pending.Add(int64(len(todo)))
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < r.o.Parallel; w++ {
		wg.Add(1)
		go func() { //stop:joined below
			defer wg.Done()
			for i := range work {
				ps, err := r.restorePiece(ctx, ing, levels, i, rekey)
				if err == nil {
					r.mu.Lock()
					rt.Done[i] = ps
					err = r.saveLocked()
					r.mu.Unlock()
				}
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					cancel()
					continue
				}
				r.pieces.Add(1)
				r.pending.Add(-1)
				if r.o.Hook != nil {
					r.o.Hook("piece")
				}
			}
		}()
	}
feed:
	for _, i := range todo {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return r.verifyTable(ctx, ing.Client(), name, newest, rt)
}

func findTable(m *Manifest, id uint64) *Table {
	for _, t := range m.Tables {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// restorePiece merges the chain's cells of piece i of the newest level
// and ingests them; it returns the sums of what it ingested, which must
// equal the manifest's for the piece.
func (r *restorer) restorePiece(ctx context.Context, ing *importer.CellIngester, levels []level, i int, rekey func([]byte) ([]byte, error)) (*pieceSum, error) {
	top := levels[len(levels)-1]
	piece := top.table.Pieces[i]
	rowOf := keys.RowPrefix
	var data, keyFiles []*File
	for _, f := range piece.Files {
		if f.Kind == "keys" {
			keyFiles = append(keyFiles, f)
		} else {
			data = append(data, f)
		}
	}
	// Stream 0 is the newest level's cells; then older levels' (only
	// their cells that the newest key list names are kept).
	streams := []*cellIter{newCellIter(ctx, top.st, data, piece.Start, piece.End, rowOf)}
	var kept *cellIter
	if top.table.Since > 0 {
		kept = newCellIter(ctx, top.st, keyFiles, piece.Start, piece.End, rowOf)
		for l := len(levels) - 2; l >= 0; l-- {
			var files []*File
			for _, p := range levels[l].table.Pieces {
				if len(p.End) > 0 && bytes.Compare(p.End, piece.Start) <= 0 || bytes.Compare(p.Start, piece.End) >= 0 {
					continue
				}
				for _, f := range p.Files {
					if f.Kind != "keys" {
						files = append(files, f)
					}
				}
			}
			streams = append(streams, newCellIter(ctx, levels[l].st, files, piece.Start, piece.End, rowOf))
		}
	}
	defer func() {
		for _, s := range streams {
			s.close()
		}
		if kept != nil {
			kept.close()
		}
	}()
	live := make([]bool, len(streams))
	for s, it := range streams {
		live[s] = it.next()
		if it.err != nil {
			return nil, it.err
		}
	}
	keptLive := false
	if kept != nil {
		keptLive = kept.next()
		if kept.err != nil {
			return nil, kept.err
		}
	}
	target := r.o.SSTBytes
	if target <= 0 {
		target = 8 << 20
	}
	var (
		chunk    []importer.Cell
		size     int
		lastRow  []byte
		sum      pieceSum
		digester keys.CellDigester
	)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		st, err := ing.Ingest(ctx, chunk)
		if err != nil {
			return err
		}
		r.ssts.Add(st.SSTs)
		r.cells.Add(st.Cells)
		chunk, size = nil, 0
		return nil
	}
	for {
		// The smallest key among the live streams; on a tie the newest
		// level (lowest index) wins and the others skip it.
		best := -1
		for s := range streams {
			if live[s] && (best < 0 || bytes.Compare(streams[s].key, streams[best].key) < 0) {
				best = s
			}
		}
		if best < 0 {
			break
		}
		key := bytes.Clone(streams[best].key)
		val := bytes.Clone(streams[best].val)
		keep := true
		if best > 0 {
			for keptLive && bytes.Compare(kept.key, key) < 0 {
				keptLive = kept.next()
			}
			if kept.err != nil {
				return nil, kept.err
			}
			keep = keptLive && bytes.Equal(kept.key, key)
		}
		for s := range streams {
			if live[s] && bytes.Equal(streams[s].key, key) {
				live[s] = streams[s].next()
				if streams[s].err != nil {
					return nil, streams[s].err
				}
			}
		}
		if !keep {
			continue
		}
		c, err := keys.DecodeCellKey(key)
		if err != nil {
			return nil, err
		}
		nk, err := rekey(key)
		if err != nil {
			return nil, err
		}
		sum.Cells++
		sum.Digest += digester.CellDigest(c.Row, c.Family, c.Qualifier, val)
		row, _ := rowOf(nk)
		if size >= target && !bytes.Equal(row, lastRow) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		lastRow = row
		chunk = append(chunk, importer.Cell{Key: nk, Value: val})
		size += len(nk) + len(val)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for _, s := range streams {
		r.bytes.Add(s.read)
	}
	if kept != nil {
		r.bytes.Add(kept.read)
	}
	if sum.Cells != piece.Cells || sum.Digest != piece.Digest {
		return nil, fmt.Errorf("backup: the range at %x restored %d cells (digest %016x), but the manifest of %s records %d (digest %016x): the backup chain is inconsistent",
			piece.Start, sum.Cells, sum.Digest, top.st.url, piece.Cells, piece.Digest)
	}
	return &sum, nil
}

// verifyTable compares the restored table, digested by the tablet
// servers, with the manifest.
func (r *restorer) verifyTable(ctx context.Context, kv *kvclient.Client, name string, t *Table, rt *restoreTable) (uint64, error) {
	tbl, err := kv.Table(ctx, name)
	if err != nil {
		return 0, err
	}
	sc := tbl.Scan(ctx, kvclient.ScanOptions{Read: []kvclient.ReadOption{kvclient.MaxVersions(math.MaxUint32), kvclient.Digest()}})
	defer sc.Close()
	var cells, digest uint64
	for sc.Next() {
		row := sc.Row()
		cells += uint64(row.CellCount)
		digest += row.CellDigest
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("backup: verifying table %q: %w", name, err)
	}
	if got := fmt.Sprintf("%016x", digest); got != t.Digest || cells != t.Cells {
		return 0, fmt.Errorf("backup: verification of table %q failed: the cluster holds %d cells (digest %s), the backup %d (digest %s); were there writes to it during the restore?", name, cells, got, t.Cells, t.Digest)
	}
	return digest, nil
}
