package importer_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/pdpb"
)

type env struct {
	t   *testing.T
	c   *testcluster.Cluster
	cl  *kvclient.Client
	ctx context.Context
}

func startEnv(t *testing.T) *env {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return &env{t: t, c: c, cl: cl, ctx: ctx}
}

func (e *env) createTable(name string) {
	e.t.Helper()
	_, err := e.cl.CreateTable(e.ctx, name, []kvclient.Family{{Name: "f"}, {Name: "g"}})
	require.NoError(e.t, err)
}

// srcRow is one source row: id is the row key; name and score go to f,
// note to g (empty note: NULL, no cell).
type srcRow struct{ id, name, score, note string }

// genRows makes n rows with awkward CSV content (commas, quotes, newlines).
func genRows(rng *rand.Rand, n int) []srcRow {
	rows := make([]srcRow, n)
	for i := range rows {
		name := fmt.Sprintf("name %d", rng.IntN(1_000_000))
		switch rng.IntN(6) {
		case 0:
			name += `, with "quotes"`
		case 1:
			name += "\nsecond line"
		}
		note := ""
		if rng.IntN(3) > 0 {
			note = strings.Repeat("n", rng.IntN(200))
		}
		rows[i] = srcRow{id: fmt.Sprintf("user%06d", rng.IntN(1<<30)) + fmt.Sprint(i), name: name, score: fmt.Sprint(rng.IntN(1000)), note: note}
	}
	return rows
}

func writeCSV(t *testing.T, path string, rows []srcRow, header bool) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := csv.NewWriter(f)
	if header {
		require.NoError(t, w.Write([]string{"id", "name", "score", "note"}))
	}
	for _, r := range rows {
		require.NoError(t, w.Write([]string{r.id, r.name, r.score, r.note}))
	}
	w.Flush()
	require.NoError(t, w.Error())
	require.NoError(t, f.Close())
}

func rawOptions(e *env, table string, inputs []string, work string) importer.Options {
	empty := ""
	return importer.Options{
		PD: e.c.PDEndpoints(), Table: table, Inputs: inputs, WorkDir: work,
		Source:     importer.SourceOptions{Format: importer.CSV, Header: true, Null: &empty},
		RowKey:     "id",
		Mappings:   []importer.Mapping{{Column: "name", Family: "f", Qualifier: "name"}, {Column: "score", Family: "f", Qualifier: "score"}, {Column: "note", Family: "g", Qualifier: "note"}},
		SSTBytes:   16 << 10, // many SSTs
		SplitBytes: 24 << 10, // several tablets
	}
}

// checkTable compares the whole table with rows: every row, every cell,
// one version each, at the job's timestamp, nothing else.
func (e *env) checkTable(table string, rows []srcRow, ts int64) {
	e.t.Helper()
	e.checkImported(table, rows, ts, "")
}

// checkImported is checkTable looking only at cells at ts, and skipping
// rows whose key starts with ignore (written by others during the import).
func (e *env) checkImported(table string, rows []srcRow, ts int64, ignore string) {
	e.t.Helper()
	want := map[string]srcRow{}
	for _, r := range rows {
		want[r.id] = r
	}
	tbl, err := e.cl.Table(e.ctx, table)
	require.NoError(e.t, err)
	read := []kvclient.ReadOption{kvclient.MaxVersions(10)}
	if ignore != "" {
		read = append(read, kvclient.TimeRange(ts, ts+1))
	}
	sc := tbl.Scan(e.ctx, kvclient.ScanOptions{Read: read})
	defer sc.Close()
	seen := 0
	for sc.Next() {
		row := sc.Row()
		if ignore != "" && (strings.HasPrefix(string(row.Key), ignore) || len(row.Cells) == 0) {
			continue
		}
		r, ok := want[string(row.Key)]
		require.True(e.t, ok, "unexpected row %q", row.Key)
		seen++
		cells := map[string]string{}
		for _, c := range row.Cells {
			col := c.Family + ":" + string(c.Qualifier)
			_, dup := cells[col]
			require.False(e.t, dup, "row %q has two versions of %s", row.Key, col)
			require.Equal(e.t, ts, c.Timestamp, "row %q %s", row.Key, col)
			cells[col] = string(c.Value)
		}
		exp := map[string]string{"f:name": r.name, "f:score": r.score}
		if r.note != "" {
			exp["g:note"] = r.note
		}
		require.Equal(e.t, exp, cells, "row %q", row.Key)
	}
	require.NoError(e.t, sc.Err())
	require.Equal(e.t, len(want), seen, "rows in table")
}

