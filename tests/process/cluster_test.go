package process

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// cluster is a set of real processes: PD members and tablet servers.
type cluster struct {
	t        *testing.T
	dir      string
	pdPeer   map[string]string
	pdClient map[string]string
	pdHTTP   map[string]string
	pd       map[string]*proctest.Proc
	stores   []*storeProc
	pdFlags  []string
	// secure, when set, runs every process with certificates from
	// `shale cert` (security_test.go); nil: --insecure.
	secure *secureCerts
}

type storeProc struct {
	addr, http, dir string
	p               *proctest.Proc
}

func newCluster(t *testing.T, pdMembers int, pdFlags ...string) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), pdPeer: map[string]string{}, pdClient: map[string]string{}, pdHTTP: map[string]string{}, pd: map[string]*proctest.Proc{}, pdFlags: pdFlags}
	for i := 1; i <= pdMembers; i++ {
		name := fmt.Sprintf("pd%d", i)
		c.pdPeer[name], c.pdClient[name], c.pdHTTP[name] = proctest.FreeAddr(t), proctest.FreeAddr(t), proctest.FreeAddr(t)
	}
	return c
}

func joinMap(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (c *cluster) endpoints() []string {
	var out []string
	for _, a := range c.pdClient {
		out = append(out, a)
	}
	return out
}

func (c *cluster) startPD(name string) {
	args := append([]string{"pd", "--name", name, "--data-dir", filepath.Join(c.dir, name),
		"--client-addr", c.pdClient[name], "--peer-addr", c.pdPeer[name], "--http-addr", c.pdHTTP[name],
		"--initial-cluster", joinMap(c.pdPeer), "--initial-cluster-client", joinMap(c.pdClient)}, c.pdFlags...)
	args = append(args, c.secure.nodeFlags(c.t, name, "127.0.0.1")...)
	c.pd[name] = proctest.Start(c.t, name, filepath.Join(c.dir, name+".log"), args...)
}

func (c *cluster) addStore() *storeProc {
	i := len(c.stores)
	s := &storeProc{addr: proctest.FreeAddr(c.t), http: proctest.FreeAddr(c.t), dir: filepath.Join(c.dir, fmt.Sprintf("store%d", i))}
	host := "127.0.0.1"
	if c.secure != nil {
		// A host of its own, so that its certificate speaks for it alone.
		host = fmt.Sprintf("127.0.0.%d", i+2)
		s.addr, s.http = onHost(s.addr, host), onHost(s.http, host)
	}
	c.stores = append(c.stores, s)
	args := append([]string{"tablet", "--data-dir", s.dir, "--addr", s.addr, "--http-addr", s.http,
		"--pd", strings.Join(c.endpoints(), ","), "--heartbeat-interval", "500ms"}, c.secure.nodeFlags(c.t, fmt.Sprintf("store%d", i), host)...)
	s.p = proctest.Start(c.t, fmt.Sprintf("store%d", i), s.dir+".log", args...)
	s.p.WaitHealthyTLS(c.t, s.http, c.secure.httpTLS(host))
	return s
}

func (c *cluster) pdc() *pdclient.Client {
	cl, err := pdclient.New(c.endpoints(), 0, pdclient.WithTLS(c.secure.clientTLS()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func upStores(ctx context.Context, pd *pdclient.Client) (map[uint64]bool, error) {
	resp, err := pd.ListStores(ctx, &pdpb.ListStoresRequest{})
	if err != nil {
		return nil, err
	}
	up := map[uint64]bool{}
	for _, s := range resp.Stores {
		if s.State == pdpb.StoreState_UP {
			up[s.Store.StoreId] = true
		}
	}
	return up, nil
}

func allTablets(ctx context.Context, pd *pdclient.Client) ([]*pdpb.TabletInfo, error) {
	resp, err := pd.ScanTablets(ctx, &pdpb.ScanTabletsRequest{})
	if err != nil {
		return nil, err
	}
	return resp.Tablets, nil
}

// balanced reports whether replica and leader counts of the up stores are
// all within 20% of their means.
func balanced(ts []*pdpb.TabletInfo, up map[uint64]bool) error {
	replicas, leaders := map[uint64]int{}, map[uint64]int{}
	for _, t := range ts {
		for _, r := range t.Tablet.Replicas {
			replicas[r.StoreId]++
		}
		leaders[t.LeaderStoreId]++
	}
	for name, counts := range map[string]map[uint64]int{"replicas": replicas, "leaders": leaders} {
		total := 0
		for s := range up {
			total += counts[s]
		}
		mean := float64(total) / float64(len(up))
		for s := range up {
			if d := float64(counts[s]) - mean; d > 0.2*mean || -d > 0.2*mean {
				return fmt.Errorf("%s: store %d has %d, mean %.1f (%v)", name, s, counts[s], mean, counts)
			}
		}
	}
	return nil
}
