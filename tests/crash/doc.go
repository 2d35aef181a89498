// Package crash holds process-level crash tests: they build the shale
// binary, run real `shale tablet` processes on loopback, kill -9 them in the
// middle of writes, restart them, and check that every acknowledged write
// survived. Run with
//
//	[SHALE_TEST_SEED=N] go test ./tests/crash/ -count=1 -v [-cycles N] [-pd-cycles N]
//
// TestCrashRestart runs a static cluster (3 stores, no PD; 20 cycles by
// default), TestCrashRestartPD one `shale pd` and 3 `shale tablet --pd`
// (4 cycles by default), killing every process at once in each cycle.
// SHALE_CRASH_CYCLES and SHALE_CRASH_PD_CYCLES override the cycle counts;
// `make e2e` runs 60 and 20. -short skips the crash loops.
//
// The tests run in parallel with each other (-parallel of them at once,
// GOMAXPROCS by default): each has its own processes, ports and
// directories, and mostly waits on their restarts and fsyncs.
package crash
