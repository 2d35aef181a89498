//go:build !race

package sim

// defaultSimTablets is the tablet count of TestSimConverges.
const defaultSimTablets = 100_000
