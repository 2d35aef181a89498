package store_test

// A datadriven harness for a cluster of in-process stores, in the style of
// etcd raft's interaction tests: every store runs on its own manual clock
// (Options.Clock), every raft message is held by the network until a
// script delivers or drops it, and a script drives ticks, time, requests
// and faults one command at a time. testdata/README.md lists the commands;
// testdata/scripts/*.txt are the scenarios.

import (
	gocmp "cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/status"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		h := &harness{t: t, reqs: map[string]*harnessReq{}}
		datadriven.RunTest(t, path, h.handle)
	})
}

// harnessEpoch is where every store's manual clock starts.
var harnessEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	harnessTick = 100 * time.Millisecond
	// harnessGrace is how long (real time) the harness waits for a request
	// that has stopped making progress before it calls it pending; also
	// the most a request may take between two of its steps.
	harnessGrace = time.Second
)

type harness struct {
	t      *testing.T
	c      *storetest.Cluster
	mu     sync.Mutex
	clocks map[uint64]*testingclock.FakeClock
	reqs   map[string]*harnessReq // pending requests by name
	nreq   int
}

type harnessReq struct {
	name, what string
	done       chan string
}

func (h *harness) handle(t *testing.T, d *datadriven.TestData) string {
	h.t = t
	if h.c == nil && d.Cmd != "start" {
		d.Fatalf(t, "the first command must be start")
	}
	switch d.Cmd {
	case "start":
		return h.start(d)
	case "bootstrap":
		return h.bootstrap(d)
	case "campaign":
		s, tab := h.storeArg(d), h.tabletArg(d)
		if err := s.CampaignForTest(h.ctx(), tab); err != nil {
			return errString(err)
		}
		h.stabilize(d.HasArg("hold"))
		return h.state(tab)
	case "tick":
		n := 1
		d.MaybeScanArgs(t, "n", &n)
		for range n {
			h.step(h.storesArg(d), harnessTick, d.HasArg("hold"))
		}
		return "ok"
	case "advance":
		var by string
		d.ScanArgs(t, "by", &by)
		dur, err := time.ParseDuration(by)
		if err != nil || dur <= 0 || dur%harnessTick != 0 {
			d.Fatalf(t, "advance by=%q: want a positive multiple of %v", by, harnessTick)
		}
		h.step(h.storesArg(d), dur, d.HasArg("hold"))
		return "ok"
	case "put", "get", "incr", "split", "merge", "transfer", "gc", "recover-merges", "mutate", "read", "rmw":
		return h.request(d)
	case "await":
		var name string
		d.ScanArgs(t, "r", &name)
		r := h.reqs[name]
		if r == nil {
			d.Fatalf(t, "no pending request %q", name)
		}
		delete(h.reqs, name)
		return h.await(r, true)
	case "stabilize":
		log := h.stabilize(false)
		out := h.finished()
		if d.HasArg("log") {
			out = append(log, out...)
		}
		return lines(out)
	case "held":
		return lines(describeHeld(h.c.Net.Held()))
	case "deliver", "drop":
		match := heldFilter(t, d)
		var took []storetest.Held
		if d.Cmd == "deliver" {
			took = h.c.Net.DeliverHeld(match)
			h.waitIdle()
		} else {
			took = h.c.Net.DropHeld(match)
		}
		return lines(describeHeld(took))
	case "partition":
		var groups [][]uint64
		for _, a := range d.CmdArgs {
			if a.Key != "group" {
				continue
			}
			var g []uint64
			for _, v := range a.Vals {
				id, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					d.Fatalf(t, "partition: %v", err)
				}
				g = append(g, id)
			}
			groups = append(groups, g)
		}
		h.c.Net.Partition(groups...)
		return "ok"
	case "heal":
		h.c.Net.Heal()
		return "ok"
	case "crash":
		id := h.storeIDArg(d)
		h.c.Stop(id)
		h.c.Net.DropHeld(func(m storetest.Held) bool { return m.From == id || m.To == id })
		return "ok"
	case "restart":
		h.c.Restart(h.storeIDArg(d))
		h.waitIdle()
		return "ok"
	case "state":
		var tab uint64
		d.MaybeScanArgs(t, "tablet", &tab)
		return h.state(tab)
	case "rows":
		rows, err := h.storeArg(d).LocalRowsForTest(h.tabletArg(d))
		if err != nil {
			return errString(err)
		}
		return lines(rows)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
		return ""
	}
}

