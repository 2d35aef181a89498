package crash

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/statickv"
	"github.com/shaledb/shale/tabletserver/node"
)

var (
	cyclesFlag = flag.Int("cycles", 20, "kill/restart cycles of the crash test")
)

// cluster is a static cluster of `shale tablet` processes on loopback. Its
// stores keep their data directories and ports across restarts.
type cluster struct {
	t        *testing.T
	dir      string
	peers    map[uint64]string
	httpAddr map[uint64]string
	logPath  map[uint64]string
	procs    map[uint64]*proctest.Proc
}

// newCluster picks ports and directories for n stores; it starts nothing.
func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{
		t: t, dir: t.TempDir(),
		peers: map[uint64]string{}, httpAddr: map[uint64]string{},
		logPath: map[uint64]string{}, procs: map[uint64]*proctest.Proc{},
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peers[id] = proctest.FreeAddr(t)
		c.httpAddr[id] = proctest.FreeAddr(t)
		c.logPath[id] = filepath.Join(c.dir, fmt.Sprintf("store%d.log", id))
	}
	return c
}

// start launches store id (with --bootstrap, every time: it must be
// harmless on a bootstrapped store).
func (c *cluster) start(id uint64) {
	c.t.Helper()
	require.Nil(c.t, c.procs[id], "store %d already running", id)
	c.procs[id] = proctest.Start(c.t, fmt.Sprintf("store %d", id), c.logPath[id], "tablet",
		"--store-id", fmt.Sprint(id),
		"--data-dir", filepath.Join(c.dir, fmt.Sprintf("store%d", id)),
		"--addr", c.peers[id],
		"--http-addr", c.httpAddr[id],
		"--peers", node.FormatPeers(c.peers),
		"--bootstrap",
		"--insecure",
	)
}

func (c *cluster) startAll() {
	for id := range c.peers {
		c.start(id)
	}
	for id := range c.peers {
		c.procs[id].WaitHealthy(c.t, c.httpAddr[id])
	}
}

// killAll sends SIGKILL to every running process, all before reaping any.
func (c *cluster) killAll() {
	var ps []*proctest.Proc
	for id, p := range c.procs {
		ps = append(ps, p)
		delete(c.procs, id)
	}
	proctest.KillAll(ps...)
}

// stop sends sig to store id and waits up to timeout for it to exit. It
// returns the exit code and how long the exit took.
func (c *cluster) stop(id uint64, sig os.Signal, timeout time.Duration) (int, time.Duration) {
	c.t.Helper()
	start := time.Now()
	code := c.procs[id].Signal(sig, timeout)
	if code == -1 {
		c.t.Fatalf("store %d still running %v after %v", id, timeout, sig)
	}
	delete(c.procs, id)
	return code, time.Since(start)
}

func (c *cluster) client() *statickv.Client {
	cl, err := statickv.New(c.peers, statickv.Tablet{TabletID: node.BootstrapTabletID, TableID: node.KVTableID, Family: node.KVFamily})
	require.NoError(c.t, err)
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// logContains reports whether store id's log has a line containing s.
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
