package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/transportpb"
)

// Hooks for the datadriven harness (datadriven_test.go), which drives
// stores with a manual Clock and delivers their raft messages by hand.

// DeliverForTest hands a batch of raft messages to the store as its
// transport would, while the Ready loop waits: it then takes them all in
// one iteration, whatever the goroutine schedule.
func (s *Store) DeliverForTest(b *transportpb.RaftMessageBatch) {
	s.loop.Lock()
	defer s.loop.Unlock()
	(*transportHandler)(s).HandleRaftBatch(b)
}

// TicksForTest is how many ticks the Ready loop has processed.
func (s *Store) TicksForTest() uint64 { return s.loop.ticks.Load() }

// IdleForTest reports whether the Ready loop has nothing queued and is not
// running an iteration, and how many times work was queued so far.
func (s *Store) IdleForTest() (idle bool, enqueued uint64) {
	s.queue.Lock()
	defer s.queue.Unlock()
	return !s.loop.busy.Load() && len(s.wake) == 0 && len(s.queue.pending) == 0, s.queue.n
}

// CampaignForTest makes the store's replica of the tablet campaign.
func (s *Store) CampaignForTest(ctx context.Context, tabletID uint64) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	return r.runOnWorker(ctx, func(r *replica) error { return r.raw.Campaign() })
}

// RecoverMergesForTest runs one round of merge recovery.
func (s *Store) RecoverMergesForTest(after time.Duration) {
	s.recoverMerges(context.Background(), after)
}

// ReplicaStateForTest describes the store's replica of the tablet in one
// line: leader, term, applied index, lease, and frozen state. Durations
// are measured on the store's Clock, so the line is stable under a manual
// one.
func (s *Store) ReplicaStateForTest(tabletID uint64) (string, bool) {
	r := s.getReplica(tabletID)
	if r == nil {
		return "", false
	}
	now := s.opts.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.desc == nil || r.mu.destroyed {
		return "", false
	}
	d := r.mu.desc
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s, %s) epoch=%d/%d replicas=", rowOf(d.StartKey), rowOf(d.EndKey), d.Epoch.GetVersion(), d.Epoch.GetConfVersion())
	for i, rep := range d.Replicas {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "s%d", rep.StoreId)
	}
	leader := "none"
	if st := r.mu.peers[r.mu.leaderID]; st != 0 {
		leader = fmt.Sprintf("s%d", st)
	}
	fmt.Fprintf(&b, " leader=%s term=%d applied=%d", leader, r.mu.term, r.mu.applied)
	if r.mu.isLeader {
		switch l := r.mu.lease; {
		case now.Before(l.until):
			fmt.Fprintf(&b, " lease=%v", l.until.Sub(now))
		case !l.until.IsZero():
			fmt.Fprintf(&b, " lease=expired")
		default:
			fmt.Fprintf(&b, " lease=none")
		}
	}
	if r.mu.quiesced {
		b.WriteString(" quiesced")
	}
	if r.mu.mergingInto != 0 {
		fmt.Fprintf(&b, " frozen-for-merge-into=%d", r.mu.mergingInto)
	}
	return b.String(), true
}

// rowOf renders an encoded row key of a tablet bound as its row (or the
// table prefix as "-").
func rowOf(k []byte) string {
	if len(k) <= 8 {
		return "-"
	}
	if _, row, err := keys.DecodeRowKey(k); err == nil {
		return string(row)
	}
	return fmt.Sprintf("%x", k)
}

// LocalRowsForTest lists the newest value of every live user cell of the
// tablet in this store's engine, without raft (a follower's view too):
// "row fam:qual=value".
func (s *Store) LocalRowsForTest(tabletID uint64) ([]string, error) {
	r := s.getReplica(tabletID)
	if r == nil {
		return nil, fmt.Errorf("no replica of tablet %d on store %d", tabletID, s.opts.StoreID)
	}
	snap, desc, err := s.pinnedRead(r, nil, 0)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	var last []byte
	for it.First(); it.Valid(); it.Next() {
		ck, err := keys.StripDataKey(it.Key())
		if err != nil {
			return nil, err
		}
		c, err := keys.DecodeCellKey(ck)
		if err != nil {
			return nil, err
		}
		if c.Family == dedupFamily {
			continue
		}
		col := keys.ColumnPrefix(c.TableID, c.Row, c.Family, c.Qualifier)
		if bytes.Equal(col, last) {
			continue // an older version
		}
		last = bytes.Clone(col)
		v, tombstone, err := cellValue(it.Key(), it.Value())
		if err != nil {
			return nil, err
		}
		if tombstone {
			continue // deleted
		}
		out = append(out, fmt.Sprintf("%s %s:%s=%s", c.Row, c.Family, c.Qualifier, v))
	}
	return out, it.Error()
}

// GCDueForTest is one round of the GC queue's choice for the tablet: why
// it would read the tablet whole, "" to leave it for a later round.
func (s *Store) GCDueForTest(tabletID uint64) string {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		panic(err)
	}
	return r.gcDue(s)
}
