//go:build !race

package testutils

const raceEnabled = false
