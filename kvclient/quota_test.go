package kvclient_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Quota tests (internal/quota; issue 22). Limits are low so that a loaded
// 2-core machine running the race detector is never the bottleneck, and
// rates are measured over a window that starts after every store has its
// share and every bucket has been emptied (the initial burst excluded).

// pauseSchedulers stops PD from moving leaders (it would shift the shares).
func pauseSchedulers(t *testing.T, c *testcluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.PD().ListSchedulers(ctx, &pdpb.ListSchedulersRequest{})
	require.NoError(t, err)
	for _, s := range resp.Schedulers {
		_, err := c.PD().PauseScheduler(ctx, &pdpb.PauseSchedulerRequest{Name: s.Name, PauseMs: time.Hour.Milliseconds()})
		require.NoError(t, err)
	}
}

// spreadLeaders makes store i lead the table's i-th tablet.
func spreadLeaders(t *testing.T, c *testcluster.Cluster, tableID uint64, rows [][]byte, stores map[int]uint64) {
	for i, r := range rows {
		want := stores[i%len(stores)]
		testutils.SucceedsSoon(t, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: keys.RowKey(tableID, r)})
			if err != nil {
				return err
			}
			if resp.Tablet.LeaderStoreId == want {
				return nil
			}
			if resp.Tablet.LeaderStoreId == 0 {
				return fmt.Errorf("tablet of %q has no leader yet", r)
			}
			tc, done, err := c.TabletClient(ctx, resp.Tablet.LeaderStoreId)
			if err != nil {
				return err
			}
			defer done()
			d := resp.Tablet.Tablet
			_, err = tc.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: d.TabletId, Epoch: d.Epoch}, ToStoreId: want})
			return fmt.Errorf("moving the leader of tablet %d to store %d (err %v)", d.TabletId, want, err)
		})
	}
}

// storeMetric returns the value of the first sample of metric whose
// labels contain all of labels on store i's /metrics ("" if none).
func storeMetric(t *testing.T, c *testcluster.Cluster, i int, metric string, labels ...string) string {
	resp, err := http.Get("http://" + c.Stores[i].HTTPAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
next:
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		return line[strings.LastIndex(line, " ")+1:]
	}
	return ""
}

func metricValue(t *testing.T, s string) float64 {
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return v
}

// shareSum adds up the stores' shares of a quota's limit.
func shareSum(t *testing.T, c *testcluster.Cluster, name, limit string) float64 {
	sum := 0.0
	for i := range c.Stores {
		sum += metricValue(t, storeMetric(t, c, i, "shale_quota_limit", `name="`+name+`"`, `limit="`+limit+`"`))
	}
	return sum
}

// waitShares waits until every store has (want) or has dropped (!want)
// its share of the named quota.
func waitShares(t *testing.T, c *testcluster.Cluster, name, limit string, want bool) {
	testutils.SucceedsSoon(t, func() error {
		for i := range c.Stores {
			got := storeMetric(t, c, i, "shale_quota_limit", `name="`+name+`"`, `limit="`+limit+`"`) != ""
			if got != want {
				return fmt.Errorf("store %d: share of %s %s present=%v, want %v", i, name, limit, got, want)
			}
		}
		return nil
	})
}

