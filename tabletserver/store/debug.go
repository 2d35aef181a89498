package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DebugTablet describes the store's replica of tabletID for a person
// chasing a stuck tablet: its raft status (term, role, leader, commit,
// applied and, on a leader, every peer's progress), its descriptor and
// what the store believes about its peer stores (dead, busy). It waits
// for the Ready loop between iterations, at most until ctx ends.
func (s *Store) DebugTablet(ctx context.Context, tabletID uint64) string {
	r := s.getReplica(tabletID)
	if r == nil {
		return fmt.Sprintf("store %d: no replica of tablet %d\n%s", s.opts.StoreID, tabletID, s.TabletEvents(tabletID))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "store %d tablet %d: desc %v\n", s.opts.StoreID, tabletID, r.descriptor())
	r.mu.Lock()
	fmt.Fprintf(&b, "  replica %d peers %v leader %d term %d applied %d quiesced %v merging-into %d\n",
		r.replicaID, r.mu.peers, r.mu.leaderID, r.mu.term, r.mu.applied, r.mu.quiesced, r.mu.mergingInto)
	r.mu.Unlock()
	locked := make(chan struct{})
	go func() { //stop:short-lived waits for one Ready iteration, bounded by the caller's ctx
		s.loop.Lock()
		close(locked)
	}()
	select {
	case <-locked:
		if r.raw == nil {
			fmt.Fprintf(&b, "  raft: not initialized\n")
		} else {
			st := r.raw.Status()
			fmt.Fprintf(&b, "  raft: %s term %d vote %d lead %d commit %d applied %d lead-transferee %d\n",
				st.RaftState, st.Term, st.Vote, st.Lead, st.Commit, st.Applied, st.LeadTransferee)
			for _, id := range slices.Sorted(maps.Keys(st.Progress)) {
				fmt.Fprintf(&b, "    progress %d: %v\n", id, st.Progress[id])
			}
			_, awake := s.awake[tabletID]
			fmt.Fprintf(&b, "  awake %v pending-conf-change %v\n", awake, r.pendingConfChange)
		}
		s.loop.Unlock()
	case <-ctx.Done():
		fmt.Fprintf(&b, "  raft: the Ready loop stayed in one iteration until the deadline\n")
		go func() { <-locked; s.loop.Unlock() }() //stop:short-lived releases the lock once taken
	}
	for _, line := range strings.Split(strings.TrimSpace(s.TabletEvents(tabletID)), "\n") {
		if line != "" {
			fmt.Fprintf(&b, "  event %s\n", line)
		}
	}
	s.liveness.Lock()
	fmt.Fprintf(&b, "  liveness: dead %v busy %v\n", s.liveness.dead, s.liveness.busy)
	s.liveness.Unlock()
	return b.String()
}
