package freeport

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// Range is where Addr draws ports from: below the Linux ephemeral range.
const (
	RangeLow  = 20000
	RangeHigh = 32000
)

// handedOut holds the ports this process was given: a server is often
// told its address seconds before it binds it (a test cluster picks every
// address first), and a second draw must not hand out the same port.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// reservationDir holds one file per port handed out by a live process on
// this machine (its PID inside), so that test binaries running at once do
// not both pick a port neither has bound yet. Files of dead processes are
// reclaimed.
var reservationDir = filepath.Join(os.TempDir(), "shale-freeport")

// Addr returns "127.0.0.1:port" for a port that is free, not handed out
// before by this process and not reserved by another live one, drawn at
// random from [RangeLow, RangeHigh); it falls back to a port from ":0" if
// 100 draws are all taken.
func Addr() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 100 {
		port := RangeLow + rand.IntN(RangeHigh-RangeLow)
		if handedOut.ports[port] || !reserve(port) {
			continue
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			handedOut.ports[port] = true
			return l.Addr().String(), nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// reserve claims port for this process unless a live process holds it. A
// reservation that cannot be written (a read-only temp directory) does not
// stop the draw: the bind probe still checks the port.
func reserve(port int) bool {
	if err := os.MkdirAll(reservationDir, 0o777); err != nil {
		return true
	}
	path := filepath.Join(reservationDir, strconv.Itoa(port))
	for range 2 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			_, _ = fmt.Fprintf(f, "%d", os.Getpid())
			f.Close()
			return true
		}
		if !errors.Is(err, fs.ErrExist) {
			return true
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return false // being written by its owner
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid == os.Getpid() || alive(pid) {
			return false
		}
		_ = os.Remove(path) // a dead process's: reclaim it and try once more
	}
	return false
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
