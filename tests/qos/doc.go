// Package qos holds the in-process tests of admission control
// (internal/admission, docs/qos.md): one store driven past its capacity
// by many clients answers ServerBusy with a retry-after hint instead of
// letting requests queue into their deadlines, its goodput holds near the
// peak measured in the same test, and background work yields to the
// overloaded foreground yet completes. Run with
//
//	go test ./tests/qos/ -count=1 -v
package qos
