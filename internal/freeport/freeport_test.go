package freeport

import (
	"net"
	"os"
	"path/filepath"
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

// A port reserved by a live process is never handed out; one reserved by a
// dead process is reclaimed.
func TestAddrSkipsAnotherProcessesReservations(t *testing.T) {
	old := reservationDir
	reservationDir = t.TempDir()
	defer func() { reservationDir = old }()
	// Every port but two is held by a live process (PID 1); of the two, one
	// is held by a PID that does not exist.
	dead := RangeLow + 7
	free := RangeLow + 11
	for p := RangeLow; p < RangeHigh; p++ {
		owner := "1"
		switch p {
		case dead:
			owner = "2147483646"
		case free:
			continue
		}
		if err := os.WriteFile(filepath.Join(reservationDir, strconv.Itoa(p)), []byte(owner), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	got := map[int]bool{}
	for range 2 {
		a, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		got[port] = true
	}
	for port := range got {
		if port >= RangeLow && port < RangeHigh && port != dead && port != free {
			t.Fatalf("Addr handed out port %d, reserved by a live process", port)
		}
	}
}
