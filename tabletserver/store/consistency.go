package store

// Consistency checks ordered by raft.
//
// The leader proposes a ComputeChecksumCommand. Every replica applies it at
// the same log position; the worker ends the apply batch right after the
// entry, commits it and takes an engine snapshot there (processReady), so
// every replica hashes exactly the same logical state. Hashing runs on the
// store's checksum workers (Options.ConsistencyCheckConcurrency, never in
// the Ready loop), paced by Options.ConsistencyCheckBytesPerSec. The leader
// collects the results over the transport (CollectChecksum), compares them
// and, when some replica disagrees with a majority, proposes a
// MarkBadReplicasCommand naming it: from then on the replica serves no
// reads or writes, sheds leadership, and the leader reports it to PD,
// which replaces it (placementdriver/schedule, ReplicaChecker).
//
// The hash is piecewise: a piece ends before a row whose key hash is 0
// modulo piece_rows, so pieces are cut by content, the same on every
// replica, and an extra or missing row changes only its own piece. A
// mismatch thus names the key spans that differ; a second round over just
// those spans samples the differing keys (bounded) for diagnosis.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/proto/transportpb"
)

const (
	// checkPieceRows is the average number of rows per hashed piece.
	checkPieceRows = 256
	// checkMaxPieces bounds one replica's answer; past it the last piece
	// takes the rest of the tablet.
	checkMaxPieces = 4096
	// checkMaxSpans and checkMaxDiffKeys bound what a mismatch reports.
	checkMaxSpans    = 16
	checkMaxDiffKeys = 16
	// checkSampleKeys bounds the keys one replica returns in a diagnosis
	// round.
	checkSampleKeys = 256
	// checkQueueLen bounds the hashing tasks waiting for a worker; a check
	// that finds the queue full fails on this replica (the leader retries
	// on a later round).
	checkQueueLen = 64
	// checkResultTTL is how long a result waits to be collected.
	checkResultTTL = 10 * time.Minute
	// checkMaxResults bounds the results kept.
	checkMaxResults = 4096
	// rateChunk is how many bytes the hasher reads between waits on the
	// rate limiter (also the limiter's burst).
	rateChunk = 256 << 10
)

// checksumTask is one replica's hashing of one check. The worker fills it
// in when it applies the command and takes the snapshot at batch end.
type checksumTask struct {
	r     *replica
	cmd   *raftcmdpb.ComputeChecksumCommand
	index uint64
	desc  *metapb.TabletDescriptor
	snap  *pebble.Snapshot
}

type checkKey struct{ tablet, id uint64 }

// checkEntry is a result, or the promise of one: done closes once res is
// set. A collector that arrives before this replica applied the command
// creates the entry and waits.
type checkEntry struct {
	done    chan struct{}
	res     *transportpb.CollectChecksumResponse
	created time.Time
}

// checker is the store's consistency-check machinery.
type checker struct {
	s       *Store
	tasks   chan *checksumTask
	metrics checkMetrics

	mu struct {
		sync.Mutex
		results map[checkKey]*checkEntry
		// lastChecked: when this store last checked each tablet it leads
		// (the periodic queue's order).
		lastChecked map[uint64]time.Time
		// lastReport is the latest check's report per tablet, for ctl.
		lastReport map[uint64]*kvpb.CheckTabletResponse
	}
}

type checkMetrics struct {
	checks       *prometheus.CounterVec
	hashedBytes  prometheus.Counter
	corruptions  prometheus.Counter
	badReplicas  prometheus.GaugeFunc
	inconsistent prometheus.GaugeFunc
}

