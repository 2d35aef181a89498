//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
)

// Fault kinds, in the order the report lists them.
const (
	FaultKillTablet     = "kill-tablet"
	FaultKillPD         = "kill-pd"
	FaultPause          = "pause"
	FaultPartitionPD    = "partition-pd-leader"
	FaultPartitionHot   = "partition-hot-leader"
	FaultPartitionTwo   = "partition-two"
	FaultRollingRestart = "rolling-restart"
	FaultSplit          = "split"
	FaultTransferLeader = "transfer-leader"
	FaultMoveReplica    = "move-replica"
)

var faultKinds = []string{FaultKillTablet, FaultKillPD, FaultPause, FaultPartitionPD, FaultPartitionHot,
	FaultPartitionTwo, FaultRollingRestart, FaultSplit, FaultTransferLeader, FaultMoveReplica}

// faultEvent is one injected fault, for the report and the history.
type faultEvent struct {
	Kind    string `json:"kind"`
	Targets string `json:"targets"`
	Start   int64  `json:"start"` // ns since the run started
	End     int64  `json:"end"`
	Err     string `json:"err,omitempty"`
	// Refused: the cluster declined the fault for a reason it gives (an
	// operator already running on the tablet, a target not caught up), or
	// its precondition did not hold. Any other error means the fault (or
	// its heal) failed, and fails the run.
	Refused bool `json:"refused,omitempty"`
}

// errRefused marks a fault the cluster declined with a typed reason, or
// whose precondition did not hold: not injected, but not a failure.
var errRefused = errors.New("refused")

// refusals are the reasons, in shale ctl's output, for which PD or a
// tablet server declines an admin request while the cluster is healthy.
var refusals = []string{"already has an operator", "not caught up", "server busy", "no leader elected yet"}

// nemesis injects faults into a cluster on a schedule from its rng.
type nemesis struct {
	c      *cluster
	rng    *rand.Rand
	now    func() int64
	shale  string // host binary, for `shale ctl`
	hotKey []byte // an encoded key of the hot (register) tablet
	// splitKeys are encoded row keys of the workload tables to split at.
	splitKeys [][]byte
	logf      func(string, ...any)

	mu     sync.Mutex
	events []faultEvent
}

