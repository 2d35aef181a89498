// Package proctest runs real `shale` processes in tests: it builds the
// binary once per test binary, starts processes with their output in a log
// file, kills or signals them, waits for their /healthz, and prints the
// tail of every log when a test fails.
package proctest