func newChecker(s *Store) *checker {
	c := &checker{s: s, tasks: make(chan *checksumTask, checkQueueLen)}
	c.mu.results = map[checkKey]*checkEntry{}
	c.mu.lastChecked = map[uint64]time.Time{}
	c.mu.lastReport = map[uint64]*kvpb.CheckTabletResponse{}
	reg := s.opts.Registry
	c.metrics.checks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "shale", Subsystem: "store", Name: "consistency_checks_total",
		Help: "Consistency checks this store ran as leader, by result: consistent, mismatch (a replica marked bad), no_majority (tablet flagged), incomplete (a replica did not answer), failed."}, []string{"result"})
	c.metrics.hashedBytes = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shale", Subsystem: "store", Name: "consistency_check_hashed_bytes_total",
		Help: "Key and value bytes hashed by consistency checks on this store (paced by consistency-check-bytes-per-sec)."})
	c.metrics.corruptions = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "shale", Subsystem: "store", Name: "corruption_errors_total",
		Help: "Corrupt data detected by the engine (a checksum mismatch) in a replica's reads, apply or checks; the replica is marked bad and rebuilt."})
	c.metrics.badReplicas = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shale", Subsystem: "store", Name: "replicas_bad",
		Help: "Replicas on this store marked bad (corrupt, or outvoted by a consistency check) and waiting to be replaced."}, func() float64 { return float64(s.countReplicas(func(r *replica) bool { return r.isBad() })) })
	c.metrics.inconsistent = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shale", Subsystem: "store", Name: "tablets_inconsistent",
		Help: "Tablets led by this store whose last consistency check found no majority: nothing was destroyed; a person decides."}, func() float64 {
		return float64(s.countReplicas(func(r *replica) bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.mu.isLeader && r.mu.inconsistent
		}))
	})
	for _, result := range []string{"consistent", "mismatch", "no_majority", "incomplete", "failed"} {
		c.metrics.checks.WithLabelValues(result) // exported from the start
	}
	reg.MustRegister(c.metrics.checks, c.metrics.hashedBytes, c.metrics.corruptions, c.metrics.badReplicas, c.metrics.inconsistent)
	return c
}

func (s *Store) countReplicas(pred func(*replica) bool) int {
	n := 0
	for _, r := range s.replicaList() {
		if pred(r) {
			n++
		}
	}
	return n
}

// startConsistency starts the checksum workers and the periodic queue.
func (s *Store) startConsistency(ctx context.Context) error {
	for i := 0; i < s.opts.ConsistencyCheckConcurrency; i++ {
		if err := s.stopper.RunAsyncTask(ctx, "store.checksum-worker", s.checks.work); err != nil {
			return err
		}
	}
	if err := s.every(ctx, "store.bad-replica-reports", s.opts.TickInterval*time.Duration(s.opts.ElectionTicks), s.reportBadReplicas); err != nil {
		return err
	}
	if s.opts.ConsistencyCheckInterval < 0 {
		return nil
	}
	return s.every(ctx, "store.consistency-queue", checkQueueTick(s.opts.ConsistencyCheckInterval), s.checks.runDue)
}

// checkQueueTick is how often the periodic queue looks for due tablets:
// a twentieth of the interval, between 100ms and a minute.
func checkQueueTick(interval time.Duration) time.Duration {
	return min(max(interval/20, 100*time.Millisecond), time.Minute)
}

// work hashes tasks until the store stops.
func (c *checker) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			c.drain()
			return
		case t := <-c.tasks:
			res := c.compute(ctx, t)
			c.finish(checkKey{t.r.tabletID, t.cmd.CheckId}, res)
		}
	}
}

// drain releases the snapshots of tasks no worker will run (Close).
func (c *checker) drain() {
	for {
		select {
		case t := <-c.tasks:
			t.snap.Close()
			c.finish(checkKey{t.r.tabletID, t.cmd.CheckId}, &transportpb.CollectChecksumResponse{ReplicaId: t.r.replicaID, Index: t.index, Error: "store closed"})
		default:
			return
		}
	}
}

// entry returns the result slot of a check, creating it. It sweeps
// expired slots first so the map stays bounded.
func (c *checker) entry(k checkKey) *checkEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.results[k]; ok {
		return e
	}
	now := time.Now()
	if len(c.mu.results) >= checkMaxResults/2 {
		for key, e := range c.mu.results {
			if now.Sub(e.created) > checkResultTTL || len(c.mu.results) >= checkMaxResults {
				delete(c.mu.results, key)
			}
		}
	}
	e := &checkEntry{done: make(chan struct{}), created: now}
	c.mu.results[k] = e
	return e
}

