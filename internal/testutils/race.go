//go:build race

package testutils

// raceEnabled is set when the race detector is compiled in (it slows code
// down several times).
const raceEnabled = true
