package schedule

import "math"

// Placement across failure domains follows PD's distinct score: for labels
// L0 (most general) .. Ln-1, two stores that first differ at label i
// contribute replicaBaseScore^(n-1-i) to each other's score, and nothing
// when they agree on every label. A replica's score is the sum over the
// tablet's other replicas, so a replica sharing a zone with another scores
// far lower than one alone in its zone, and replacing the lowest-scoring
// replica by a higher-scoring store always improves isolation.
const replicaBaseScore = 100

// locations interns the label values of every store so that comparisons in
// the hot path are integer compares. It is rebuilt when the cluster's stores
// change (Cluster.storeGen).
type locations struct {
	c      *Cluster
	gen    uint64
	labels []string
	loc    map[uint64][]int32 // store ID → interned value per label (-1: missing)
	// upZones is the number of distinct values of the first label among Up
	// stores; -1 until computed.
	upZones int
}

func (l *locations) refresh(c *Cluster, labels []string) {
	if l.c == c && l.gen == c.storeGen && l.loc != nil {
		return
	}
	l.c, l.gen, l.labels, l.upZones = c, c.storeGen, labels, -1
	l.loc = make(map[uint64][]int32, len(c.stores))
	intern := make([]map[string]int32, len(labels))
	for i := range intern {
		intern[i] = map[string]int32{}
	}
	for _, si := range c.stores {
		v := make([]int32, len(labels))
		for i, key := range labels {
			val, ok := si.store.Labels[key]
			if !ok {
				v[i] = -1
				continue
			}
			id, ok := intern[i][val]
			if !ok {
				id = int32(len(intern[i]))
				intern[i][val] = id
			}
			v[i] = id
		}
		l.loc[si.store.ID] = v
	}
}

// diffLevel returns the index of the first label where the two stores
// differ, or -1 when they share a location. A missing label on either side
// counts as a difference only if the other side has it (PD treats missing
// labels as unknown, i.e. possibly equal; we are stricter so that an
// unlabelled cluster still spreads by store).
func (l *locations) diffLevel(a, b uint64) int {
	la, lb := l.loc[a], l.loc[b]
	for i := range la {
		if la[i] != lb[i] {
			return i
		}
	}
	return -1
}

// score is the distinct score of store s against the stores in others
// (s itself is skipped if present).
func (l *locations) score(s uint64, others []uint64) float64 {
	n := len(l.labels)
	var sc float64
	for _, o := range others {
		if o == s {
			continue
		}
		if i := l.diffLevel(s, o); i >= 0 {
			sc += math.Pow(replicaBaseScore, float64(n-1-i))
		} else if n == 0 {
			// No labels configured: distinct stores are all equally good.
			sc++
		}
	}
	return sc
}

// DistinctScore is PD's isolation score of store s against the other
// stores, for the given location labels. Higher is better.
func DistinctScore(c *Cluster, labels []string, s uint64, others []uint64) float64 {
	var l locations
	l.refresh(c, labels)
	return l.score(s, others)
}

// PlacementViolation reports whether two of the tablet's voters share a
// location (agree on every location label) or, with labels configured, the
// most general label while the cluster's Up stores offer enough distinct
// values of it for every replica. It is the invariant the placement checker
// maintains; tests and the simulator assert it.
func PlacementViolation(c *Cluster, labels []string, t *Tablet) bool {
	var l locations
	l.refresh(c, labels)
	return l.violation(c, t)
}

func (l *locations) violation(c *Cluster, t *Tablet) bool {
	if len(l.labels) == 0 {
		return false
	}
	if l.upZones < 0 {
		zones := map[int32]bool{}
		for _, si := range c.stores {
			if si.store.State == StoreUp {
				zones[l.loc[si.store.ID][0]] = true
			}
		}
		l.upZones = len(zones)
	}
	enoughZones := l.upZones >= len(t.Replicas)
	for i, a := range t.Replicas {
		for _, b := range t.Replicas[i+1:] {
			if a.Learner || b.Learner {
				continue // a move in progress
			}
			d := l.diffLevel(a.StoreID, b.StoreID)
			if d < 0 || (d > 0 && enoughZones) {
				return true
			}
		}
	}
	return false
}

// CountPlacementViolations is the number of tablets for which
// PlacementViolation holds, computed in one pass.
func CountPlacementViolations(c *Cluster, labels []string) int {
	var l locations
	l.refresh(c, labels)
	n := 0
	for _, t := range c.byKey {
		if l.violation(c, t) {
			n++
		}
	}
	return n
}
