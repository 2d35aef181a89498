//go:build race

package qos

// raceEnabled: the race detector slows everything about tenfold.
const raceEnabled = true
