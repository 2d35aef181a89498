//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/freeport"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testutils"
)

// composeFile is the cluster the suite runs: the secure one, mutual TLS on
// every port (docs/security.md, "Secure deployments").
const composeFile = "docker-compose.secure.yml"

// node is one service of deploy/docker-compose.secure.yml. Every node has a fixed
// address on the compose network: the last octet here, the first three
// from SHALE_NET.
type node struct {
	name     string
	octet    int
	httpPort int // /healthz; 0: TCP check of tcpPort
	tcpPort  int
}

var (
	pdNodes     = []node{{"pd1", 11, 2381, 2379}, {"pd2", 12, 2381, 2379}, {"pd3", 13, 2381, 2379}}
	tabletNodes = []node{{"tablet1", 21, 20180, 20160}, {"tablet2", 22, 20180, 20160}, {"tablet3", 23, 20180, 20160}, {"tablet4", 24, 20180, 20160}, {"tablet5", 25, 20180, 20160}}
	thriftNode  = node{"thrift", 31, 0, 9090}
)

func serverNodes() []node { return append(append([]node{}, pdNodes...), tabletNodes...) }

// cluster is one compose project: a fresh network, containers and volumes,
// removed (down -v) at cleanup whatever happens.
type cluster struct {
	t          *testing.T
	root       string // repository root
	project    string
	net        string // first three octets of the /24
	env        []string
	thriftPort int
	// certs holds the CA certificate and root's client certificate, copied
	// from the compose project's certs-client service; tls and httpc
	// present root's certificate (root is always a cluster admin).
	certs string
	tls   *security.Reloader
	httpc *http.Client

	mu     sync.Mutex
	paused map[string]bool // containers paused by the nemesis
	cut    map[string]bool // containers disconnected by the nemesis
}

// activeProjects are compose projects to remove if the test is interrupted.
var activeProjects sync.Map

func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func freePort(t *testing.T) int {
	a, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveTCPAddr("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	return addr.Port
}

// startCluster brings up a new compose project and waits until every
// container is healthy and PD sees the 5 stores Up.
func startCluster(t *testing.T, rng *rand.Rand, image string) *cluster {
	root := repoRoot(t)
	c := &cluster{
		t: t, root: root, certs: t.TempDir(),
		paused: map[string]bool{}, cut: map[string]bool{},
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		c.project = fmt.Sprintf("shalee2e%dx%d", os.Getpid(), rng.IntN(1_000_000))
		c.net = fmt.Sprintf("172.30.%d", rng.IntN(256))
		c.thriftPort = freePort(t)
		c.env = append(os.Environ(),
			"SHALE_IMAGE="+image,
			"SHALE_NET="+c.net,
			fmt.Sprintf("SHALE_PD_PORT=%d", freePort(t)),
			fmt.Sprintf("SHALE_PD_HTTP_PORT=%d", freePort(t)),
			fmt.Sprintf("SHALE_THRIFT_PORT=%d", c.thriftPort),
		)
		activeProjects.Store(c.project, c)
		t.Cleanup(c.down)
		out, err := c.compose(3*time.Minute, "up", "-d")
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = fmt.Errorf("docker-compose up: %v\n%s", err, out)
		t.Logf("attempt %d: %v", attempt, lastErr)
		c.down()
		if !strings.Contains(out, "overlap") && !strings.Contains(out, "address already in use") && !strings.Contains(out, "port is already allocated") {
			break
		}
	}
	if lastErr != nil {
		t.Fatal(lastErr)
	}
	t.Logf("compose project %s on %s.0/24 (thrift on 127.0.0.1:%d)", c.project, c.net, c.thriftPort)
	c.clientCerts()
	c.requireSecure()
	c.waitHealthy(append(serverNodes(), thriftNode), 3*time.Minute)
	c.waitStoresUp(5, 2*time.Minute)
	return c
}

func (c *cluster) ip(n node) string { return fmt.Sprintf("%s.%d", c.net, n.octet) }

func (c *cluster) pdAddrs() []string {
	var out []string
	for _, n := range pdNodes {
		out = append(out, fmt.Sprintf("%s:%d", c.ip(n), n.tcpPort))
	}
	return out
}

func (c *cluster) container(n node) string { return c.project + "_" + n.name + "_1" }

func (c *cluster) network() string { return c.project + "_shale" }

// clientCerts copies root's client certificate and the CA certificate out
// of the certs-client service (`shale cert create-client root`, run by
// `up` before any server starts) and makes the clients that present it.
// The suite's clients are root, as an operator's tools would be: the
// workload creates tables, and the nemesis splits and moves tablets.
func (c *cluster) clientCerts() {
	c.t.Helper()
	src := c.project + "_certs-client_1:/data/."
	if out, err := c.docker(time.Minute, "cp", src, c.certs); err != nil {
		c.t.Fatalf("docker cp %s: %v: %s", src, err, out)
	}
	r, err := security.NewReloader(security.Config{
		CAFile:   filepath.Join(c.certs, security.CAFile),
		CertFile: filepath.Join(c.certs, security.ClientCertFile("root")),
		KeyFile:  filepath.Join(c.certs, security.ClientKeyFile("root")),
	})
	if err != nil {
		c.t.Fatalf("root's client certificate from %s: %v", src, err)
	}
	c.tls = r
	// Each server's certificate is checked against the address dialled
	// (ClientTLS verifies the name it is given; the node certificate
	// names every container's address).
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: r.ClientTLS(host)}
		return d.DialContext(ctx, network, addr)
	}
	c.httpc = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialTLSContext: dial}}
}

