//go:build race

package sim

// Under the race detector the full-size run is too slow for CI; the
// full size stays available through -sim.tablets=100000 and the benchmarks.
const defaultSimTablets = 10_000
