package store_test

// Bulk ingest (ingest.go): SSTs uploaded to the leader and ingested through
// the raft log, on a real three-store cluster.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

const ingestTS = 1_000_000

// buildSST makes an SST of TestTable rows prefix000.. with f:q = "v<i>".
func buildSST(t testing.TB, prefix string, n int, family string) (*importer.SST, [][]byte) {
	t.Helper()
	b := importer.NewSSTBuilder()
	var cells [][]byte
	for i := 0; i < n; i++ {
		k := keys.CellKey(storetest.TestTable.TableId, []byte(fmt.Sprintf("%s%03d", prefix, i)), family, []byte("q"), ingestTS)
		if err := b.Add(k, []byte(fmt.Sprintf("v%d", i)), ingestTS); err != nil {
			t.Fatal(err)
		}
		cells = append(cells, k)
	}
	sst, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return sst, cells
}

func ingestEnv(t *testing.T) (*storetest.Cluster, *metapb.TabletDescriptor, context.Context) {
	c := storetest.Start(t, 3, nil)
	c.PutSchema(storetest.TestTable)
	// The tablet holds rows [b, m) of the table.
	desc := c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c, desc, ctx
}

// followerOf returns a store of ingestEnv's tablet other than leader.
func followerOf(leader uint64) uint64 {
	if leader == 1 {
		return 2
	}
	return 1
}

// uploadAndIngest stages sst on the leader and ingests it. Like the
// importer, it ingests again after "result unknown" (the leader's
// ProposalTimeout passed, which a multi-MiB entry may need on a loaded
// machine): re-applying an ingest is harmless. ctx bounds the whole.
func uploadAndIngest(ctx context.Context, c *storetest.Cluster, tablet uint64, epoch *metapb.Epoch, sst *importer.SST) error {
	for {
		err := c.Call(ctx, tablet, func(cl kvpb.TabletClient) error {
			if _, err := importer.UploadSST(ctx, cl, tablet, sst); err != nil {
				return err
			}
			_, err := cl.IngestSST(ctx, importer.IngestRequest(tablet, epoch, storetest.TestTable.TableId, sst))
			return err
		})
		ambiguous := status.Code(err) == codes.Unknown && strings.HasPrefix(status.Convert(err).Message(), "result unknown")
		if !ambiguous || ctx.Err() != nil {
			return err
		}
	}
}

