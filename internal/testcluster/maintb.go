package testcluster

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// MainTB lets Start run from TestMain, outside any one test, so a package's
// tests can share one cluster: errors go to stderr (and make Failed true),
// Fatal exits the process, and Close runs the cleanups.
type MainTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	cleanups []func()
	dir      string
	errs     int
}

// NewMainTB makes a MainTB whose TempDirs live under a new directory.
func NewMainTB(name string) *MainTB {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return &MainTB{name: name, dir: dir}
}

func (m *MainTB) Helper()                         {}
func (m *MainTB) Name() string                    { return m.name }
func (m *MainTB) Logf(format string, args ...any) {}
func (m *MainTB) Log(args ...any)                 {}
func (m *MainTB) Errorf(format string, args ...any) {
	m.mu.Lock()
	m.errs++
	m.mu.Unlock()
	fmt.Fprintf(os.Stderr, m.name+": "+format+"\n", args...)
}
func (m *MainTB) Error(args ...any) { m.Errorf("%s", fmt.Sprint(args...)) }
func (m *MainTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{m.name + ":"}, args...)...)
	os.Exit(2)
}
func (m *MainTB) Fatalf(format string, args ...any) { m.Fatal(fmt.Sprintf(format, args...)) }
func (m *MainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}
func (m *MainTB) TempDir() string {
	d, err := os.MkdirTemp(m.dir, "tc")
	if err != nil {
		m.Fatal(err)
	}
	return d
}

// Failed reports whether Errorf or Error was called.
func (m *MainTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.errs > 0
}

// Close runs the cleanups, last first, and removes the directory.
func (m *MainTB) Close() {
	m.mu.Lock()
	cs := m.cleanups
	m.cleanups = nil
	m.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	os.RemoveAll(m.dir)
}
