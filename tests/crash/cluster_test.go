package crash

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/tabletserver/node"
)

var (
	seedFlag   = flag.Int64("seed", 0, "random seed for the crash test (0: derived from the time)")
	cyclesFlag = flag.Int("cycles", 20, "kill/restart cycles of the crash test")
	binPath    string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shale-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "shale")
	start := time.Now()
	build := exec.Command("go", "build", "-o", binPath, "./cmd/shale")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building shale: %v\n%s", err, out)
		return 1
	}
	fmt.Printf("built %s in %v\n", binPath, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// proc is one running `shale tablet` process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
}

// cluster is a static cluster of `shale tablet` processes on loopback. Its
// stores keep their data directories and ports across restarts.
type cluster struct {
	t        *testing.T
	dir      string
	peers    map[uint64]string
	httpAddr map[uint64]string
	logPath  map[uint64]string
	procs    map[uint64]*proc
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// newCluster picks ports and directories for n stores; it starts nothing.
// At cleanup every process still running is killed, and on failure the
// tail of every store's stderr is printed.
func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{
		t: t, dir: t.TempDir(),
		peers: map[uint64]string{}, httpAddr: map[uint64]string{},
		logPath: map[uint64]string{}, procs: map[uint64]*proc{},
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peers[id] = freeAddr(t)
		c.httpAddr[id] = freeAddr(t)
		c.logPath[id] = filepath.Join(c.dir, fmt.Sprintf("store%d.log", id))
	}
	t.Cleanup(func() {
		for id, p := range c.procs {
			_ = p.cmd.Process.Kill()
			<-p.done
			delete(c.procs, id)
		}
		if t.Failed() {
			for id := uint64(1); id <= uint64(n); id++ {
				t.Logf("---- tail of store %d stderr (%s) ----\n%s", id, c.logPath[id], tail(c.logPath[id], 80))
			}
		}
	})
	return c
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
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

// start launches store id (with --bootstrap, every time: it must be
// harmless on a bootstrapped store). Its stderr is appended to its log.
func (c *cluster) start(id uint64) {
	t := c.t
	t.Helper()
	require.Nil(t, c.procs[id], "store %d already running", id)
	f, err := os.OpenFile(c.logPath[id], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	fmt.Fprintf(f, "==== start store %d at %s ====\n", id, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binPath, "tablet",
		"--store-id", fmt.Sprint(id),
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("store%d", id)),
		"--addr", c.peers[id],
		"--http-addr", c.httpAddr[id],
		"--peers", node.FormatPeers(c.peers),
		"--bootstrap",
	)
	cmd.Stdout = f
	cmd.Stderr = f
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs[id] = p
}

func (c *cluster) startAll() {
	for id := range c.peers {
		c.start(id)
	}
	for id := range c.peers {
		c.waitHealthy(id, 30*time.Second)
	}
}

// waitHealthy waits until store id's /healthz answers 200.
func (c *cluster) waitHealthy(id uint64, timeout time.Duration) {
	t := c.t
	t.Helper()
	p := c.procs[id]
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + c.httpAddr[id] + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("store %d exited before becoming healthy: %v", id, p.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("store %d not healthy after %v (last error: %v)", id, timeout, err)
		}
	}
}

// killAll sends SIGKILL to every running process, all before reaping any.
func (c *cluster) killAll() {
	for _, p := range c.procs {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	for id, p := range c.procs {
		<-p.done
		delete(c.procs, id)
	}
}

// stop sends sig to store id and waits up to timeout for it to exit. It
// returns the exit code and how long the exit took.
func (c *cluster) stop(id uint64, sig os.Signal, timeout time.Duration) (int, time.Duration) {
	t := c.t
	t.Helper()
	p := c.procs[id]
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("store %d still running %v after %v", id, timeout, sig)
	}
	delete(c.procs, id)
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

func (c *cluster) client() *node.DebugClient {
	cl, err := node.NewDebugClient(c.peers)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// logContains reports whether store id's stderr has a line containing s.
func (c *cluster) logContains(id uint64, s string) bool {
	f, err := os.Open(c.logPath[id])
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(s)) {
			return true
		}
	}
	return false
}