func (c *checker) finish(k checkKey, res *transportpb.CollectChecksumResponse) {
	e := c.entry(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.res != nil {
		return
	}
	e.res = res
	close(e.done)
}

// wait returns this store's result of a check once it is computed.
func (c *checker) wait(ctx context.Context, k checkKey) (*transportpb.CollectChecksumResponse, error) {
	e := c.entry(k)
	select {
	case <-e.done:
		return e.res, nil
	case <-ctx.Done():
		return nil, status.Errorf(codes.DeadlineExceeded, "tablet %d: check %d not computed on store %d: %v", k.tablet, k.id, c.s.opts.StoreID, ctx.Err())
	case <-c.s.stopper.ShouldQuiesce():
		return nil, ErrClosed
	}
}

// startTask snapshots the engine for a task whose command the worker just
// committed, and queues it. Worker only, between apply batches.
func (c *checker) startTask(t *checksumTask) {
	k := checkKey{t.r.tabletID, t.cmd.CheckId}
	c.entry(k)
	t.snap = c.s.db.NewSnapshot()
	select {
	case c.tasks <- t:
	default:
		t.snap.Close()
		c.finish(k, &transportpb.CollectChecksumResponse{ReplicaId: t.r.replicaID, Index: t.index, Error: "too many consistency checks queued on this store"})
	}
}

// takePendingCheck returns the check whose command the last apply call
// stopped after. Worker only.
func (r *replica) takePendingCheck() *checksumTask {
	t := r.pendingCheck
	r.pendingCheck = nil
	return t
}

// dropPendingCheck abandons a check applied where the batch cannot end
// (catching up a merge's source): that replica reports no result.
func (r *replica) dropPendingCheck() {
	if t := r.takePendingCheck(); t != nil {
		r.s.checks.finish(checkKey{r.tabletID, t.cmd.CheckId}, &transportpb.CollectChecksumResponse{ReplicaId: r.replicaID, Index: t.index, Error: "check applied while catching up a merge"})
	}
}

// hasher accumulates one piece.
type hasher struct {
	d    *xxhash.Digest
	keys uint64
	buf  [binary.MaxVarintLen64]byte
}

func (h *hasher) add(k, v []byte) {
	h.d.Write(h.buf[:binary.PutUvarint(h.buf[:], uint64(len(k)))])
	h.d.Write(k)
	h.d.Write(h.buf[:binary.PutUvarint(h.buf[:], uint64(len(v)))])
	h.d.Write(v)
	h.keys++
}

// compute hashes the task's snapshot: the applied state, the descriptor,
// and every key and value in the tablet's data span (all versions, the
// request-ID records).
func (c *checker) compute(ctx context.Context, t *checksumTask) *transportpb.CollectChecksumResponse {
	defer t.snap.Close()
	res := &transportpb.CollectChecksumResponse{ReplicaId: t.r.replicaID, Index: t.index}
	fail := func(err error) *transportpb.CollectChecksumResponse {
		if isCorruption(err) {
			c.s.markReplicaBad(t.r, err)
		}
		res.Pieces, res.Samples, res.Error = nil, nil, err.Error()
		return res
	}
	sh, err := stateHash(t.snap, t.r.tabletID)
	if err != nil {
		return fail(err)
	}
	res.StateHash = sh
	lo, hi := keys.DataSpan(t.desc.StartKey, t.desc.EndKey)
	it, err := t.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fail(err)
	}
	defer it.Close()
	pieceRows := uint64(max(t.cmd.PieceRows, 1))
	cur := &hasher{d: xxhash.New()}
	start := lo
	var prevRow []byte
	paced := 0
	flush := func(next []byte) {
		res.Pieces = append(res.Pieces, &transportpb.ChecksumPiece{Start: bytes.Clone(start), Hash: cur.d.Sum64(), Keys: cur.keys})
		cur.d.Reset()
		cur.keys = 0
		start = next
	}
	check := c.s.newScanCheck(ctx)
	for it.First(); it.Valid(); it.Next() {
		// Small keys reach a pacing wait (which sees ctx) only every
		// rateChunk bytes: tens of thousands of keys.
		if err := check.err(); err != nil {
			return fail(err)
		}
		k, v := it.Key(), it.Value()
		if row := rowOfDataKey(k); !bytes.Equal(row, prevRow) {
			if cur.keys > 0 && len(res.Pieces) < checkMaxPieces-1 && xxhash.Sum64(row)%pieceRows == 0 {
				flush(bytes.Clone(row))
			}
			prevRow = append(prevRow[:0], row...)
		}
		cur.add(k, v)
		if t.cmd.MaxSampleKeys > 0 && uint32(len(res.Samples)) < t.cmd.MaxSampleKeys && inSpans(t.cmd.SampleSpans, k) {
			res.Samples = append(res.Samples, &transportpb.SampledKey{Key: bytes.Clone(k), ValueHash: xxhash.Sum64(v)})
		}
		res.Keys++
		n := len(k) + len(v)
		res.Bytes += uint64(n)
		if paced += n; paced >= rateChunk {
			if err := c.s.pace(ctx, admission.Consistency, rateChunk); err != nil {
				return fail(err)
			}
			c.metrics.hashedBytes.Add(float64(paced))
			paced = 0
		}
	}
	c.metrics.hashedBytes.Add(float64(paced))
	if err := it.Error(); err != nil {
		return fail(err)
	}
	flush(nil)
	return res
}

