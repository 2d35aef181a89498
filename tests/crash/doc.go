// Package crash holds process-level crash tests: they build the shale
// binary, run real `shale tablet` processes on loopback, kill -9 them in the
// middle of writes, restart them, and check that every acknowledged write
// survived. Run with
//
//	go test ./tests/crash/ -count=1 -v [-seed N] [-cycles N]
//
// -short skips the long crash loop.
package crash