// load runs workers goroutines calling op until stop, counting successes.
type load struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, workers int, op func(ctx context.Context, rng *rand.Rand) error) *load {
	l := &load{stop: make(chan struct{})}
	seed := time.Now().UnixNano()
	t.Logf("load seed %d", seed)
	for w := range workers {
		l.wg.Add(1)
		go func() { //stop:joined by halt
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := op(ctx, rng); err != nil {
					l.failed.Add(1)
					t.Logf("load op: %v", err)
				} else {
					l.ok.Add(1)
				}
				cancel()
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// rate measures completions per second over d (time passing is the
// measurement, not a wait for a condition).
func (l *load) rate(d time.Duration) float64 {
	n0, t0 := l.ok.Load(), time.Now()
	time.Sleep(d) // the measurement window
	return float64(l.ok.Load()-n0) / time.Since(t0).Seconds()
}

// rates measures two loads over the same window d.
func rates(d time.Duration, a, b *load) (float64, float64) {
	a0, b0, t0 := a.ok.Load(), b.ok.Load(), time.Now()
	time.Sleep(d) // the measurement window
	s := time.Since(t0).Seconds()
	return float64(a.ok.Load()-a0) / s, float64(b.ok.Load()-b0) / s
}

func writeOp(tbl *kvclient.Table) func(context.Context, *rand.Rand) error {
	return func(ctx context.Context, rng *rand.Rand) error {
		r := []byte(fmt.Sprintf("%c%05d", 'a'+rng.IntN(26), rng.IntN(100000)))
		_, err := tbl.MutateRow(ctx, r, kvclient.SetCell("f", []byte("q"), []byte("v")))
		return err
	}
}

func TestQuotaTableLimitAcrossStores(t *testing.T) {
	c, cl := startCluster(t, testcluster.Options{HTTP: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stores := storeIDs(t, c)
	pauseSchedulers(t, c)
	splits := [][]byte{[]byte("j"), []byte("s")}
	first := [][]byte{[]byte("a"), []byte("j"), []byte("s")} // a row of each tablet
	for _, name := range []string{"limited", "free"} {
		info, err := cl.CreateTable(ctx, name, []kvclient.Family{{Name: "f"}}, splits...)
		require.NoError(t, err)
		spreadLeaders(t, c, info.ID, first, stores)
	}
	limited, err := cl.Table(ctx, "limited")
	require.NoError(t, err)
	free, err := cl.Table(ctx, "free")
	require.NoError(t, err)

	const limit = 15
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{Table: "limited", Limits: &pdpb.QuotaLimits{WriteRps: limit}})
	require.NoError(t, err)
	// The stores' shares add up to the limit (a third each while each
	// leads one tablet; a leader lost to an election on a loaded machine
	// moves its share along).
	testutils.SucceedsSoon(t, func() error {
		if sum := shareSum(t, c, "limited", "write-rps"); sum != limit {
			return fmt.Errorf("the stores' shares add up to %v, want %d", sum, limit)
		}
		return nil
	})

	lim := startLoad(t, 24, writeOp(limited))
	fr := startLoad(t, 16, writeOp(free))
	lim.rate(3 * time.Second) // warm up: the buckets' initial burst is spent
	got, gotFree := rates(10*time.Second, lim, fr)
	t.Logf("limited table: %.1f writes/s (limit %d); other table: %.1f writes/s", got, limit, gotFree)
	for i := range c.Stores {
		t.Logf("store %d: share %s, throttled %s", i, storeMetric(t, c, i, "shale_quota_limit", `name="limited"`, `limit="write-rps"`),
			storeMetric(t, c, i, "shale_quota_throttled_total", `name="limited"`, `limit="write-rps"`))
	}
	// The limit holds: never more than 10 % over. Under it, shares split
	// by leader count under-admit when demand is uneven across the stores
	// (a leader moved by an election on a loaded machine, refused clients
	// piling up on one store): 12.9/s of 15 in one make test run. Demand-
	// based shares would close that gap (docs/limits.md, "Quotas").
	require.LessOrEqual(t, got, 1.1*limit, "the table's write limit holds across the 3 stores")
	require.GreaterOrEqual(t, got, 0.75*limit, "the stores' shares admit most of the limit")
	// Measured in the same window, on the same machine: had the quota
	// slowed the other table, it would not outrun the limited one.
	require.Greater(t, gotFree, 1.2*got, "the other table is not slowed by the quota")
	require.Zero(t, lim.failed.Load()+fr.failed.Load(), "quota refusals are waited out, not returned")
	throttled := 0.0
	for i := range c.Stores {
		throttled += metricValue(t, storeMetric(t, c, i, "shale_quota_throttled_total", `name="limited"`, `limit="write-rps"`))
		require.Empty(t, storeMetric(t, c, i, "shale_quota_throttled_total", `name="free"`), "store %d", i)
	}
	require.Positive(t, throttled)

	// Removal takes effect: the shares go and the table runs free.
	_, err = c.PD().RemoveQuota(ctx, &pdpb.RemoveQuotaRequest{Table: "limited"})
	require.NoError(t, err)
	waitShares(t, c, "limited", "write-rps", false)
	testutils.SucceedsSoon(t, func() error {
		if r := lim.rate(2 * time.Second); r < 1.5*limit {
			return fmt.Errorf("limited table writes %.1f/s after the removal", r)
		}
		return nil
	})
}

// A quota refusal the caller's deadline cannot wait out is returned at
// once as ErrQuotaExceeded, with the server's wait.
func TestQuotaDeadline(t *testing.T) {
	c, cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cl.CreateTable(ctx, "slow", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "slow")
	require.NoError(t, err)
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{Table: "slow", Limits: &pdpb.QuotaLimits{ReadRps: 1}})
	require.NoError(t, err)
	// Read until refused: the store applies its share within a heartbeat.
	testutils.SucceedsSoon(t, func() error {
		octx, ocancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer ocancel()
		start := time.Now()
		_, err := tbl.Get(octx, []byte("r"))
		if err == nil {
			return fmt.Errorf("read not refused yet")
		}
		require.ErrorIs(t, err, kvclient.ErrQuotaExceeded)
		wait, ok := kvclient.QuotaRetryAfter(err)
		require.True(t, ok)
		require.Greater(t, wait, 200*time.Millisecond)
		require.Less(t, time.Since(start), 200*time.Millisecond, "failed before the deadline, not at it")
		return nil
	})
	// Dropping the table drops its quota.
	require.NoError(t, cl.DropTable(ctx, "slow"))
	list, err := c.PD().ListQuotas(ctx, &pdpb.ListQuotasRequest{})
	require.NoError(t, err)
	require.Empty(t, list.State.Quotas)
}

func TestQuotaUser(t *testing.T) {
	// One store: a user's quota is split evenly over the stores, which
	// matches the user's traffic only when its tablets' leaders are
	// balanced (docs/qos.md); the split itself is TestShares'.
	c := testcluster.Start(t, testcluster.Options{Secure: true, Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.ClientTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = root.Close() })
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{User: "alice", Limits: &pdpb.QuotaLimits{WriteRps: 10}})
	require.ErrorContains(t, err, `user "alice" does not exist`)

	_, err = root.CreateTable(ctx, "shared", []kvclient.Family{{Name: "f"}}, []byte("j"), []byte("s"))
	require.NoError(t, err)
	require.NoError(t, root.CreateUser(ctx, "alice", ""))
	require.NoError(t, root.Grant(ctx, &pdpb.GrantRequest{Role: "alice", Table: "shared", Grant: &pdpb.AuthGrant{Permission: pdpb.AuthPermission_WRITE, On: &pdpb.AuthGrant_TableId{}}}))
	o := security.CertOptions{Dir: c.CertsDir()}
	require.NoError(t, security.CreateClient(o, "alice"))
	aliceTLS, err := security.NewReloader(security.Config{CAFile: filepath.Join(o.Dir, security.CAFile), CertFile: filepath.Join(o.Dir, security.ClientCertFile("alice")), KeyFile: filepath.Join(o.Dir, security.ClientKeyFile("alice"))})
	require.NoError(t, err)
	alice, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: aliceTLS})
	require.NoError(t, err)
	t.Cleanup(func() { _ = alice.Close() })

	const limit = 10
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{User: "alice", Limits: &pdpb.QuotaLimits{WriteRps: limit}})
	require.NoError(t, err)
	at, err := alice.Table(ctx, "shared")
	require.NoError(t, err)
	rt, err := root.Table(ctx, "shared")
	require.NoError(t, err)
	// Every store has learned alice's grant (a row on each tablet).
	testutils.SucceedsSoon(t, func() error {
		for _, r := range []string{"a", "k", "t"} {
			if _, err := at.MutateRow(ctx, []byte(r), kvclient.SetCell("f", []byte("q"), []byte("v"))); err != nil {
				return err
			}
		}
		return nil
	})
	al := startLoad(t, 16, writeOp(at))
	ro := startLoad(t, 8, writeOp(rt))
	// The shares arrive within a heartbeat or two; then the rate holds.
	testutils.SucceedsSoon(t, func() error {
		if r := al.rate(time.Second); r > 1.5*limit {
			return fmt.Errorf("alice writes %.1f/s: quota not applied yet", r)
		}
		return nil
	})
	got, gotRoot := rates(10*time.Second, al, ro)
	t.Logf("alice: %.1f writes/s (limit %d); root: %.1f writes/s", got, limit, gotRoot)
	require.InDelta(t, limit, got, 0.1*limit, "the user's limit holds")
	require.Greater(t, gotRoot, 1.2*got, "another user is not slowed")

	_, err = c.PD().RemoveQuota(ctx, &pdpb.RemoveQuotaRequest{User: "alice"})
	require.NoError(t, err)
	testutils.SucceedsSoon(t, func() error {
		if r := al.rate(time.Second); r < 1.5*limit {
			return fmt.Errorf("alice writes %.1f/s: removal not applied yet", r)
		}
		return nil
	})
}