// TestIngestSSTReachesEveryReplica: a follower that is down during the
// ingest gets the cells from the log when it returns, and the leader keeps
// them across a restart (re-applying the entry is harmless).
func TestIngestSSTReachesEveryReplica(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	down := followerOf(leader)
	c.Stop(down)
	sst, cells := buildSST(t, "c", 200, "f")
	if err := uploadAndIngest(ctx, c, 1, desc.Epoch, sst); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	for i := 0; i < 200; i += 37 {
		if err := c.MustRead(ctx, 1, fmt.Sprintf("c%03d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if staged := c.Nodes[leader].Store.StagedFilesForTest(); len(staged) != 0 {
		t.Fatalf("staged files left after a successful ingest: %v", staged)
	}
	// A write after the ingest orders after the imported cells.
	if err := c.Put(ctx, 1, "c005", "newer"); err != nil {
		t.Fatal(err)
	}
	if err := c.MustRead(ctx, 1, "c005", "newer"); err != nil {
		t.Fatal(err)
	}

	c.Restart(down)
	testutils.SucceedsSoon(t, func() error {
		for _, k := range cells {
			ok, err := c.Nodes[down].Store.HasCellForTest(k)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("store %d lacks cell %x", down, k)
			}
		}
		return nil
	})
	c.Stop(leader)
	c.Restart(leader)
	for i := 0; i < 200; i += 41 {
		want := fmt.Sprintf("v%d", i)
		if i == 5 {
			want = "newer"
		}
		if err := c.MustRead(ctx, 1, fmt.Sprintf("c%03d", i), want); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range cells {
		ok, err := c.Nodes[leader].Store.HasCellForTest(k)
		if err != nil || !ok {
			t.Fatalf("store %d lost cell %x after restart (err %v)", leader, k, err)
		}
	}
}

// TestIngestSSTRejects: what the leader refuses before proposing.
func TestIngestSSTRejects(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	cl := c.Nodes[leader].Client
	tid := storetest.TestTable.TableId

	// Rows past the tablet's end ("m"): KeyNotInTablet, a routing error
	// the importer answers by re-cutting the file.
	out, _ := buildSST(t, "x", 10, "f")
	if _, err := importer.UploadSST(ctx, cl, 1, out); err != nil {
		t.Fatal(err)
	}
	_, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, tid, out))
	if _, ok := errs.As[*errorpb.KeyNotInTablet](err); !ok {
		t.Fatalf("out-of-range SST: got %v, want KeyNotInTablet", err)
	}

	// A file whose bytes do not match the checksum it is uploaded under.
	good, _ := buildSST(t, "c", 10, "f")
	bad := &importer.SST{Data: append([]byte(nil), good.Data...), Checksum: good.Checksum}
	bad.Data[len(bad.Data)/2] ^= 0xff
	if _, err := importer.UploadSST(ctx, cl, 1, bad); status.Code(err) != codes.DataLoss {
		t.Fatalf("corrupted upload: got %v, want DataLoss", err)
	}
	// The same, checked with the CRC-32C the importer sends.
	bad.CRC32C = good.CRC32C
	if good.CRC32C == 0 {
		t.Fatal("the builder left the SST's CRC-32C unset")
	}
	if _, err := importer.UploadSST(ctx, cl, 1, bad); status.Code(err) != codes.DataLoss {
		t.Fatalf("corrupted upload with a CRC-32C: got %v, want DataLoss", err)
	}
	// Never uploaded: NotFound, upload first.
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, tid, good)); status.Code(err) != codes.NotFound || errs.Detail(err) != nil {
		t.Fatalf("ingest of an unstaged file: got %v, want plain NotFound", err)
	}
	if _, err := importer.UploadSST(ctx, cl, 1, good); err != nil {
		t.Fatal(err)
	}
	// A stale epoch.
	stale := &metapb.Epoch{Version: desc.Epoch.Version - 1, ConfVersion: desc.Epoch.ConfVersion}
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, stale, tid, good)); err == nil {
		t.Fatal("ingest at a stale epoch succeeded")
	} else if _, ok := errs.As[*errorpb.EpochMismatch](err); !ok {
		t.Fatalf("stale epoch: got %v, want EpochMismatch", err)
	}
	// Declarations that do not match the file.
	req := importer.IngestRequest(1, desc.Epoch, tid, good)
	req.KeyCount++
	if _, err := cl.IngestSST(ctx, req); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("wrong key count: got %v, want InvalidArgument", err)
	}
	req = importer.IngestRequest(1, desc.Epoch, tid, good)
	req.MaxTimestamp = ingestTS - 1
	if _, err := cl.IngestSST(ctx, req); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("cells above max timestamp: got %v, want InvalidArgument", err)
	}
	// An unknown family.
	nofam, _ := buildSST(t, "d", 3, "nope")
	if _, err := importer.UploadSST(ctx, cl, 1, nofam); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, tid, nofam)); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown family: got %v, want InvalidArgument", err)
	}
	// Values without the store's envelope (an SST from an older importer).
	raw := rawValueSST(t, "e", 3)
	if _, err := importer.UploadSST(ctx, cl, 1, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, tid, raw)); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "envelope") {
		t.Fatalf("values without the envelope: got %v, want InvalidArgument naming the envelope", err)
	}
	// Too big.
	huge := &importer.SST{Data: make([]byte, 17<<20), Checksum: make([]byte, 32)}
	if _, err := importer.UploadSST(ctx, cl, 1, huge); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("oversized upload: got %v, want InvalidArgument", err)
	}
	// Nothing of the rejected files reached the engine; the good one still
	// ingests.
	if _, _, err := c.Read(ctx, 1, "c000"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Read(ctx, 1, "c000"); ok {
		t.Fatal("a rejected SST left cells behind")
	}
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, tid, good)); err != nil {
		t.Fatal(err)
	}
	if err := c.MustRead(ctx, 1, "c009", "v9"); err != nil {
		t.Fatal(err)
	}
}