// rowOfDataKey returns the engine-key prefix of k's row (k itself when it
// does not decode as a cell key, so that odd keys still hash).
func rowOfDataKey(k []byte) []byte {
	logical, err := keys.StripDataKey(k)
	if err != nil {
		return k
	}
	row, err := keys.RowPrefix(logical)
	if err != nil {
		return k
	}
	return k[:1+len(row)]
}

func inSpans(spans []*raftcmdpb.KeySpan, k []byte) bool {
	for _, sp := range spans {
		if bytes.Compare(k, sp.Start) >= 0 && (len(sp.End) == 0 || bytes.Compare(k, sp.End) < 0) {
			return true
		}
	}
	return false
}

// stateHash hashes the replicated part of the applied state and the
// descriptor as of snap.
func stateHash(snap pebble.Reader, tabletID uint64) (uint64, error) {
	var applied raftcmdpb.AppliedState
	var desc metapb.TabletDescriptor
	if err := getProto(snap, keys.AppliedStateKey(tabletID), &applied); err != nil {
		return 0, err
	}
	if err := getProto(snap, keys.DescriptorKey(tabletID), &desc); err != nil {
		return 0, err
	}
	// Every field is set by applying the same entries; Term is the term of
	// the check's own entry.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&applied)
	if err != nil {
		return 0, err
	}
	d := xxhash.New()
	d.Write(b)
	if b, err = (proto.MarshalOptions{Deterministic: true}).Marshal(&desc); err != nil {
		return 0, err
	}
	d.Write(b)
	return d.Sum64(), nil
}

// fingerprint is a result's whole hash: equal fingerprints, equal replicas.
func fingerprint(res *transportpb.CollectChecksumResponse) uint64 {
	d := xxhash.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], res.StateHash)
	d.Write(b[:])
	for _, p := range res.Pieces {
		d.Write(p.Start)
		binary.BigEndian.PutUint64(b[:], p.Hash)
		d.Write(b[:])
	}
	return d.Sum64()
}

// ---- the leader's side ----

// CheckTablet runs one consistency check of a tablet this store leads and
// acts on it: a replica outvoted by a majority is marked bad; with no
// majority the tablet is flagged. It returns the comparison.
func (s *Store) CheckTablet(ctx context.Context, tabletID uint64) (*kvpb.CheckTabletResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return nil, err
	}
	resp, err := s.checks.check(ctx, r)
	result := "failed"
	switch {
	case err != nil:
	case resp.Consistent:
		result = "consistent"
	case resp.NoMajority:
		result = "no_majority"
	case len(resp.DifferingSpans) > 0 || hasBad(resp):
		result = "mismatch"
	default:
		result = "incomplete"
	}
	s.checks.metrics.checks.WithLabelValues(result).Inc()
	if err != nil {
		return nil, err
	}
	s.checks.mu.Lock()
	s.checks.mu.lastChecked[tabletID] = s.opts.Clock.Now()
	s.checks.mu.lastReport[tabletID] = resp
	s.checks.mu.Unlock()
	return resp, nil
}

func hasBad(resp *kvpb.CheckTabletResponse) bool {
	for _, rep := range resp.Replicas {
		if rep.Bad {
			return true
		}
	}
	return false
}

// collected is one replica's answer to a check.
type collected struct {
	rep *metapb.Replica
	res *transportpb.CollectChecksumResponse
}

