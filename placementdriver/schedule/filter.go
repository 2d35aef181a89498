package schedule

// snapshotRoom is how many more snapshots the store may take part in: the
// limit minus the larger of the Controller's own count and what the store
// reported (which includes snapshots the Controller does not know of).
func snapshotRoom(view OperatorView, cfg *Config, s *Store) int {
	inflight := view.SnapshotsInFlight(s.ID)
	return s.snapshotLimit(cfg) - max(inflight, s.SendingSnapshots+s.ReceivingSnapshots)
}

// snapshotLimit is the store's own limit, or MaxSnapshotsPerStore.
func (s *Store) snapshotLimit(cfg *Config) int {
	if s.SnapshotLimit > 0 {
		return s.SnapshotLimit
	}
	return cfg.MaxSnapshotsPerStore
}

// hasSpace reports whether the store can take a replica of t. Stores that
// report no capacity are assumed to have room; a disk-full store has none.
func hasSpace(s *Store, t *Tablet) bool {
	return !s.DiskFull && (s.CapacityBytes == 0 || s.AvailableBytes >= t.Size)
}

// healthy reports whether the tablet is in a steady state that balance and
// placement may disturb: exactly MaxReplicas voters, no learners, nothing
// down or pending.
func healthy(t *Tablet, maxReplicas int) bool {
	if len(t.DownReplicas) > 0 || len(t.PendingReplicas) > 0 || len(t.BadReplicas) > 0 || t.Inconsistent || len(t.Replicas) != maxReplicas {
		return false
	}
	for _, r := range t.Replicas {
		if r.Learner {
			return false
		}
	}
	return true
}

// voterStores returns the stores of t's voters, optionally skipping one.
func voterStores(t *Tablet, skip uint64) []uint64 {
	out := make([]uint64, 0, len(t.Replicas))
	for _, r := range t.Replicas {
		if !r.Learner && r.StoreID != skip {
			out = append(out, r.StoreID)
		}
	}
	return out
}

// targetPicker chooses new homes for replicas.
type targetPicker struct {
	cfg  *Config
	view OperatorView
	locs locations
}

// best returns the Up store with room that does not hold a replica of t and
// has the highest distinct score against others, breaking ties by fewest
// replicas (counting pending influence) and then lowest ID. It returns 0
// and the score when nothing qualifies.
func (p *targetPicker) best(c *Cluster, t *Tablet, others []uint64) (uint64, float64) {
	p.locs.refresh(c, p.cfg.LocationLabels)
	var best uint64
	var bestScore float64
	bestCount := 0
	for _, si := range c.stores {
		s := si.store
		if s.State != StoreUp || t.HasStore(s.ID) || !hasSpace(s, t) || snapshotRoom(p.view, p.cfg, s) <= 0 {
			continue
		}
		sc := p.locs.score(s.ID, others)
		n := len(si.tablets) + p.view.Influence(s.ID).Tablets
		if best == 0 || sc > bestScore || (sc == bestScore && n < bestCount) {
			best, bestScore, bestCount = s.ID, sc, n
		}
	}
	return best, bestScore
}