// TestIngestSSTApplyChecks: commands that reach the log are checked again
// at apply time, identically on every replica.
func TestIngestSSTApplyChecks(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	s := c.Nodes[leader].Store
	sst, cells := buildSST(t, "e", 5, "f")
	cmd := func() *raftcmdpb.IngestSSTCommand {
		return &raftcmdpb.IngestSSTCommand{TableId: storetest.TestTable.TableId, Checksum: sst.Checksum, Data: append([]byte(nil), sst.Data...),
			Smallest: sst.Smallest, Largest: sst.Largest, KeyCount: sst.KeyCount, MaxTimestamp: sst.MaxTimestamp}
	}
	corrupt := cmd()
	corrupt.Data[10] ^= 1
	if err := s.ProposeIngestForTest(ctx, 1, desc.Epoch, corrupt); status.Code(err) != codes.DataLoss {
		t.Fatalf("corrupted entry: got %v, want DataLoss", err)
	}
	outside := cmd()
	outside.Largest = keys.CellKey(storetest.TestTable.TableId, []byte("z"), "f", []byte("q"), ingestTS)
	if err := s.ProposeIngestForTest(ctx, 1, desc.Epoch, outside); err == nil {
		t.Fatal("entry spanning past the tablet applied")
	} else if _, ok := errs.As[*errorpb.KeyNotInTablet](err); !ok {
		t.Fatalf("entry spanning past the tablet: got %v, want KeyNotInTablet", err)
	}
	if err := s.ProposeIngestForTest(ctx, 1, &metapb.Epoch{Version: 9, ConfVersion: 9}, cmd()); err == nil {
		t.Fatal("entry at a foreign epoch applied")
	} else if _, ok := errs.As[*errorpb.EpochMismatch](err); !ok {
		t.Fatalf("entry at a foreign epoch: got %v, want EpochMismatch", err)
	}
	for id, n := range c.Nodes {
		for _, k := range cells {
			if ok, err := n.Store.HasCellForTest(k); err != nil || ok {
				t.Fatalf("store %d holds cell %x of a rejected entry (err %v)", id, k, err)
			}
		}
	}
}

// TestIngestTruncatesLog: megabytes of applied ingest entries make every
// replica truncate its raft log soon after (well before the entry-count
// rule would), so the carried SSTs do not stay in the log.
func TestIngestTruncatesLog(t *testing.T) {
	c := storetest.Start(t, 3, func(o *store.Options) { o.Knobs.IngestTruncateBytes = testIngestTruncateBytes })
	c.PutSchema(storetest.TestTable)
	desc := c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.WaitLeader(1)
	checkIngestTruncates(t, c, desc, ctx, nil)
}