func (c *checker) check(ctx context.Context, r *replica) (*kvpb.CheckTabletResponse, error) {
	if r.isBad() {
		return nil, errs.ServerBusy(fmt.Sprintf("tablet %d: the replica on store %d is marked bad; check from the new leader", r.tabletID, c.s.opts.StoreID), 1000)
	}
	ctx, cancel := context.WithTimeout(ctx, c.s.opts.ConsistencyCheckTimeout)
	defer cancel()
	desc := r.descriptor()
	id, answers, err := c.round(ctx, r, desc, &raftcmdpb.ComputeChecksumCommand{PieceRows: checkPieceRows})
	if err != nil {
		return nil, err
	}
	resp := &kvpb.CheckTabletResponse{CheckId: id}
	groups := map[uint64][]collected{}
	for _, a := range answers {
		out := &kvpb.CheckTabletResponse_Replica{ReplicaId: a.rep.ReplicaId, StoreId: a.rep.StoreId}
		resp.Replicas = append(resp.Replicas, out)
		if a.res == nil || a.res.Error != "" {
			out.Error = "no answer"
			if a.res != nil {
				out.Error = a.res.Error
			}
			continue
		}
		resp.Index = a.res.Index
		out.Hash, out.Keys = fingerprint(a.res), a.res.Keys
		groups[out.Hash] = append(groups[out.Hash], a)
	}
	var majority []collected
	for _, g := range groups {
		if len(g) > len(desc.Replicas)/2 {
			majority = g
		}
	}
	switch {
	case len(groups) == 1 && len(majority) == len(desc.Replicas):
		resp.Consistent = true
		if r.inconsistentFlag() {
			_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_MarkBadReplicas{MarkBadReplicas: &raftcmdpb.MarkBadReplicasCommand{Verdict: true, Reason: "check passed"}}})
		}
		return resp, err
	case majority == nil && len(groups) > 1:
		resp.NoMajority = true
		c.s.log.Error("consistency check: replicas disagree and no majority agrees; nothing is destroyed, the tablet is flagged", "tablet", r.tabletID, "check", id, "groups", len(groups))
		_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_MarkBadReplicas{MarkBadReplicas: &raftcmdpb.MarkBadReplicasCommand{Verdict: true, Inconsistent: true, Reason: fmt.Sprintf("check %d: no majority", id)}}})
		return resp, err
	case majority == nil || len(groups) == 1:
		return resp, nil // someone did not answer: no verdict
	}
	good := majority[0].res
	var bad []uint64
	for h, g := range groups {
		if h == fingerprint(good) {
			continue
		}
		for _, a := range g {
			bad = append(bad, a.rep.ReplicaId)
			resp.DifferingSpans = appendSpans(resp.DifferingSpans, diffSpans(good, a.res, desc))
		}
	}
	for _, out := range resp.Replicas {
		out.Bad = containsID(bad, out.ReplicaId)
	}
	resp.DifferingKeys = c.sampleDiff(ctx, r, desc, resp.DifferingSpans, majority[0].rep, bad)
	reason := fmt.Sprintf("check %d at index %d: replica(s) %v disagree with the majority in %d span(s); keys %s", id, resp.Index, bad, len(resp.DifferingSpans), hexKeys(resp.DifferingKeys))
	c.s.log.Error("consistency check: replica(s) disagree with the majority; marking them bad", "tablet", r.tabletID, "reason", reason)
	_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_MarkBadReplicas{MarkBadReplicas: &raftcmdpb.MarkBadReplicasCommand{ReplicaIds: bad, Verdict: true, Reason: reason}}})
	return resp, err
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func hexKeys(ks [][]byte) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = hex.EncodeToString(k)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// round proposes one checksum command and collects every replica's answer.
func (c *checker) round(ctx context.Context, r *replica, desc *metapb.TabletDescriptor, cmd *raftcmdpb.ComputeChecksumCommand) (uint64, []collected, error) {
	cmd.CheckId = rand.Uint64() | 1
	if _, err := r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_ComputeChecksum{ComputeChecksum: cmd}}); err != nil {
		return 0, nil, err
	}
	answers := make([]collected, len(desc.Replicas))
	var wg sync.WaitGroup
	for i, rep := range desc.Replicas {
		answers[i].rep = rep
		wg.Add(1)
		go func() { //stop:short-lived joined below (wg.Wait), each bounded by ctx
			defer wg.Done()
			answers[i].res = c.collect(ctx, r.tabletID, rep.StoreId, cmd.CheckId)
		}()
	}
	wg.Wait()
	return cmd.CheckId, answers, nil
}

