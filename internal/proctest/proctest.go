package proctest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/freeport"
	"github.com/shaledb/shale/internal/testutils"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// BinaryEnv names a shale binary built beforehand: `make test` builds
// bin/shale once and sets it, so that the test binaries that start
// processes (seven packages) do not each build and link their own.
const BinaryEnv = "SHALE_TEST_BINARY"

// Binary returns the path of a shale binary: $SHALE_TEST_BINARY when set,
// else one built (static, cgo off) into a temporary directory the first
// time it is called.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			binPath = p
			if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				buildErr = fmt.Errorf("%s=%s: not an executable file (%v); unset it to build one", BinaryEnv, p, err)
			}
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "shale-proctest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shale")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/shale")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building shale: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeAddr returns a free 127.0.0.1 address below the ephemeral port range
// (see package freeport) for a server a test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Proc is a running process.
type Proc struct {
	Name string
	Log  string
	from int64 // where this run's output starts in Log
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs `shale args...` with stdout and stderr appended to logPath.
// The process is killed at test cleanup if still running; when the test
// failed, the tail of its log is printed.
func Start(t testing.TB, name, logPath string, args ...string) *Proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "==== start %s at %s: %s ====\n", name, time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	from, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	cmd := exec.Command(Binary(t), args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &Proc{Name: name, Log: logPath, from: from, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- tail of %s (%s) ----\n%s", name, logPath, Tail(logPath, 60))
		}
	})
	return p
}

// Kill sends SIGKILL and waits for the process to be reaped.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig and waits up to timeout for exit; it returns the exit
// code (-1 on timeout, after which the process is killed).
func (p *Proc) Signal(sig os.Signal, timeout time.Duration) int {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.Kill()
		return -1
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitHealthy waits until http://addr/healthz answers 200.
func (p *Proc) WaitHealthy(t testing.TB, addr string) {
	t.Helper()
	p.WaitHealthyTLS(t, addr, nil)
}

// WaitHealthyTLS waits until addr's /healthz answers 200, over https with
// cfg when it is set (a secure server's status port).
func (p *Proc) WaitHealthyTLS(t testing.TB, addr string, cfg *tls.Config) {
	t.Helper()
	client, scheme := &http.Client{Timeout: time.Second}, "http://"
	if cfg != nil {
		client.Transport, scheme = &http.Transport{TLSClientConfig: cfg}, "https://"
	}
	testutils.SucceedsSoon(t, func() error {
		resp, err := client.Get(scheme + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		if p.Exited() {
			t.Fatalf("%s exited before becoming healthy; log tail:\n%s", p.Name, Tail(p.Log, 30))
		}
		return fmt.Errorf("%s not healthy: %w", p.Name, err)
	})
}

// WaitOutput waits until this run of the process has written marker to
// its log and returns what it wrote so far. A process that exits first
// fails the test. The process bounds its own startup (it gives up and
// exits when it stops making progress); the backstop here is for a hung
// one.
func (p *Proc) WaitOutput(t testing.TB, marker string, backstop time.Duration) string {
	t.Helper()
	start := time.Now()
	var out string
	testutils.SucceedsWithin(t, backstop, func() error {
		b, err := os.ReadFile(p.Log)
		if err != nil {
			return err
		}
		if int64(len(b)) >= p.from {
			out = string(b[p.from:])
		}
		if strings.Contains(out, marker) {
			return nil
		}
		if p.Exited() {
			t.Fatalf("%s exited before printing %q:\n%s", p.Name, marker, Tail(p.Log, 40))
		}
		return fmt.Errorf("%s has not printed %q", p.Name, marker)
	})
	t.Logf("%s printed %q %v after the wait began", p.Name, marker, time.Since(start).Round(time.Millisecond))
	return out
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// KillAll sends SIGKILL to every process before waiting for any, so they
// die at (nearly) the same instant.
func KillAll(ps ...*Proc) {
	for _, p := range ps {
		_ = p.cmd.Process.Kill()
	}
	for _, p := range ps {
		<-p.done
	}
}