// requireSecure fails the run if PD's status port answers a plaintext
// request: the suite is meant to test the secure deployment.
func (c *cluster) requireSecure() {
	c.t.Helper()
	url := fmt.Sprintf("http://%s:%d/pd/api/v1/stores", c.ip(pdNodes[0]), pdNodes[0].httpPort)
	err := testutils.Retry(context.Background(), time.Minute, func() error {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return err // not up yet
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("plaintext GET %s: %s: the cluster is not secure", url, resp.Status)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// clientFlags are the TLS flags of `shale ctl` and the other client
// commands, as root.
func (c *cluster) clientFlags() []string {
	return []string{"--tls-ca", filepath.Join(c.certs, security.CAFile),
		"--tls-cert", filepath.Join(c.certs, security.ClientCertFile("root")),
		"--tls-key", filepath.Join(c.certs, security.ClientKeyFile("root"))}
}

// compose runs docker-compose on the secure compose file for this project.
func (c *cluster) compose(timeout time.Duration, args ...string) (string, error) {
	full := append([]string{"-p", c.project, "-f", filepath.Join(c.root, "deploy", composeFile)}, args...)
	return run(timeout, c.env, "docker-compose", full...)
}

func (c *cluster) docker(timeout time.Duration, args ...string) (string, error) {
	return run(timeout, c.env, "docker", args...)
}

func run(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), timeout)
	}
	return buf.String(), err
}

// down removes the project's containers, network and volumes. Paused
// containers are unpaused first (a paused container cannot be stopped).
func (c *cluster) down() {
	if _, ok := activeProjects.LoadAndDelete(c.project); !ok {
		return
	}
	c.mu.Lock()
	for name := range c.paused {
		_, _ = c.docker(30*time.Second, "unpause", name)
	}
	c.paused = map[string]bool{}
	c.mu.Unlock()
	if out, err := c.compose(3*time.Minute, "down", "-v", "-t", "5", "--remove-orphans"); err != nil {
		c.t.Logf("docker-compose down: %v\n%s", err, out)
		removeProject(c.project)
	}
}

// removeProject deletes what a compose project left behind, by label.
func removeProject(project string) {
	f := "label=com.docker.compose.project=" + project
	if out, _ := run(time.Minute, nil, "docker", "ps", "-aq", "--filter", f); strings.TrimSpace(out) != "" {
		_, _ = run(2*time.Minute, nil, "docker", append([]string{"rm", "-f", "-v"}, strings.Fields(out)...)...)
	}
	if out, _ := run(time.Minute, nil, "docker", "network", "ls", "-q", "--filter", f); strings.TrimSpace(out) != "" {
		_, _ = run(time.Minute, nil, "docker", append([]string{"network", "rm"}, strings.Fields(out)...)...)
	}
	if out, _ := run(time.Minute, nil, "docker", "volume", "ls", "-q", "--filter", f); strings.TrimSpace(out) != "" {
		_, _ = run(time.Minute, nil, "docker", append([]string{"volume", "rm", "-f"}, strings.Fields(out)...)...)
	}
}

// removeStaleProjects removes projects of earlier runs whose test process
// is gone (killed before its cleanup ran).
func removeStaleProjects() {
	out, _ := run(time.Minute, nil, "docker", "ps", "-a", "--format", `{{.Label "com.docker.compose.project"}}`)
	seen := map[string]bool{}
	for _, p := range strings.Fields(out) {
		if seen[p] || !strings.HasPrefix(p, "shalee2e") {
			continue
		}
		seen[p] = true
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(p, "shalee2e"), "x")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // still running: another test's cluster
		}
		fmt.Fprintf(os.Stderr, "nemesis: removing stale compose project %s\n", p)
		removeProject(p)
	}
}