// collect asks one store for its result (nil if it cannot be had).
func (c *checker) collect(ctx context.Context, tabletID, storeID, id uint64) *transportpb.CollectChecksumResponse {
	if storeID == c.s.opts.StoreID {
		res, err := c.wait(ctx, checkKey{tabletID, id})
		if err != nil {
			return nil
		}
		return res
	}
	cl, err := c.s.transport.Client(storeID)
	if err != nil {
		return nil
	}
	res, err := cl.CollectChecksum(ctx, &transportpb.CollectChecksumRequest{TabletId: tabletID, CheckId: id, FromStore: c.s.opts.StoreID})
	if err != nil {
		c.s.log.Warn("consistency check: no answer", "tablet", tabletID, "store", storeID, "err", err)
		return nil
	}
	return res
}

// diffSpans names the spans where two replicas' pieces differ: a piece of
// either that the other lacks, from its start to the next piece's.
func diffSpans(a, b *transportpb.CollectChecksumResponse, desc *metapb.TabletDescriptor) []*kvpb.CheckTabletResponse_Span {
	_, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
	var out []*kvpb.CheckTabletResponse_Span
	one := func(x, y *transportpb.CollectChecksumResponse) {
		have := map[string]uint64{}
		for _, p := range y.Pieces {
			have[string(p.Start)] = p.Hash
		}
		for i, p := range x.Pieces {
			if h, ok := have[string(p.Start)]; ok && h == p.Hash {
				continue
			}
			end := hi
			if i+1 < len(x.Pieces) {
				end = x.Pieces[i+1].Start
			}
			out = append(out, &kvpb.CheckTabletResponse_Span{Start: p.Start, End: end})
		}
	}
	one(a, b)
	one(b, a)
	return out
}

// appendSpans merges spans into a sorted, overlap-free list of at most
// checkMaxSpans (the last one absorbs the rest).
func appendSpans(have, add []*kvpb.CheckTabletResponse_Span) []*kvpb.CheckTabletResponse_Span {
	all := append(append([]*kvpb.CheckTabletResponse_Span(nil), have...), add...)
	sort.Slice(all, func(i, j int) bool { return bytes.Compare(all[i].Start, all[j].Start) < 0 })
	var out []*kvpb.CheckTabletResponse_Span
	for _, sp := range all {
		if n := len(out); n > 0 && (bytes.Compare(sp.Start, out[n-1].End) <= 0 || n == checkMaxSpans) {
			if bytes.Compare(sp.End, out[n-1].End) > 0 {
				out[n-1].End = sp.End
			}
			continue
		}
		out = append(out, &kvpb.CheckTabletResponse_Span{Start: sp.Start, End: sp.End})
	}
	return out
}