// start starts the cluster: n stores on manual clocks, TestTable's schema
// installed, raft messages held.
func (h *harness) start(d *datadriven.TestData) string {
	n := 3
	d.MaybeScanArgs(h.t, "n", &n)
	h.clocks = map[uint64]*testingclock.FakeClock{}
	for i := 1; i <= n; i++ {
		h.clocks[uint64(i)] = testingclock.NewFakeClock(harnessEpoch)
	}
	var retention, recovery string
	d.MaybeScanArgs(h.t, "dedup-retention", &retention)
	d.MaybeScanArgs(h.t, "merge-recovery", &recovery)
	var offset string
	d.MaybeScanArgs(h.t, "max-clock-offset", &offset)
	h.c = storetest.Start(h.t, n, func(o *store.Options) {
		o.Clock = h.clocks[o.StoreID]
		o.TickInterval = harnessTick
		o.ElectionTicks = 10
		o.HeartbeatTicks = 2
		o.ProposalTimeout = 10 * time.Second
		o.GCInterval = -1 // the gc command runs it
		o.MergeRecoveryAfter = -1
		if recovery != "" {
			o.MergeRecoveryAfter = mustDuration(h.t, recovery)
		}
		if retention != "" {
			o.DedupRetention = mustDuration(h.t, retention)
		}
		if d.HasArg("quiesce-off") {
			o.QuiesceAfterTicks = -1
		}
		if offset != "" {
			o.MaxClockOffset = mustDuration(h.t, offset)
		}
		if d.HasArg("abandon-merges") {
			o.Knobs.AbandonMergeAfterPrepare = true
		}
	})
	h.c.Net.HoldMessages(func(to uint64, b *transportpb.RaftMessageBatch) {
		if s := h.c.Nodes[to].Store; s != nil {
			s.DeliverForTest(b)
		}
	})
	h.c.PutSchema(storetest.TestTable)
	if d.HasArg("api-schema") {
		h.c.PutSchema(apiSchema(apiTableID))
		h.c.PutSchema(apiSchema(apiSubTableID))
	}
	return "ok"
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// bootstrap creates a tablet over TestTable's rows [start, end) (default
// all of them) with a voter on each listed store, and elects the first.
func (h *harness) bootstrap(d *datadriven.TestData) string {
	tab := h.tabletArg(d)
	var ids []uint64
	d.ScanArgs(h.t, "stores", &ids)
	table := h.tableArg(d)
	lo, hi := keys.TablePrefix(table), keys.PrefixEnd(keys.TablePrefix(table))
	var start, end string
	if d.MaybeScanArgs(h.t, "start", &start) {
		lo = keys.RowKey(table, []byte(start))
	}
	if d.MaybeScanArgs(h.t, "end", &end) {
		hi = keys.RowKey(table, []byte(end))
	}
	desc := &metapb.TabletDescriptor{TabletId: tab, StartKey: lo, EndKey: hi, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for _, s := range ids {
		desc.Replicas = append(desc.Replicas, &metapb.Replica{ReplicaId: s, StoreId: s})
	}
	for _, s := range ids {
		if err := h.c.Nodes[s].Store.BootstrapTablet(desc); err != nil {
			h.t.Fatalf("bootstrap tablet %d on store %d: %v", tab, s, err)
		}
	}
	// A store ignores votes for an election timeout after it starts
	// (dropsVote): let that pass, as one tick, then elect the first store.
	h.step(h.ids(), 10*harnessTick, false)
	if err := h.c.Nodes[ids[0]].Store.CampaignForTest(h.ctx(), tab); err != nil {
		return errString(err)
	}
	h.stabilize(false)
	return h.state(tab)
}

// step moves the clocks of the given stores by by and waits until each
// Ready loop processed the one tick that fires (by is a multiple of the
// tick interval, and the previous tick was taken, so exactly one does).
func (h *harness) step(ids []uint64, by time.Duration, hold bool) {
	before := map[uint64]uint64{}
	for _, id := range ids {
		if s := h.c.Nodes[id].Store; s != nil {
			before[id] = s.TicksForTest()
			h.clocks[id].Step(by)
		}
	}
	for id, n := range before {
		s := h.c.Nodes[id].Store
		testutils.SucceedsSoon(h.t, func() error {
			if s.TicksForTest() <= n {
				return fmt.Errorf("store %d has not processed its tick", id)
			}
			return nil
		})
	}
	if hold {
		h.waitIdle()
	} else {
		h.stabilize(false)
	}
}

// waitIdle waits until every running store's Ready loop is idle and
// returns the total count of work queued so far.
func (h *harness) waitIdle() uint64 {
	var total uint64
	testutils.SucceedsSoon(h.t, func() error {
		total = 0
		for _, id := range h.ids() {
			s := h.c.Nodes[id].Store
			if s == nil {
				continue
			}
			idle, n := s.IdleForTest()
			if !idle {
				return fmt.Errorf("store %d busy", id)
			}
			total += n
		}
		return nil
	})
	return total
}

// stabilize delivers held messages, round by round, until none is left
// and every store is idle. It returns the messages delivered (with hold,
// it only waits for idle).
func (h *harness) stabilize(hold bool) []string {
	var log []string
	for {
		h.waitIdle()
		if hold || len(h.c.Net.Held()) == 0 {
			return log
		}
		log = append(log, describeHeld(h.c.Net.DeliverHeld(func(storetest.Held) bool { return true }))...)
	}
}

// request runs one client request in the background and reports its
// result, or, when it stops making progress (its messages are held or
// dropped), names it as pending. Unless async, held messages are
// delivered while it runs.
func (h *harness) request(d *datadriven.TestData) string {
	f := h.requestFunc(d)
	h.nreq++
	r := &harnessReq{name: fmt.Sprintf("r%d", h.nreq), what: d.Cmd, done: make(chan string, 1)}
	go func() { r.done <- f(h.ctx()) }()
	return h.await(r, !d.HasArg("async"))
}

func (h *harness) await(r *harnessReq, deliver bool) string {
	last := h.waitIdle()
	quietSince := time.Now()
	for {
		select {
		case res := <-r.done:
			h.stabilize(!deliver)
			return res
		default:
		}
		n := h.waitIdle()
		if deliver && len(h.c.Net.Held()) > 0 {
			h.c.Net.DeliverHeld(func(storetest.Held) bool { return true })
			quietSince = time.Now()
			continue
		}
		if n != last {
			last, quietSince = n, time.Now()
		}
		if time.Since(quietSince) > harnessGrace {
			h.reqs[r.name] = r
			return fmt.Sprintf("%s: %s pending", r.name, r.what)
		}
		// Models time passing: the stores are given a moment to move on
		// before progress is measured again (harnessGrace ends the wait).
		time.Sleep(2 * time.Millisecond)
	}
}

// finished reports the pending requests that have completed.
func (h *harness) finished() []string {
	var out []string
	names := make([]string, 0, len(h.reqs))
	for n := range h.reqs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		r := h.reqs[n]
		select {
		case res := <-r.done:
			out = append(out, fmt.Sprintf("%s: %s", n, res))
			delete(h.reqs, n)
		case <-time.After(harnessGrace):
		}
	}
	return out
}

// requestFunc builds the call of a request command.
func (h *harness) requestFunc(d *datadriven.TestData) func(context.Context) string {
	s := h.storeArg(d)
	t := h.t
	table := h.tableArg(d)
	var tab uint64
	d.MaybeScanArgs(t, "tablet", &tab)
	hdr := &kvpb.RequestHeader{TabletId: tab}
	var row string
	d.MaybeScanArgs(t, "row", &row)
	row = unescape(h, d, row)
	var ints []string
	d.MaybeScanArgs(t, "ints", &ints)
	var id *kvpb.RequestID
	if d.HasArg("id") {
		var parts []uint64
		d.ScanArgs(t, "id", &parts)
		id = &kvpb.RequestID{ClientId: parts[0], Seq: parts[1]}
	}
	switch d.Cmd {
	case "put":
		var val string
		d.ScanArgs(t, "value", &val)
		return func(ctx context.Context) string {
			_, err := s.MutateRow(ctx, &kvpb.MutateRowRequest{Header: hdr, TableId: table, RowKey: []byte(row), RequestId: id,
				Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", val)}})
			return result("ok", err)
		}
	case "get":
		return func(ctx context.Context) string {
			resp, err := s.Get(ctx, &kvpb.GetRequest{Header: hdr, TableId: table, RowKey: []byte(row)})
			if err != nil {
				return errString(err)
			}
			if resp.Row == nil {
				return "not found"
			}
			var cells []string
			for _, c := range resp.Row.Cells {
				cells = append(cells, fmt.Sprintf("%s:%s=%s", c.Family, c.Qualifier, c.Value))
			}
			return strings.Join(cells, " ")
		}
	case "incr":
		return func(ctx context.Context) string {
			resp, err := s.ReadModifyWriteRow(ctx, &kvpb.ReadModifyWriteRowRequest{Header: hdr, TableId: table, RowKey: []byte(row), RequestId: id,
				Rules: []*kvpb.ReadModifyWriteRule{{Family: "f", Qualifier: []byte("n"), Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: 1}}}})
			if err != nil {
				return errString(err)
			}
			return fmt.Sprintf("n=%d", int64(binary.BigEndian.Uint64(resp.Row.Cells[0].Value)))
		}
	case "split":
		var at string
		var newID uint64
		d.ScanArgs(t, "at", &at)
		d.ScanArgs(t, "new", &newID)
		return func(ctx context.Context) string {
			st, err := s.TabletStatus(tab)
			if err != nil {
				return errString(err)
			}
			var reps []uint64
			for _, r := range st.Tablet.Replicas {
				reps = append(reps, r.StoreId) // new replica ID = store ID
			}
			_, err = s.Split(ctx, &kvpb.SplitTabletRequest{Header: hdr, SplitKey: keys.RowKey(table, []byte(at)), NewTabletId: newID, NewReplicaIds: reps})
			return result("ok", err)
		}
	case "merge":
		var right uint64
		d.ScanArgs(t, "right", &right)
		return func(ctx context.Context) string {
			_, err := s.Merge(ctx, &kvpb.MergeTabletsRequest{Header: hdr, RightTabletId: right})
			return result("ok", err)
		}
	case "transfer":
		var to uint64
		d.ScanArgs(t, "to", &to)
		forward := d.HasArg("forward")
		return func(ctx context.Context) string {
			return result("ok", s.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: hdr, ToStoreId: to, Forward: forward}))
		}
	case "mutate":
		muts := parseMutations(h, d)
		return func(ctx context.Context) string {
			resp, err := s.MutateRow(ctx, &kvpb.MutateRowRequest{Header: hdr, TableId: table, RowKey: []byte(row), Mutations: muts})
			if err != nil {
				return errString(err)
			}
			return "ts=" + fmtTS(resp.Timestamp)
		}
	case "read":
		o := readOptions(h, d)
		return func(ctx context.Context) string {
			resp, err := s.Get(ctx, &kvpb.GetRequest{Header: hdr, TableId: table, RowKey: []byte(row), Options: o})
			if err != nil {
				return errString(err)
			}
			return fmtRow(resp.Row, ints)
		}
	case "rmw":
		rules := parseRules(h, d)
		return func(ctx context.Context) string {
			resp, err := s.ReadModifyWriteRow(ctx, &kvpb.ReadModifyWriteRowRequest{Header: hdr, TableId: table, RowKey: []byte(row), Rules: rules})
			if err != nil {
				return errString(err)
			}
			return fmtRow(resp.Row, ints)
		}
	case "gc":
		return func(ctx context.Context) string {
			n, err := s.GCTablet(ctx, tab)
			return result(fmt.Sprintf("deleted %d", n), err)
		}
	case "recover-merges":
		var after string
		d.ScanArgs(t, "after", &after)
		dur := mustDuration(t, after)
		return func(context.Context) string {
			s.RecoverMergesForTest(dur)
			return "ok"
		}
	}
	panic("unreachable")
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

func result(ok string, err error) string {
	if err != nil {
		return errString(err)
	}
	return ok
}

// errString renders an error as its gRPC code and message.
func errString(err error) string {
	st := status.Convert(err)
	return fmt.Sprintf("error %s: %s%s", st.Code(), st.Message(), errDetails(err))
}

func (h *harness) ids() []uint64 {
	ids := make([]uint64, 0, len(h.c.Nodes))
	for id := range h.c.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// storeIDArg is store=, by default 1.
func (h *harness) storeIDArg(d *datadriven.TestData) uint64 {
	id := uint64(1)
	d.MaybeScanArgs(h.t, "store", &id)
	if h.c.Nodes[id] == nil {
		d.Fatalf(h.t, "no store %d", id)
	}
	return id
}

func (h *harness) storeArg(d *datadriven.TestData) *store.Store {
	id := h.storeIDArg(d)
	s := h.c.Nodes[id].Store
	if s == nil {
		d.Fatalf(h.t, "store %d is down", id)
	}
	return s
}

func (h *harness) tabletArg(d *datadriven.TestData) uint64 {
	var tab uint64
	d.ScanArgs(h.t, "tablet", &tab)
	return tab
}

// storesArg is the stores= list, by default every store.
func (h *harness) storesArg(d *datadriven.TestData) []uint64 {
	var ids []uint64
	if !d.MaybeScanArgs(h.t, "stores", &ids) {
		ids = h.ids()
	}
	return ids
}

// state prints every running store's replicas (of tablet, if not 0).
func (h *harness) state(tablet uint64) string {
	var out []string
	for _, id := range h.ids() {
		s := h.c.Nodes[id].Store
		if s == nil {
			out = append(out, fmt.Sprintf("s%d: down", id))
			continue
		}
		var tabs []uint64
		for _, d := range s.Tablets() {
			if tablet == 0 || d.TabletId == tablet {
				tabs = append(tabs, d.TabletId)
			}
		}
		slices.Sort(tabs)
		for _, tab := range tabs {
			if line, ok := s.ReplicaStateForTest(tab); ok {
				out = append(out, fmt.Sprintf("s%d t%d: %s", id, tab, line))
			}
		}
	}
	return lines(out)
}

func lines(out []string) string {
	if len(out) == 0 {
		return "ok"
	}
	return strings.Join(out, "\n")
}

// heldFilter selects held messages by from=, to=, tablet= and type=
// (a raft message type without its "Msg" prefix).
func heldFilter(t *testing.T, d *datadriven.TestData) func(storetest.Held) bool {
	var from, to, tab uint64
	var typ string
	d.MaybeScanArgs(t, "from", &from)
	d.MaybeScanArgs(t, "to", &to)
	d.MaybeScanArgs(t, "tablet", &tab)
	d.MaybeScanArgs(t, "type", &typ)
	return func(m storetest.Held) bool {
		if (from != 0 && m.From != from) || (to != 0 && m.To != to) || (tab != 0 && m.Msg.TabletId != tab) {
			return false
		}
		if typ != "" {
			var rm raftpb.Message
			if err := rm.Unmarshal(m.Msg.Message); err != nil || rm.Type.String() != "Msg"+typ {
				return false
			}
		}
		return true
	}
}

// describeHeld renders messages one a line, sorted by sender, receiver and
// tablet (keeping each pair's send order): the stores' Ready loops run
// concurrently, so the order across pairs is not the script's to fix.
func describeHeld(hs []storetest.Held) []string {
	hs = slices.Clone(hs)
	slices.SortStableFunc(hs, func(a, b storetest.Held) int {
		return gocmp.Or(gocmp.Compare(a.From, b.From), gocmp.Compare(a.To, b.To), gocmp.Compare(a.Msg.TabletId, b.Msg.TabletId))
	})
	out := make([]string, 0, len(hs))
	for _, m := range hs {
		out = append(out, describeMsg(m))
	}
	return out
}

func describeMsg(h storetest.Held) string {
	var m raftpb.Message
	if err := m.Unmarshal(h.Msg.Message); err != nil {
		return fmt.Sprintf("s%d->s%d t%d undecodable: %v", h.From, h.To, h.Msg.TabletId, err)
	}
	s := fmt.Sprintf("s%d->s%d t%d %s term=%d", h.From, h.To, h.Msg.TabletId, strings.TrimPrefix(m.Type.String(), "Msg"), m.Term)
	switch m.Type {
	case raftpb.MsgApp:
		s += fmt.Sprintf(" log=%d/%d commit=%d", m.LogTerm, m.Index, m.Commit)
		if n := len(m.Entries); n > 0 {
			s += fmt.Sprintf(" entries=%d..%d", m.Entries[0].Index, m.Entries[n-1].Index)
		}
	case raftpb.MsgAppResp:
		s += fmt.Sprintf(" index=%d", m.Index)
	case raftpb.MsgHeartbeat:
		s += fmt.Sprintf(" commit=%d", m.Commit)
	case raftpb.MsgVote, raftpb.MsgPreVote:
		s += fmt.Sprintf(" log=%d/%d", m.LogTerm, m.Index)
		if len(m.Context) > 0 {
			s += " (transfer)"
		}
	}
	if m.Reject {
		s += " rejected"
	}
	if h.Msg.Quiesce {
		s += " quiesce"
	}
	return s
}
