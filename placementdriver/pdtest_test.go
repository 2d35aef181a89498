package placementdriver_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/placementdriver/pdclient"
)

// pdCluster runs PD members in this process.
type pdCluster struct {
	t       testing.TB
	dir     string
	cluster map[string]string // name → peer
	clients map[string]string // name → client addr
	cancel  map[string]context.CancelFunc
	done    map[string]chan error
	mu      sync.Mutex
}

func freeAddr(t testing.TB) string { return proctest.FreeAddr(t) }

func startPD(t testing.TB, n int, tweak func(*placementdriver.Options)) *pdCluster {
	c := &pdCluster{t: t, dir: t.TempDir(), cluster: map[string]string{}, clients: map[string]string{}, cancel: map[string]context.CancelFunc{}, done: map[string]chan error{}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("pd%d", i)
		c.cluster[name] = freeAddr(t)
		c.clients[name] = freeAddr(t)
	}
	for name := range c.cluster {
		c.start(name, tweak)
	}
	t.Cleanup(func() {
		for name := range c.cluster {
			c.stop(name)
		}
	})
	return c
}

func (c *pdCluster) start(name string, tweak func(*placementdriver.Options)) {
	o := placementdriver.Options{
		Name: name, DataDir: filepath.Join(c.dir, name), ClientAddr: c.clients[name], PeerAddr: c.cluster[name],
		InitialCluster: c.cluster, ClientAddrs: c.clients, TickInterval: 20 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- placementdriver.Run(ctx, o) }()
	c.mu.Lock()
	c.cancel[name], c.done[name] = cancel, done
	c.mu.Unlock()
}

func (c *pdCluster) stop(name string) {
	c.mu.Lock()
	cancel, done := c.cancel[name], c.done[name]
	delete(c.cancel, name)
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		c.t.Errorf("pd %s: %v", name, err)
	}
}

func (c *pdCluster) endpoints() []string {
	var out []string
	for _, a := range c.clients {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (c *pdCluster) client() *pdclient.Client {
	cl, err := pdclient.New(c.endpoints(), 0)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func (c *pdCluster) leader(ctx context.Context, cl *pdclient.Client) string {
	c.t.Helper()
	var name string
	testutils.SucceedsSoon(c.t, func() error {
		m, err := cl.GetMembers(ctx)
		if err != nil {
			return err
		}
		if m.Leader == nil {
			return errors.New("no pd leader")
		}
		name = m.Leader.Name
		return nil
	})
	return name
}