// sampleDiff runs a diagnosis round over the differing spans and returns
// up to checkMaxDiffKeys keys whose presence or value differs between a
// majority replica and the bad ones. Best effort: nil on any failure.
func (c *checker) sampleDiff(ctx context.Context, r *replica, desc *metapb.TabletDescriptor, spans []*kvpb.CheckTabletResponse_Span, good *metapb.Replica, bad []uint64) [][]byte {
	if len(spans) == 0 {
		return nil
	}
	cmd := &raftcmdpb.ComputeChecksumCommand{PieceRows: checkPieceRows, MaxSampleKeys: checkSampleKeys}
	for _, sp := range spans {
		cmd.SampleSpans = append(cmd.SampleSpans, &raftcmdpb.KeySpan{Start: sp.Start, End: sp.End})
	}
	_, answers, err := c.round(ctx, r, desc, cmd)
	if err != nil {
		return nil
	}
	var ref *transportpb.CollectChecksumResponse
	for _, a := range answers {
		if a.rep.ReplicaId == good.ReplicaId {
			ref = a.res
		}
	}
	if ref == nil || ref.Error != "" {
		return nil
	}
	want := map[string]uint64{}
	for _, k := range ref.Samples {
		want[string(k.Key)] = k.ValueHash
	}
	// A sample cut at MaxSampleKeys covers keys only up to its last one:
	// compare below the lowest such cut.
	var limit []byte
	cut := func(res *transportpb.CollectChecksumResponse) {
		if n := len(res.Samples); uint32(n) >= cmd.MaxSampleKeys {
			if last := res.Samples[n-1].Key; limit == nil || bytes.Compare(last, limit) < 0 {
				limit = last
			}
		}
	}
	cut(ref)
	for _, a := range answers {
		if containsID(bad, a.rep.ReplicaId) && a.res != nil && a.res.Error == "" {
			cut(a.res)
		}
	}
	seen := map[string]bool{}
	var out [][]byte
	add := func(k []byte) {
		if limit != nil && bytes.Compare(k, limit) > 0 {
			return
		}
		if !seen[string(k)] && len(out) < checkMaxDiffKeys {
			seen[string(k)] = true
			out = append(out, bytes.Clone(k))
		}
	}
	for _, a := range answers {
		if !containsID(bad, a.rep.ReplicaId) || a.res == nil || a.res.Error != "" {
			continue
		}
		got := map[string]bool{}
		for _, k := range a.res.Samples {
			got[string(k.Key)] = true
			if h, ok := want[string(k.Key)]; !ok || h != k.ValueHash {
				add(k.Key)
			}
		}
		for _, k := range ref.Samples {
			if !got[string(k.Key)] {
				add(k.Key)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

// runDue checks, one at a time, the tablets this store leads whose last
// check is older than ConsistencyCheckInterval. A tablet first seen is
// given a random age so that a store's tablets spread over the interval.
func (c *checker) runDue(ctx context.Context) {
	interval := c.s.opts.ConsistencyCheckInterval
	now := c.s.opts.Clock.Now()
	var due []uint64
	c.mu.Lock()
	for _, r := range c.s.replicaList() {
		r.mu.Lock()
		lead := r.mu.isLeader && r.mu.desc != nil && !r.mu.destroyed
		r.mu.Unlock()
		if !lead {
			continue
		}
		last, ok := c.mu.lastChecked[r.tabletID]
		if !ok {
			last = now.Add(-time.Duration(rand.Int64N(int64(interval) + 1)))
			c.mu.lastChecked[r.tabletID] = last
		}
		if now.Sub(last) >= interval {
			due = append(due, r.tabletID)
		}
	}
	c.mu.Unlock()
	for _, id := range due {
		if ctx.Err() != nil {
			return
		}
		if _, err := c.s.CheckTablet(ctx, id); err != nil {
			c.s.log.Debug("periodic consistency check failed", "tablet", id, "err", err)
			c.mu.Lock()
			c.mu.lastChecked[id] = now // try again after an interval
			c.mu.Unlock()
		}
	}
}

// LastCheck returns the latest check report of a tablet this store led
// when it ran, or nil.
func (s *Store) LastCheck(tabletID uint64) *kvpb.CheckTabletResponse {
	s.checks.mu.Lock()
	defer s.checks.mu.Unlock()
	return s.checks.mu.lastReport[tabletID]
}

// ---- apply ----

// applyMarkBad records a verdict or a corruption report in the applied
// state. Deterministic: it reads only the command and the applied state.
func (r *replica) applyMarkBad(c *raftcmdpb.MarkBadReplicasCommand) {
	for _, id := range c.ReplicaIds {
		if !containsID(r.applied.BadReplicaIds, id) {
			r.applied.BadReplicaIds = append(r.applied.BadReplicaIds, id)
		}
	}
	if c.Verdict {
		r.applied.Inconsistent = c.Inconsistent
	}
	if len(c.ReplicaIds) > 0 || c.Inconsistent {
		r.log.Error("replicas marked bad", "replicas", c.ReplicaIds, "inconsistent", c.Inconsistent, "reason", c.Reason)
		r.s.event(r.tabletID, "marked bad: replicas %v, inconsistent %v: %s", c.ReplicaIds, c.Inconsistent, c.Reason)
	}
}

// publishHealth copies the applied state's verdicts to r.mu, where
// requests and heartbeats read them (a bad leader sheds leadership after
// the Ready's Advance). Worker only (or before the replica is registered).
func (r *replica) publishHealth() {
	bad := containsID(r.applied.BadReplicaIds, r.replicaID)
	r.mu.Lock()
	r.mu.badReplicas = append(r.mu.badReplicas[:0:0], r.applied.BadReplicaIds...)
	r.mu.inconsistent = r.applied.Inconsistent
	r.mu.markedBad = bad
	r.mu.Unlock()
}

// isBad reports whether the replica must not serve: marked bad by its
// group, or found corrupt here.
func (r *replica) isBad() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.markedBad || r.mu.corrupt != ""
}

func (r *replica) inconsistentFlag() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.inconsistent
}

// refuseIfBad fails a client request to a bad replica with NotLeader and
// no hint: the client asks PD again and finds a good leader.
func (r *replica) refuseIfBad() error {
	if !r.isBad() {
		return nil
	}
	return errs.NotLeader(r.tabletID, 0, "")
}

// shedLeadership hands leadership to a caught-up voter that is not bad, if
// this bad replica leads. Worker only.
func (r *replica) shedLeadership() {
	if r.raw == nil || !r.isBad() {
		return
	}
	st := r.raw.Status()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 {
		return
	}
	r.mu.Lock()
	bad := append([]uint64(nil), r.mu.badReplicas...)
	r.mu.Unlock()
	ids := make([]uint64, 0, len(st.Progress))
	for id := range st.Progress {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		pr := st.Progress[id]
		if id == r.replicaID || pr.IsLearner || containsID(bad, id) || pr.Match < st.Commit {
			continue
		}
		r.invalidateLease()
		r.raw.TransferLeader(id)
		r.log.Warn("bad replica hands leadership away", "to", id)
		return
	}
}

// healthReport returns the bad replicas (still members) and the
// inconsistent flag for the leader's heartbeat to PD.
func (r *replica) healthReport(desc *metapb.TabletDescriptor) ([]uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var bad []uint64
	for _, id := range r.mu.badReplicas {
		for _, rep := range desc.Replicas {
			if rep.ReplicaId == id {
				bad = append(bad, id)
			}
		}
	}
	return bad, r.mu.inconsistent
}

// ---- transport handlers ----

var _ interface {
	CollectChecksum(context.Context, *transportpb.CollectChecksumRequest) (*transportpb.CollectChecksumResponse, error)
} = (*transportHandler)(nil)

// CollectChecksum implements transport.ConsistencyHandler.
func (h *transportHandler) CollectChecksum(ctx context.Context, req *transportpb.CollectChecksumRequest) (*transportpb.CollectChecksumResponse, error) {
	s := (*Store)(h)
	if s.getReplica(req.TabletId) == nil {
		return nil, errs.TabletNotFound(req.TabletId, s.opts.StoreID)
	}
	return s.checks.wait(ctx, checkKey{req.TabletId, req.CheckId})
}

// ReportBadReplica implements transport.ConsistencyHandler: the leader
// marks the reporting replica bad through raft.
func (h *transportHandler) ReportBadReplica(ctx context.Context, req *transportpb.ReportBadReplicaRequest) error {
	s := (*Store)(h)
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	r, err := s.replicaForRequest(req.TabletId)
	if err != nil {
		return err
	}
	if req.Suspect {
		// A client's read failed its checksums: check, do not condemn.
		s.noteSuspect(req.TabletId, fmt.Sprintf("store %d reports: %s", req.FromStore, req.Reason))
		return nil
	}
	desc := r.descriptor()
	rep := replicaOnStore(desc, req.FromStore)
	if rep == nil || rep.ReplicaId != req.ReplicaId {
		return errs.InvalidArgument("tablet %d has no replica %d on store %d", req.TabletId, req.ReplicaId, req.FromStore)
	}
	r.mu.Lock()
	already := containsID(r.mu.badReplicas, req.ReplicaId)
	r.mu.Unlock()
	if already {
		return nil
	}
	_, err = r.propose(ctx, &raftcmdpb.RaftCommand{Epoch: desc.Epoch, Cmd: &raftcmdpb.RaftCommand_MarkBadReplicas{MarkBadReplicas: &raftcmdpb.MarkBadReplicasCommand{
		ReplicaIds: []uint64{req.ReplicaId}, Reason: fmt.Sprintf("store %d reports: %s", req.FromStore, req.Reason)}}})
	return err
}

// ---- gRPC ----

// CheckTablet serves `shale ctl check`.
func (v *Service) CheckTablet(ctx context.Context, req *kvpb.CheckTabletRequest) (*kvpb.CheckTabletResponse, error) {
	return v.s.CheckTablet(ctx, req.TabletId)
}