func TestImportRawCSVAndJSONL(t *testing.T) {
	e := startEnv(t)
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	e.createTable("users")
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.Mkdir(in, 0o755))
	rows := genRows(rng, 600)
	writeCSV(t, filepath.Join(in, "a.csv"), rows[:300], true)
	writeCSV(t, filepath.Join(in, "b.csv"), rows[300:], true)

	var phases sync.Map
	o := rawOptions(e, "users", []string{in}, filepath.Join(dir, "work"))
	o.Progress = func(p importer.Progress) { phases.Store(p.Phase, true) }
	o.Logger = slog.Default()
	o.ProgressInterval = time.Millisecond
	var sstMu sync.Mutex
	var ingested [][2][]byte // row spans of the ingested SSTs
	o.Hook = func(ev importer.Event) {
		if ev.Name == "ingested" {
			lo, err1 := keys.DecodeCellKey(ev.SST.Smallest)
			hi, err2 := keys.DecodeCellKey(ev.SST.Largest)
			require.NoError(t, errors.Join(err1, err2))
			sstMu.Lock()
			ingested = append(ingested, [2][]byte{bytes.Clone(lo.Row), bytes.Clone(hi.Row)})
			sstMu.Unlock()
		}
	}
	sum, err := importer.Run(e.ctx, o)
	require.NoError(t, err)
	t.Log(sum)
	require.EqualValues(t, 600, sum.Rows)
	require.EqualValues(t, 600, sum.VerifiedRows)
	require.NotEmpty(t, sum.Checksum)
	require.Equal(t, sum.Checksum, sum.VerifiedChecksum)
	require.Greater(t, sum.SSTs, int64(3))
	_, sawDone := phases.Load("done")
	require.True(t, sawDone)
	e.checkTable("users", rows, sum.Timestamp)
	tablets, err := mustTable(e, "users").Tablets(e.ctx)
	require.NoError(t, err)
	require.Greater(t, len(tablets), 2, "the import split the table")
	// SSTs are cut at the planned split points: none spans a boundary
	// of the tablets the import split the table into.
	for _, tab := range tablets[1:] {
		for _, span := range ingested {
			require.False(t, bytes.Compare(span[0], tab.StartRow) < 0 && bytes.Compare(tab.StartRow, span[1]) <= 0,
				"an SST of rows %q..%q spans the split point %q", span[0], span[1], tab.StartRow)
		}
	}

	// Running the finished job again does nothing.
	again, err := importer.Run(e.ctx, o)
	require.NoError(t, err)
	require.True(t, again.Resumed)
	require.Equal(t, sum.Timestamp, again.Timestamp)

	// JSONL into another table.
	e.createTable("events")
	var b bytes.Buffer
	for _, r := range rows[:100] {
		note := "null"
		if r.note != "" {
			note = fmt.Sprintf("%q", r.note)
		}
		fmt.Fprintf(&b, "{\"id\": %q, \"name\": %q, \"score\": %s, \"note\": %s}\n", r.id, r.name, r.score, note)
	}
	jo := rawOptions(e, "events", []string{"-"}, filepath.Join(dir, "work2"))
	jo.Source = importer.SourceOptions{Format: importer.JSONL}
	jo.Stdin = &b
	sum, err = importer.Run(e.ctx, jo)
	require.NoError(t, err)
	e.checkTable("events", rows[:100], sum.Timestamp)
}

func mustTable(e *env, name string) *kvclient.Table {
	tbl, err := e.cl.Table(e.ctx, name)
	require.NoError(e.t, err)
	return tbl
}