// run injects faults until ctx is done: the kinds in a shuffled order,
// reshuffled after each round, so every kind comes up in a long enough
// run. Each fault is healed before the next starts.
func (n *nemesis) run(ctx context.Context) {
	var bag []string
	for ctx.Err() == nil {
		if len(bag) == 0 {
			bag = append(bag, faultKinds...)
			n.rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		kind := bag[0]
		bag = bag[1:]
		if !sleepCtx(ctx, time.Duration(1000+n.rng.IntN(2000))*time.Millisecond) {
			return
		}
		ev := faultEvent{Kind: kind, Start: n.now()}
		targets, err := n.inject(ctx, kind)
		ev.Targets, ev.End = targets, n.now()
		if err != nil {
			ev.Err, ev.Refused = err.Error(), errors.Is(err, errRefused)
		}
		n.logf("nemesis: %-21s %-24s %5.1fs–%5.1fs %s", kind, targets, float64(ev.Start)/1e9, float64(ev.End)/1e9, ev.Err)
		n.mu.Lock()
		n.events = append(n.events, ev)
		n.mu.Unlock()
	}
}

// hold is how long a fault lasts before it is healed.
func (n *nemesis) hold() time.Duration {
	return time.Duration(2000+n.rng.IntN(6000)) * time.Millisecond
}

// inject applies one fault, holds it and heals it; it returns the targets.
// The hold ends early if ctx is done, but the heal always runs.
func (n *nemesis) inject(ctx context.Context, kind string) (string, error) {
	c := n.c
	switch kind {
	case FaultKillTablet, FaultKillPD:
		pool := tabletNodes
		if kind == FaultKillPD {
			pool = pdNodes
			if n.rng.IntN(2) == 0 {
				if l, err := c.pdLeader(); err == nil {
					pool = []node{l}
				}
			}
		}
		t := pool[n.rng.IntN(len(pool))]
		if _, err := c.docker(time.Minute, "kill", "-s", "KILL", c.container(t)); err != nil {
			return t.name, err
		}
		sleepCtx(ctx, n.hold())
		return t.name, n.restart(t)
	case FaultPause:
		all := serverNodes()
		t := all[n.rng.IntN(len(all))]
		c.mu.Lock()
		c.paused[c.container(t)] = true
		c.mu.Unlock()
		if out, err := c.docker(time.Minute, "pause", c.container(t)); err != nil {
			return t.name, fmt.Errorf("%v: %s", err, out)
		}
		sleepCtx(ctx, n.hold())
		out, err := c.docker(time.Minute, "unpause", c.container(t))
		if err != nil {
			return t.name, fmt.Errorf("%v: %s", err, out)
		}
		c.mu.Lock()
		delete(c.paused, c.container(t))
		c.mu.Unlock()
		return t.name, c.awaitHealthy([]node{t}, 2*time.Minute)
	case FaultPartitionPD, FaultPartitionHot, FaultPartitionTwo:
		var targets []node
		switch kind {
		case FaultPartitionPD:
			var l node
			if err := n.lookup(func() (err error) { l, err = c.pdLeader(); return err }); err != nil {
				return "", err
			}
			targets = []node{l}
		case FaultPartitionHot:
			var t node
			if err := n.lookup(func() (err error) { t, err = n.hotLeader(); return err }); err != nil {
				return "", err
			}
			targets = []node{t}
		default:
			all := serverNodes()
			n.rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			targets = all[:2]
		}
		names := nodeNames(targets)
		for _, t := range targets {
			c.mu.Lock()
			c.cut[c.container(t)] = true
			c.mu.Unlock()
			if out, err := c.docker(time.Minute, "network", "disconnect", c.network(), c.container(t)); err != nil {
				return names, fmt.Errorf("disconnect %s: %v: %s", t.name, err, out)
			}
		}
		sleepCtx(ctx, n.hold())
		var firstErr error
		for _, t := range targets {
			if err := n.reconnect(t); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			return names, firstErr
		}
		return names, c.awaitHealthy(targets, 2*time.Minute)
	case FaultRollingRestart:
		// Every server in turn, gracefully (SIGTERM, then SIGKILL after
		// 10s), each healthy again before the next.
		for _, t := range append(serverNodes(), thriftNode) {
			if out, err := c.docker(2*time.Minute, "restart", "-t", "10", c.container(t)); err != nil {
				return "all", fmt.Errorf("restart %s: %v: %s", t.name, err, out)
			}
			if err := c.awaitHealthy([]node{t}, time.Minute); err != nil {
				return "all", err
			}
		}
		return "all", nil
	case FaultSplit:
		key := n.splitKeys[n.rng.IntN(len(n.splitKeys))]
		var tb pdTablet
		if err := n.lookup(func() (err error) { tb, err = c.tabletFor(key); return err }); err != nil {
			return "", err
		}
		target := fmt.Sprintf("tablet %d at %x", tb.ID, key)
		if tb.StartKey == fmt.Sprintf("%x", key) {
			return target, nil // already a boundary
		}
		if err := n.ctl("split", fmt.Sprint(tb.ID), "--key", fmt.Sprintf("%x", key)); err != nil {
			return target, err
		}
		sleepCtx(ctx, n.hold())
		return target, nil
	case FaultTransferLeader:
		var tb pdTablet
		if err := n.lookup(func() (err error) { tb, err = n.hotTablet(); return err }); err != nil {
			return "", err
		}
		var voters []uint64
		for _, p := range tb.Peers {
			if p.Role == "voter" && p.StoreID != tb.Leader {
				voters = append(voters, p.StoreID)
			}
		}
		if len(voters) == 0 {
			return fmt.Sprintf("tablet %d", tb.ID), fmt.Errorf("%w: tablet %d has no other voter", errRefused, tb.ID)
		}
		to := voters[n.rng.IntN(len(voters))]
		target := fmt.Sprintf("tablet %d %d→%d", tb.ID, tb.Leader, to)
		if err := n.ctl("transfer-leader", fmt.Sprint(tb.ID), fmt.Sprint(to)); err != nil {
			return target, err
		}
		sleepCtx(ctx, n.hold())
		return target, nil
	case FaultMoveReplica:
		// A membership change of the hot tablet: a random replica (the
		// leader too: PD moves leadership first) to a store without one.
		// The move runs as a PD operator (add learner, snapshot, joint
		// change) while the workload runs, and while the next faults hit.
		var tb pdTablet
		if err := n.lookup(func() (err error) { tb, err = n.hotTablet(); return err }); err != nil {
			return "", err
		}
		var stores []pdStore
		if err := n.lookup(func() error { return c.pdGet("stores", &stores) }); err != nil {
			return fmt.Sprintf("tablet %d", tb.ID), err
		}
		has := map[uint64]bool{}
		var from []uint64
		for _, p := range tb.Peers {
			has[p.StoreID] = true
			if p.Role == "voter" {
				from = append(from, p.StoreID)
			}
		}
		var to []uint64
		for _, st := range stores {
			if st.State == "Up" && !has[st.ID] {
				to = append(to, st.ID)
			}
		}
		if len(from) == 0 || len(to) == 0 {
			return fmt.Sprintf("tablet %d", tb.ID), fmt.Errorf("%w: tablet %d: no replica to move or no store to move it to (%v)", errRefused, tb.ID, tb.Peers)
		}
		src, dst := from[n.rng.IntN(len(from))], to[n.rng.IntN(len(to))]
		target := fmt.Sprintf("tablet %d %d→%d", tb.ID, src, dst)
		if err := n.ctl("move", fmt.Sprint(tb.ID), fmt.Sprint(src), fmt.Sprint(dst)); err != nil {
			return target, err
		}
		sleepCtx(ctx, n.hold())
		return target, n.awaitMoved(tb, src, dst, 30*time.Second)
	}
	return "", fmt.Errorf("unknown fault %q", kind)
}

// awaitMoved waits until the hot tablet (if it is still tablet id) has a
// voter on store to and no replica on store from. A move that never put
// anything on store to while another change took the tablet's membership
// elsewhere (a scheduler's operator that was running when the admin move
// was asked for: the admin operator, planned on the older membership,
// ends stale) was declined by the cluster, not failed.
func (n *nemesis) awaitMoved(before pdTablet, from, to uint64, timeout time.Duration) error {
	id := before.ID
	err := testutils.Retry(context.Background(), timeout, func() error {
		tb, err := n.c.tabletFor(n.hotKey)
		if err != nil {
			return err
		}
		if tb.ID != id {
			return nil // split or merged meanwhile: another shape
		}
		onFrom, voterOnTo := false, false
		for _, p := range tb.Peers {
			onFrom = onFrom || p.StoreID == from
			voterOnTo = voterOnTo || (p.StoreID == to && p.Role == "voter")
		}
		if voterOnTo && !onFrom {
			return nil
		}
		return fmt.Errorf("replicas %v", tb.Peers)
	})
	if err != nil {
		if tb, terr := n.c.tabletFor(n.hotKey); terr == nil && tb.ID == id && !hasStore(tb, to) && peerSet(tb) != peerSet(before) {
			return fmt.Errorf("%w: move of tablet %d from store %d to %d: its membership changed from %s to %s under the move, which never reached store %d", errRefused, id, from, to, peerSet(before), peerSet(tb), to)
		}
		return fmt.Errorf("move of tablet %d from store %d to %d: %w", id, from, to, err)
	}
	return nil
}

func hasStore(tb pdTablet, store uint64) bool {
	for _, p := range tb.Peers {
		if p.StoreID == store {
			return true
		}
	}
	return false
}

// peerSet is a tablet's membership as a comparable string (store:role,
// sorted).
func peerSet(tb pdTablet) string {
	var ps []string
	for _, p := range tb.Peers {
		ps = append(ps, fmt.Sprintf("%d:%s", p.StoreID, p.Role))
	}
	sort.Strings(ps)
	return strings.Join(ps, ",")
}

// restart starts a killed container again and waits until it is healthy.
func (n *nemesis) restart(t node) error {
	if out, err := n.c.docker(time.Minute, "start", n.c.container(t)); err != nil {
		return fmt.Errorf("start %s: %v: %s", t.name, err, out)
	}
	return n.c.awaitHealthy([]node{t}, time.Minute)
}

// reconnect puts a node back on the network at its fixed address.
func (n *nemesis) reconnect(t node) error {
	c := n.c
	out, err := c.docker(time.Minute, "network", "connect", "--ip", c.ip(t), c.network(), c.container(t))
	if err != nil && !strings.Contains(out, "already exists") {
		return fmt.Errorf("reconnect %s: %v: %s", t.name, err, out)
	}
	c.mu.Lock()
	delete(c.cut, c.container(t))
	c.mu.Unlock()
	return nil
}

// healAll undoes whatever fault is still in place (after a failed heal)
// and starts containers that are not running.
func (n *nemesis) healAll() error {
	c := n.c
	c.mu.Lock()
	paused := keysOf(c.paused)
	cut := keysOf(c.cut)
	c.mu.Unlock()
	for _, name := range paused {
		_, _ = c.docker(time.Minute, "unpause", name)
		c.mu.Lock()
		delete(c.paused, name)
		c.mu.Unlock()
	}
	for _, t := range append(serverNodes(), thriftNode) {
		for _, name := range cut {
			if name == c.container(t) {
				_ = n.reconnect(t)
			}
		}
		st, _ := c.docker(30*time.Second, "inspect", "-f", "{{.State.Running}}", c.container(t))
		if strings.TrimSpace(st) == "false" {
			_, _ = c.docker(time.Minute, "start", c.container(t))
		}
	}
	return c.awaitHealthy(append(serverNodes(), thriftNode), 90*time.Second)
}

// stateWait bounds how long the nemesis waits for PD's view of the
// cluster (its leader, the hot tablet's leader, the stores) before it
// picks a fault's target. Right after the previous fault healed, PD may
// still be electing a leader, or know a tablet's new leader only from the
// stores' next heartbeats: a fault cannot be aimed then, and that is not a
// fault the cluster failed to take. A view still missing after stateWait
// is reported as a violation.
const stateWait = 30 * time.Second

// lookup retries f, a read of PD's view, for up to stateWait.
func (n *nemesis) lookup(f func() error) error {
	return testutils.Retry(context.Background(), stateWait, f)
}

// hotTablet returns the hot tablet as PD sees it, with a known leader.
func (n *nemesis) hotTablet() (pdTablet, error) {
	tb, err := n.c.tabletFor(n.hotKey)
	if err != nil {
		return pdTablet{}, err
	}
	if tb.Leader == 0 {
		return pdTablet{}, fmt.Errorf("tablet %d has no leader", tb.ID)
	}
	return tb, nil
}

// hotLeader returns the tablet server leading the hot tablet.
func (n *nemesis) hotLeader() (node, error) {
	tb, err := n.hotTablet()
	if err != nil {
		return node{}, err
	}
	return n.c.storeNode(tb.Leader)
}

// ctl runs `shale ctl` against the cluster's PD, as root (cluster admin).
func (n *nemesis) ctl(args ...string) error {
	full := append(append([]string{"ctl", "--pd", strings.Join(n.c.pdAddrs(), ","), "--timeout", "20s"}, n.c.clientFlags()...), args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.shale, full...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("shale %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		for _, r := range refusals {
			if strings.Contains(string(out), r) {
				return fmt.Errorf("%w: %v", errRefused, err)
			}
		}
	}
	return err
}

func (n *nemesis) snapshot() []faultEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]faultEvent(nil), n.events...)
}

func nodeNames(ns []node) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.name)
	}
	return strings.Join(s, ",")
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sleepCtx sleeps for d or until ctx is done; it reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// rowKey is a row's encoded key, as PD's tablet boundaries are.
func rowKey(tableID uint64, row string) []byte { return keys.RowKey(tableID, []byte(row)) }