// TestIngestTruncatesLogWithoutTicks: a replica truncates after applying
// an ingest even if it never ticks again. Stores 2 and 3 never tick here,
// as a follower that quiesced in the Ready that applied the ingest (the
// leader's quiesce heartbeat came with the commit, as it does when the
// follower is slow under load): waiting for the next tick left the SST in
// its log until the tablet woke up.
//
// Every store runs on a manual clock. Store 1 is elected by a campaign and
// does not tick during the ingest either: a leader that ticks steps down
// (CheckQuorum) when both followers' Ready loops spend an election timeout
// writing the ingest entry, as they do on a loaded machine, and
// followers that never tick never elect anyone again. Afterwards store 1
// ticks (its own truncation waits for the followers' acknowledgements), a
// few ticks against an election timeout it cannot reach.
func TestIngestTruncatesLogWithoutTicks(t *testing.T) {
	const tickInterval = 20 * time.Millisecond
	clocks := map[uint64]*testingclock.FakeClock{}
	for id := uint64(1); id <= 3; id++ {
		clocks[id] = testingclock.NewFakeClock(time.Now())
	}
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.Knobs.IngestTruncateBytes = testIngestTruncateBytes
		o.Clock = clocks[o.StoreID]
		o.TickInterval = tickInterval
		o.ElectionTicks = 1 << 20
		// A store drops votes for an election timeout after it starts
		// (lease safety); the followers must vote for store 1 at once.
		o.DisableLeaseReads = true
		// Leadership cannot move here, so an ingest slower than the
		// client's wait is still in flight; uploadAndIngest would propose
		// another large entry behind it, slowing both.
		o.ProposalTimeout = time.Minute
	})
	c.PutSchema(storetest.TestTable)
	desc := &metapb.TabletDescriptor{TabletId: 1, StartKey: keys.RowKey(storetest.TestTable.TableId, []byte("b")), EndKey: keys.RowKey(storetest.TestTable.TableId, []byte("m")),
		Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for id := uint64(1); id <= 3; id++ {
		desc.Replicas = append(desc.Replicas, &metapb.Replica{ReplicaId: id, StoreId: id})
	}
	for id, n := range c.Nodes {
		if err := n.Store.BootstrapTablet(desc); err != nil {
			t.Fatalf("bootstrap on store %d: %v", id, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Nodes[1].Store.CampaignForTest(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if l := c.WaitLeader(1); l != 1 {
		t.Fatalf("store %d leads; only store 1 campaigned", l)
	}
	// Store 1 ticks from here on, one tick per poll.
	var stepped uint64
	tick := func() {
		s := c.Nodes[1].Store
		testutils.Eventually(t, "store 1 took its tick", func() bool { return s.TicksForTest() == stepped })
		clocks[1].Step(tickInterval)
		stepped++
	}
	checkIngestTruncates(t, c, desc, ctx, tick)
	for _, id := range []uint64{2, 3} {
		if n := c.Nodes[id].Store.TicksForTest(); n != 0 {
			t.Fatalf("store %d ticked %d times", id, n)
		}
	}
}

// testIngestTruncateBytes replaces the stores' 4 MiB ingest truncation
// threshold in the truncation tests (TestingKnobs.IngestTruncateBytes):
// the rule is the same, and a 400 KiB SST reaches it without writing
// megabytes to every replica's log under the race detector.
const testIngestTruncateBytes = 256 << 10

// checkIngestTruncates ingests a carried SST larger than
// testIngestTruncateBytes into tablet 1 and waits until every replica's
// raft log starts past where it did before. beforePoll, when not nil, runs
// before each check (a manual clock step).
func checkIngestTruncates(t *testing.T, c *storetest.Cluster, desc *metapb.TabletDescriptor, ctx context.Context, beforePoll func()) {
	t.Helper()
	b := importer.NewSSTBuilder()
	val := make([]byte, 4<<10)
	rand.New(rand.NewSource(1)).Read(val) // incompressible: the SST is 100 × 4 KiB
	for i := 0; i < 100; i++ {
		k := keys.CellKey(storetest.TestTable.TableId, []byte(fmt.Sprintf("d%03d", i)), "f", []byte("q"), ingestTS)
		if err := b.Add(k, val, ingestTS); err != nil {
			t.Fatal(err)
		}
	}
	sst, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(sst.Data) < testIngestTruncateBytes {
		t.Fatalf("test SST is only %d bytes", len(sst.Data))
	}
	before := map[uint64]uint64{}
	for id, n := range c.Nodes {
		before[id] = n.Store.FirstLogIndexForTest(1)
	}
	if err := uploadAndIngest(ctx, c, 1, desc.Epoch, sst); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	testutils.SucceedsSoon(t, func() error {
		if beforePoll != nil {
			beforePoll()
		}
		for id, n := range c.Nodes {
			if got := n.Store.FirstLogIndexForTest(1); got <= before[id] {
				return fmt.Errorf("store %d: raft log still starts at %d after the ingest", id, got)
			}
		}
		return nil
	})
	if err := c.MustRead(ctx, 1, "d042", string(val)); err != nil {
		t.Fatal(err)
	}
}

// TestIngestStagingCleanup: staged files that were never ingested go away
// after StagedTTL; younger ones survive a restart (an ingest entry appended
// before it may name them).
func TestIngestStagingCleanup(t *testing.T) {
	c, _, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	cl := c.Nodes[leader].Client
	old, _ := buildSST(t, "c", 5, "f")
	if _, err := importer.UploadSST(ctx, cl, 1, old); err != nil {
		t.Fatal(err)
	}
	// A retried upload of a staged file is accepted without the bytes.
	resp, err := importer.UploadSST(ctx, cl, 1, old)
	if err != nil || !resp.AlreadyStaged {
		t.Fatalf("second upload: %v, %v; want already staged", resp, err)
	}
	staged := c.Nodes[leader].Store.StagedFilesForTest()
	if len(staged) != 1 {
		t.Fatalf("staged %v, want one file", staged)
	}
	past := time.Now().Add(-store.StagedTTL - time.Minute)
	if err := os.Chtimes(filepath.Join(c.Nodes[leader].Dir, "ingest", staged[0]), past, past); err != nil {
		t.Fatal(err)
	}
	fresh, _ := buildSST(t, "d", 5, "f")
	if _, err := importer.UploadSST(ctx, cl, 1, fresh); err != nil {
		t.Fatal(err)
	}
	c.Nodes[leader].Store.SweepStagedForTest()
	got := c.Nodes[leader].Store.StagedFilesForTest()
	if len(got) != 1 || got[0] == staged[0] {
		t.Fatalf("after the TTL: staged %v, want only the fresh file", got)
	}
	// A partial upload left by a crash is removed at restart; the staged
	// file is kept.
	partial := filepath.Join(c.Nodes[leader].Dir, "ingest", got[0]+".tmp7")
	if err := os.WriteFile(partial, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Stop(leader)
	c.Restart(leader)
	if after := c.Nodes[leader].Store.StagedFilesForTest(); len(after) != 1 || after[0] != got[0] {
		t.Fatalf("after a restart: staged %v, want %v", after, got)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatalf("partial upload %s survived the restart (stat: %v)", partial, err)
	}
}

// TestIngestSSTByReference: a file staged on every replica is ingested by
// reference (the entry names it; each replica ingests its own copy), also
// by a follower that was down when the entry committed and applies it
// after a restart; a retried entry for a file already ingested is
// recognised by its marker. A file staged on the leader only travels in
// the entry instead.
func TestIngestSSTByReference(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	down := followerOf(leader)
	sst, cells := buildSST(t, "c", 200, "f")
	for id, n := range c.Nodes {
		if _, err := importer.UploadSST(ctx, n.Client, 1, sst); err != nil {
			t.Fatalf("upload to store %d: %v", id, err)
		}
	}
	c.Stop(down)
	req := importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst)
	req.StagedStoreIds = []uint64{1, 2, 3}
	if _, err := c.Nodes[leader].Client.IngestSST(ctx, req); err != nil {
		t.Fatalf("ingest by reference: %v", err)
	}
	if err := c.MustRead(ctx, 1, "c042", "v42"); err != nil {
		t.Fatal(err)
	}
	if m := c.Nodes[leader].Store.IngestMarkersForTest(); len(m) != 1 {
		t.Fatalf("leader markers %v, want one (ingested by reference)", m)
	}
	if staged := c.Nodes[leader].Store.StagedFilesForTest(); len(staged) != 0 {
		t.Fatalf("leader kept staged files %v after ingesting them", staged)
	}
	c.Restart(down)
	testutils.SucceedsSoon(t, func() error {
		for _, k := range cells {
			if ok, err := c.Nodes[down].Store.HasCellForTest(k); err != nil || !ok {
				return fmt.Errorf("store %d lacks cell %x (err %v)", down, k, err)
			}
		}
		return nil
	})
	if staged := c.Nodes[down].Store.StagedFilesForTest(); len(staged) != 0 || len(c.Nodes[down].Store.IngestMarkersForTest()) != 1 {
		t.Fatalf("store %d after catching up: staged %v, markers %v; want none and one", down, staged, c.Nodes[down].Store.IngestMarkersForTest())
	}

	// The same entry again (an importer's retry that reached the log
	// twice): every replica finds its marker and the cells stay.
	again := &raftcmdpb.IngestSSTCommand{TableId: storetest.TestTable.TableId, Checksum: sst.Checksum, Size: uint64(len(sst.Data)),
		Smallest: sst.Smallest, Largest: sst.Largest, KeyCount: sst.KeyCount, MaxTimestamp: sst.MaxTimestamp}
	leader = c.WaitLeader(1)
	if err := c.Nodes[leader].Store.ProposeIngestForTest(ctx, 1, desc.Epoch, again); err != nil {
		t.Fatalf("retried entry: %v", err)
	}
	if err := c.MustRead(ctx, 1, "c199", "v199"); err != nil {
		t.Fatal(err)
	}

	// Staged on the leader only: the file rides in the entry, and the
	// followers, which never had it, ingest it all the same.
	carried, carriedCells := buildSST(t, "d", 50, "f")
	if _, err := importer.UploadSST(ctx, c.Nodes[leader].Client, 1, carried); err != nil {
		t.Fatal(err)
	}
	req = importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, carried)
	req.StagedStoreIds = []uint64{leader}
	if _, err := c.Nodes[leader].Client.IngestSST(ctx, req); err != nil {
		t.Fatalf("carried ingest: %v", err)
	}
	testutils.SucceedsSoon(t, func() error {
		for id, n := range c.Nodes {
			for _, k := range carriedCells {
				if ok, err := n.Store.HasCellForTest(k); err != nil || !ok {
					return fmt.Errorf("store %d lacks carried cell %x (err %v)", id, k, err)
				}
			}
			if m := n.Store.IngestMarkersForTest(); len(m) != 1 {
				return fmt.Errorf("store %d markers %v: the carried file must not leave one", id, m)
			}
		}
		return nil
	})
}

// TestIngestSSTStoreStoppedDuringIngest stops a random store (leader or
// follower) at a random instant while an SST is being ingested, brings it
// back, and checks every store ends up with every cell exactly as sent.
func TestIngestSSTStoreStoppedDuringIngest(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	rng := rand.New(rand.NewSource(int64(testutils.Seed(t))))
	for round := 0; round < 3; round++ {
		sst, cells := buildSST(t, fmt.Sprintf("c%d", round), 300, "f")
		victim := uint64(1 + rng.Intn(3))
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			// Models time passing: the stop lands at a random instant
			// of the ingest.
			time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
			c.Stop(victim)
		}()
		testutils.SucceedsSoon(t, func() error {
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			err := uploadAndIngest(ctx, c, 1, desc.Epoch, sst)
			switch status.Code(err) {
			case codes.OK:
			case codes.NotFound, codes.Unknown, codes.Unavailable, codes.Canceled, codes.DeadlineExceeded:
				// Not staged on a new leader, or the outcome is unknown:
				// ingesting again is harmless.
			default:
				t.Fatalf("round %d: %v", round, err)
			}
			return err
		})
		<-stopped
		c.Restart(victim)
		testutils.SucceedsSoon(t, func() error {
			for id, n := range c.Nodes {
				for _, k := range cells {
					ok, err := n.Store.HasCellForTest(k)
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("round %d: store %d lacks cell %x", round, id, k)
					}
				}
			}
			return nil
		})
		for i := 0; i < 300; i += 53 {
			if err := c.MustRead(ctx, 1, fmt.Sprintf("c%d%03d", round, i), fmt.Sprintf("v%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestUploadSSTRawChunks: an SST whose values do not compress is sent raw
// (the importer skips snappy) and arrives byte for byte.
func TestUploadSSTRawChunks(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	rng := rand.New(rand.NewSource(int64(testutils.Seed(t))))
	b := importer.NewSSTBuilder()
	vals := map[string]string{}
	for i := 0; i < 1500; i++ { // about 1.5 MiB: more than one upload chunk
		row := fmt.Sprintf("c%05d", i)
		v := make([]byte, 1000)
		rng.Read(v)
		vals[row] = string(v)
		if err := b.Add(keys.CellKey(storetest.TestTable.TableId, []byte(row), "f", []byte("q"), ingestTS), v, ingestTS); err != nil {
			t.Fatal(err)
		}
	}
	sst, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if sst.UploadCompressed() {
		t.Fatal("random values were snappy-compressed for the upload")
	}
	if len(sst.Data) <= 1<<20 {
		t.Fatalf("test SST is only %d bytes: one 1 MiB upload chunk", len(sst.Data))
	}
	if err := uploadAndIngest(ctx, c, 1, desc.Epoch, sst); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	for _, row := range []string{"c00000", "c00777", "c01499"} {
		if err := c.MustRead(ctx, 1, row, vals[row]); err != nil {
			t.Fatal(err)
		}
	}
	small, _ := buildSST(t, "d", 200, "f")
	if !small.UploadCompressed() {
		t.Fatal("compressible values were sent raw")
	}
}

type memWritable struct{ buf *bytes.Buffer }

func (w memWritable) Write(p []byte) error { _, err := w.buf.Write(p); return err }
func (w memWritable) Finish() error        { return nil }
func (w memWritable) Abort()               {}

// rawValueSST is buildSST's file with the values stored bare, as importers
// wrote them before the value envelope.
func rawValueSST(t *testing.T, prefix string, n int) *importer.SST {
	t.Helper()
	var buf bytes.Buffer
	w := sstable.NewWriter(memWritable{&buf}, sstable.WriterOptions{TableFormat: pebble.FormatNewest.MaxTableFormat()})
	out := &importer.SST{MaxTimestamp: ingestTS}
	for i := 0; i < n; i++ {
		k := keys.CellKey(storetest.TestTable.TableId, []byte(fmt.Sprintf("%s%03d", prefix, i)), "f", []byte("q"), ingestTS)
		require.NoError(t, w.Set(keys.DataKey(k), []byte(fmt.Sprintf("v%d", i))))
		if i == 0 {
			out.Smallest = k
		}
		out.Largest = k
		out.KeyCount++
	}
	require.NoError(t, w.Close())
	out.Data = buf.Bytes()
	sum := sha256.Sum256(out.Data)
	out.Checksum = sum[:]
	return out
}