func TestImportMalformedInput(t *testing.T) {
	e := startEnv(t)
	e.createTable("bad")
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(path, []byte("id,name,score,note\nr1,a,1,x\nr2,\"b\"c,2,y\nr3,c,3\nr4,d,4,z\n,e,5,w\n"), 0o644))

	_, err := importer.Run(e.ctx, rawOptions(e, "bad", []string{path}, filepath.Join(dir, "w1")))
	var ie *importer.InputError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, path, ie.File)
	require.Equal(t, 3, ie.Line)
	require.Equal(t, 6, ie.Column)
	require.Contains(t, err.Error(), path+":3:6:")

	o := rawOptions(e, "bad", []string{path}, filepath.Join(dir, "w2"))
	o.MaxErrors = 2
	_, err = importer.Run(e.ctx, o)
	require.ErrorAs(t, err, &ie, "three bad rows exceed --max-errors=2")
	require.Contains(t, err.Error(), path+":6:1:")

	o = rawOptions(e, "bad", []string{path}, filepath.Join(dir, "w3"))
	o.MaxErrors = 3
	sum, err := importer.Run(e.ctx, o)
	require.NoError(t, err)
	require.EqualValues(t, 3, sum.Rejected)
	require.EqualValues(t, 2, sum.Rows)
	rej, err := os.ReadFile(sum.RejectFile)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(rej)), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[0], path+":3:6: "), lines[0])
	require.True(t, strings.HasPrefix(lines[1], path+":4:"), lines[1])
	require.Contains(t, lines[2], path+":6:1: column id: row key is empty")

	jpath := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(jpath, []byte("{\"id\":\"a\",\"name\":\"x\",\"score\":1,\"note\":null}\n{\"id\":\"b\",\"name\":{\"nested\":1},\"score\":2,\"note\":null}\n"), 0o644))
	jo := rawOptions(e, "bad", []string{jpath}, filepath.Join(dir, "w4"))
	jo.Source = importer.SourceOptions{Format: importer.JSONL}
	_, err = importer.Run(e.ctx, jo)
	require.ErrorAs(t, err, &ie)
	require.Equal(t, 2, ie.Line)
	require.Equal(t, 18, ie.Column)
	require.Contains(t, err.Error(), "column name: nested JSON")

	// Duplicate row keys.
	dpath := filepath.Join(dir, "dup.csv")
	require.NoError(t, os.WriteFile(dpath, []byte("id,name,score,note\nk1,first,1,\nk2,b,2,\nk1,second,3,n\n"), 0o644))
	_, err = importer.Run(e.ctx, rawOptions(e, "bad", []string{dpath}, filepath.Join(dir, "w5")))
	require.ErrorContains(t, err, fmt.Sprintf(`duplicate row key "k1": %s:2 and %s:4`, dpath, dpath))
	e.createTable("dups")
	do := rawOptions(e, "dups", []string{dpath}, filepath.Join(dir, "w6"))
	do.OnDuplicate = "last"
	sum, err = importer.Run(e.ctx, do)
	require.NoError(t, err)
	require.EqualValues(t, 1, sum.Duplicates)
	e.checkTable("dups", []srcRow{{id: "k1", name: "second", score: "3", note: "n"}, {id: "k2", name: "b", score: "2"}}, sum.Timestamp)
}

// TestImportKilledAndResumed kills the importer (cancels its context) at
// random pipeline points, again and again, and resumes it with the same
// command: the table ends up exact, every cell once.
func TestImportKilledAndResumed(t *testing.T) {
	e := startEnv(t)
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	rows := genRows(rng, 400)
	in := filepath.Join(dir, "in.csv")
	writeCSV(t, in, rows, true)
	for round := 0; round < 3; round++ {
		table := fmt.Sprintf("resume%d", round)
		e.createTable(table)
		work := filepath.Join(dir, table)
		kills := 0
		var ts int64
		for attempt := 0; ; attempt++ {
			require.Less(t, attempt, 30, "the job never finished")
			ctx, cancel := context.WithCancel(e.ctx)
			o := rawOptions(e, table, []string{in}, work)
			killAt := -1
			if kills < 4 {
				killAt = rng.IntN(12)
			}
			n := 0
			o.Hook = func(importer.Event) {
				if n == killAt {
					cancel()
				}
				n++
			}
			// Sometimes also a kill at a random instant (it may land in the
			// parse, between pipeline points, or not at all).
			if killAt >= 0 && rng.IntN(3) == 0 {
				time.AfterFunc(time.Duration(rng.IntN(400))*time.Millisecond, cancel)
			}
			sum, err := importer.Run(ctx, o)
			cancel()
			if err != nil {
				require.True(t, errors.Is(err, context.Canceled), "attempt %d: %v", attempt, err)
				kills++
				continue
			}
			t.Logf("round %d: %d kills; %s", round, kills, sum)
			ts = sum.Timestamp
			require.EqualValues(t, len(rows), sum.Rows)
			require.Equal(t, sum.Checksum, sum.VerifiedChecksum, "checksum of the input vs. the table")
			break
		}
		e.checkTable(table, rows, ts)
	}
}

