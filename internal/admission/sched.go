package admission

import (
	"math"
	"runtime/metrics"
	"sync"
	"time"
)

const schedLatencyMetric = "/sched/latencies:seconds"

// SchedSampler measures the Go scheduler's latency: how long goroutines
// wait runnable before they run. P99 gives the 99th percentile of the
// waits since its previous call (the runtime's histogram is cumulative;
// the sampler keeps the last counts).
type SchedSampler struct {
	mu     sync.Mutex
	sample []metrics.Sample
	prev   []uint64
}

// NewSchedSampler returns a sampler of the running process.
func NewSchedSampler() *SchedSampler {
	return &SchedSampler{sample: []metrics.Sample{{Name: schedLatencyMetric}}}
}

// P99 returns the p99 scheduling latency since the previous call (0 on the
// first call or when nothing was scheduled).
func (s *SchedSampler) P99() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0 // not supported by this runtime
	}
	h := s.sample[0].Value.Float64Histogram()
	first := s.prev == nil
	if first {
		s.prev = make([]uint64, len(h.Counts))
	}
	delta := make([]uint64, len(h.Counts))
	for i, c := range h.Counts {
		delta[i] = c - s.prev[i]
		s.prev[i] = c
	}
	if first {
		return 0
	}
	return quantile(delta, h.Buckets, 0.99)
}

// quantile returns the q quantile of a histogram's counts, whose bucket i
// spans [buckets[i], buckets[i+1]) seconds; it answers the bucket's upper
// bound (a finite one), erring on the side of overload.
func quantile(counts []uint64, buckets []float64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(float64(total) * q))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			hi := buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = buckets[i]
			}
			return time.Duration(hi * float64(time.Second))
		}
	}
	return 0
}