// healthy reports whether a node answers its health check from the host.
func (c *cluster) healthy(n node) bool {
	if n.httpPort == 0 {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", c.ip(n), n.tcpPort), time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	resp, err := c.httpc.Get(fmt.Sprintf("https://%s:%d/healthz", c.ip(n), n.httpPort))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitHealthy waits until every node answers its health check.
func (c *cluster) waitHealthy(nodes []node, timeout time.Duration) {
	c.t.Helper()
	if err := c.awaitHealthy(nodes, timeout); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) awaitHealthy(nodes []node, timeout time.Duration) error {
	for _, n := range nodes {
		err := testutils.Retry(context.Background(), timeout, func() error {
			if !c.healthy(n) {
				return fmt.Errorf("%s not healthy", n.name)
			}
			return nil
		})
		if err != nil {
			st, _ := c.docker(10*time.Second, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} restarts={{.RestartCount}}", c.container(n))
			return fmt.Errorf("%w (container: %s)", err, strings.TrimSpace(st))
		}
	}
	return nil
}

// pdGet GETs a PD JSON API path from whichever member answers 200 (only
// the leader serves most paths), decoding into out.
func (c *cluster) pdGet(path string, out any) error {
	var lastErr error
	for _, n := range pdNodes {
		resp, err := c.httpc.Get(fmt.Sprintf("https://%s:%d/pd/api/v1/%s", c.ip(n), n.httpPort, path))
		if err != nil {
			lastErr = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("%s: %s %s", n.name, resp.Status, bytes.TrimSpace(body))
			continue
		}
		return json.Unmarshal(body, out)
	}
	return fmt.Errorf("GET /pd/api/v1/%s: no PD member answered: %v", path, lastErr)
}

type pdStore struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
}

type pdTablet struct {
	ID       uint64 `json:"id"`
	StartKey string `json:"start_key"`
	EndKey   string `json:"end_key"`
	Peers    []struct {
		StoreID uint64 `json:"store_id"`
		Role    string `json:"role"`
	} `json:"peers"`
	Leader uint64 `json:"leader_store_id"`
}

type pdMembers struct {
	Leader string `json:"leader"`
}

func (c *cluster) waitStoresUp(n int, timeout time.Duration) {
	c.t.Helper()
	testutils.SucceedsWithin(c.t, timeout, func() error {
		var stores []pdStore
		if err := c.pdGet("stores", &stores); err != nil {
			return err
		}
		up := 0
		for _, s := range stores {
			if s.State == "Up" {
				up++
			}
		}
		if up < n {
			return fmt.Errorf("%d of %d stores Up", up, n)
		}
		return nil
	})
}

// pdLeader returns the PD leader's node.
func (c *cluster) pdLeader() (node, error) {
	for _, n := range pdNodes {
		var m pdMembers
		resp, err := c.httpc.Get(fmt.Sprintf("https://%s:%d/pd/api/v1/members", c.ip(n), n.httpPort))
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil || m.Leader == "" {
			continue
		}
		for _, p := range pdNodes {
			if p.name == m.Leader {
				return p, nil
			}
		}
	}
	return node{}, fmt.Errorf("no PD leader known")
}

// storeNode maps a store ID to its tablet server node by address.
func (c *cluster) storeNode(id uint64) (node, error) {
	var stores []pdStore
	if err := c.pdGet("stores", &stores); err != nil {
		return node{}, err
	}
	for _, s := range stores {
		if s.ID != id {
			continue
		}
		for _, n := range tabletNodes {
			if s.Address == fmt.Sprintf("%s:%d", c.ip(n), n.tcpPort) {
				return n, nil
			}
		}
	}
	return node{}, fmt.Errorf("store %d: no tablet server with its address", id)
}

// tabletFor returns the tablet holding an encoded key.
func (c *cluster) tabletFor(key []byte) (pdTablet, error) {
	var tablets []pdTablet
	if err := c.pdGet("tablets?limit=10000", &tablets); err != nil {
		return pdTablet{}, err
	}
	hk := fmt.Sprintf("%x", key)
	for _, tb := range tablets {
		if tb.StartKey <= hk && (tb.EndKey == "" || hk < tb.EndKey) {
			return tb, nil
		}
	}
	return pdTablet{}, fmt.Errorf("no tablet holds key %s", hk)
}

// logs writes every container's log into dir.
func (c *cluster) logs(dir string) {
	for _, n := range append(serverNodes(), thriftNode) {
		out, _ := c.docker(time.Minute, "logs", "-t", c.container(n))
		_ = os.WriteFile(filepath.Join(dir, n.name+".log"), []byte(out), 0o644)
	}
}

// crashes returns the panics and fatal errors found in the containers'
// logs: any is a bug.
func (c *cluster) crashes() []string {
	var out []string
	for _, n := range append(serverNodes(), thriftNode) {
		log, _ := c.docker(time.Minute, "logs", c.container(n))
		count := map[string]int{}
		var order []string
		for _, line := range strings.Split(log, "\n") {
			if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
				if count[line] == 0 {
					order = append(order, line)
				}
				count[line]++
			}
		}
		for _, line := range order {
			out = append(out, fmt.Sprintf("%s: %s (%d times)", n.name, line, count[line]))
		}
	}
	return out
}