// TestImportDuringSplitsLeaderMovesAndStoreRestart: while SSTs are in
// flight, the target tablet splits under them (so they must be re-cut),
// leaders move, and a tablet server is stopped and brought back.
func TestImportDuringSplitsLeaderMovesAndStoreRestart(t *testing.T) {
	e := startEnv(t)
	seed := testutils.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	e.createTable("online")
	dir := t.TempDir()
	rows := genRows(rng, 500)
	in := filepath.Join(dir, "in.csv")
	writeCSV(t, in, rows, true)
	pd := e.c.PD()
	tbl := mustTable(e, "online")
	// The table stays writable: a writer adds rows of its own all along.
	stop := make(chan struct{})
	var live []string
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("live%05d", i)
			ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
			_, err := tbl.MutateRow(ctx, []byte(key), kvclient.SetCell("f", []byte("name"), []byte(key)))
			cancel()
			if err == nil {
				live = append(live, key)
			}
			// Models time passing: a steady trickle of live writes
			// spread over the whole import.
			time.Sleep(20 * time.Millisecond)
		}
	}()
	o := rawOptions(e, "online", []string{in}, filepath.Join(dir, "work"))
	o.SplitBytes = -1 // no pre-split: the test splits under the import
	n := 0
	stopped := -1
	o.Hook = func(ev importer.Event) {
		if ev.Name != "sst" {
			return
		}
		n++
		if n == 2 {
			// A write to an imported row during the import is newer than
			// the import's timestamp and wins.
			_, err := tbl.MutateRow(e.ctx, []byte(rows[0].id), kvclient.SetCell("f", []byte("name"), []byte("written during the import")))
			require.NoError(t, err)
		}
		switch {
		case n == 5:
			stopped = rng.IntN(len(e.c.Stores))
			t.Logf("stopping store index %d", stopped)
			e.c.StopStore(stopped)
		case n == 11 && stopped >= 0:
			t.Logf("restarting store index %d", stopped)
			e.c.StartStore(stopped)
			stopped = -1
		}
		switch n % 3 {
		case 1:
			// Split this very tablet inside the SST's rows and wait for it:
			// the ingest must be refused and the SST re-cut.
			row, err := keys.RowPrefix(ev.SST.Largest)
			require.NoError(t, err)
			// A split that does not show soon only weakens this round.
			err = testutils.Retry(e.ctx, 15*time.Second, func() error {
				resp, err := pd.GetTablet(e.ctx, &pdpb.GetTabletRequest{Key: row})
				if err != nil {
					return err
				}
				if !bytes.Equal(resp.Tablet.Tablet.StartKey, row) {
					_, _ = pd.AddOperator(e.ctx, &pdpb.AddOperatorRequest{TabletId: resp.Tablet.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_SplitKey{SplitKey: row}})
					return fmt.Errorf("tablet starts at %x", resp.Tablet.Tablet.StartKey)
				}
				return nil
			})
			if err != nil {
				t.Logf("split at %x: %v; going on", row, err)
			}
		case 2:
			resp, err := pd.GetTabletByID(e.ctx, &pdpb.GetTabletByIDRequest{TabletId: ev.TabletID})
			if err != nil || resp.Tablet == nil {
				return
			}
			for _, r := range resp.Tablet.Tablet.Replicas {
				if r.StoreId != resp.Tablet.LeaderStoreId {
					if _, err := pd.AddOperator(e.ctx, &pdpb.AddOperatorRequest{TabletId: ev.TabletID, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: r.StoreId}}); err != nil {
						t.Logf("transfer leader: %v", err)
					}
					break
				}
			}
		}
	}
	sum, err := importer.Run(e.ctx, o)
	require.NoError(t, err)
	if stopped >= 0 {
		e.c.StartStore(stopped)
	}
	t.Log(sum)
	close(stop)
	writer.Wait()
	require.Greater(t, sum.Recuts, int64(0), "no SST was re-cut")
	require.Equal(t, sum.Checksum, sum.VerifiedChecksum)
	e.checkImported("online", rows, sum.Timestamp, "live")
	r, err := tbl.Get(e.ctx, []byte(rows[0].id))
	require.NoError(t, err)
	v, _ := r.Value("f", []byte("name"))
	require.Equal(t, "written during the import", string(v))
	require.NotEmpty(t, live)
	for _, k := range live {
		r, err := tbl.Get(e.ctx, []byte(k))
		require.NoError(t, err)
		require.NotNil(t, r, "row %s written during the import is missing", k)
	}
	t.Logf("%d rows written by a concurrent writer", len(live))
}

// TestImportWorkDirLocked: a second importer on a busy work directory is
// refused before it touches anything.
func TestImportWorkDirLocked(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	require.NoError(t, os.WriteFile(in, []byte("id,name\na,b\n"), 0o644))
	work := filepath.Join(dir, "work")
	require.NoError(t, os.MkdirAll(work, 0o755))
	unlock, err := importer.LockWorkDirForTest(work)
	require.NoError(t, err)
	defer unlock()
	_, err = importer.Run(context.Background(), importer.Options{
		PD: []string{"127.0.0.1:1"}, Table: "t", Inputs: []string{in}, WorkDir: work,
		RowKey: "id", Mappings: []importer.Mapping{{Column: "name", Family: "f", Qualifier: "n"}},
	})
	require.ErrorContains(t, err, "another import is using work directory")
}
