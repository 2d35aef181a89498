package admission

import "math"

// EngineStats is the engine state the write tokens follow (from
// pebble.DB.Metrics, read once per Interval, never per request).
type EngineStats struct {
	// L0Sublevels is L0's read amplification.
	L0Sublevels int
	// L0Files and L0Bytes are L0's table count and size.
	L0Files int64
	L0Bytes int64
	// L0AddedBytes counts, cumulatively, the bytes flushed and ingested
	// into L0.
	L0AddedBytes uint64
	// CompactionDebt is Pebble's estimate of the bytes compactions still
	// owe.
	CompactionDebt uint64
}

// writeModel turns engine samples into write tokens, after CockroachDB's
// ioLoadListener: while L0 is overloaded the store admits, per interval,
// the request bytes that correspond to what compactions drained out of L0
// in the last one, so L0 stops growing.
type writeModel struct {
	have      bool
	prev      EngineStats
	admitted  int64   // request bytes admitted since the last sample
	compacted float64 // smoothed L0 bytes compacted out per interval
	amp       float64 // smoothed L0 bytes added per admitted request byte
}

// minWriteTokens keeps a trickle of writes going while L0 is overloaded,
// so a store never refuses every write for lack of a compaction sample.
const minWriteTokens = 1 << 20

// score is how overloaded L0 is: >= 1 at any threshold.
func score(e EngineStats, s Settings) float64 {
	return max(float64(e.L0Sublevels)/float64(s.L0SublevelThreshold),
		float64(e.L0Files)/float64(s.L0FileThreshold),
		float64(e.CompactionDebt)/float64(s.CompactionDebtThreshold))
}

// sample takes the engine's state at the end of an interval and returns
// the write tokens for the next one (math.Inf when writes need no pacing)
// and the overload score.
func (m *writeModel) sample(e EngineStats, s Settings) (tokens, sc float64) {
	admitted := m.admitted
	m.admitted = 0
	if m.have {
		added := float64(e.L0AddedBytes - m.prev.L0AddedBytes)
		// What left L0: what was there, plus what came in, minus what is
		// there now.
		out := max(float64(m.prev.L0Bytes)+added-float64(e.L0Bytes), 0)
		m.compacted = smooth(m.compacted, out)
		if admitted > 0 && added > 0 {
			m.amp = smooth(m.amp, min(max(added/float64(admitted), 0.1), 100))
		}
	}
	m.prev, m.have = e, true
	sc = score(e, s)
	if sc < 1 {
		return math.Inf(1), sc
	}
	amp := m.amp
	if amp == 0 {
		amp = 1
	}
	// At twice the threshold admit half the drain, and so on: L0 shrinks.
	return max(m.compacted/amp/sc, minWriteTokens), sc
}

// smooth is an exponentially weighted average, alpha 1/2 (as CockroachDB's
// token computations).
func smooth(prev, v float64) float64 {
	if prev == 0 {
		return v
	}
	return (prev + v) / 2
}
