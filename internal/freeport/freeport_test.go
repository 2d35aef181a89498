package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Addr hands out bindable loopback ports below the ephemeral range, and
// distinct ones when asked repeatedly.
func TestAddr(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || port < RangeLow || port >= RangeHigh {
			t.Fatalf("Addr() = %s, want 127.0.0.1 with a port in [%d, %d)", a, RangeLow, RangeHigh)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("Addr() = %s, which cannot be bound: %v", a, err)
		}
		// Held open, so later draws must avoid it.
		defer l.Close()
		if seen[a] {
			t.Fatalf("Addr() returned %s twice while it was bound", a)
		}
		seen[a] = true
	}
}
