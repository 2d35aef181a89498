package kvclient

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// fakePD is a tabletLookup over an editable tablet list. failNext makes the
// next calls fail as a PD without a leader does (pdclient surfaces that as
// Unavailable once the caller's deadline is near).
type fakePD struct {
	mu       sync.Mutex
	tablets  []*pdpb.TabletInfo
	gets     int
	scans    int
	failNext int
}

func td(id uint64, start, end string, version uint64, leader uint64, stores ...uint64) *pdpb.TabletInfo {
	d := &metapb.TabletDescriptor{TabletId: id, StartKey: []byte(start), EndKey: []byte(end), Epoch: &metapb.Epoch{Version: version, ConfVersion: 1}}
	for i, s := range stores {
		d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: id*10 + uint64(i), StoreId: s})
	}
	return &pdpb.TabletInfo{Tablet: d, LeaderStoreId: leader}
}

func (f *fakePD) set(ts ...*pdpb.TabletInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tablets = ts
	sort.Slice(f.tablets, func(i, j int) bool {
		return bytes.Compare(f.tablets[i].Tablet.StartKey, f.tablets[j].Tablet.StartKey) < 0
	})
}

func (f *fakePD) GetTablet(ctx context.Context, key []byte) (*pdpb.TabletInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.failNext > 0 {
		f.failNext--
		return nil, status.Error(codes.Unavailable, "no pd leader")
	}
	for _, t := range f.tablets {
		l := location{desc: t.Tablet}
		if l.contains(key) {
			return proto.Clone(t).(*pdpb.TabletInfo), nil
		}
	}
	return nil, status.Error(codes.NotFound, "no tablet")
}

func (f *fakePD) ScanTablets(ctx context.Context, start, end []byte, limit int) ([]*pdpb.TabletInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scans++
	var out []*pdpb.TabletInfo
	for _, t := range f.tablets {
		d := t.Tablet
		if len(end) > 0 && bytes.Compare(d.StartKey, end) >= 0 {
			break
		}
		if len(d.EndKey) > 0 && bytes.Compare(d.EndKey, start) <= 0 {
			continue
		}
		out = append(out, proto.Clone(t).(*pdpb.TabletInfo))
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (f *fakePD) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets + f.scans
}

func (f *fakePD) StoreAddr(ctx context.Context, id uint64) (string, error) { return "unused", nil }

// testClient is a Client with only the routing parts, for driving the
// retry rules without servers.
func testClient(f *fakePD) *Client {
	c := &Client{opts: Options{}.EnsureDefaults(), log: slog.Default()}
	c.cache = newLocationCache(f)
	c.pool = newConnPool(f, nil, nil)
	return c
}

func mustLocate(t *testing.T, c *locationCache, key string) location {
	t.Helper()
	l, err := c.locate(context.Background(), []byte(key))
	require.NoError(t, err)
	return l
}

func TestCacheFillAndHit(t *testing.T) {
	f := &fakePD{}
	f.set(td(1, "", "m", 1, 1, 1, 2, 3), td(2, "m", "", 1, 2, 1, 2, 3))
	c := newLocationCache(f)
	require.Equal(t, uint64(1), mustLocate(t, c, "a").tabletID())
	require.Equal(t, uint64(2), mustLocate(t, c, "m").tabletID())
	require.Equal(t, uint64(2), mustLocate(t, c, "zzz").tabletID())
	require.Equal(t, uint64(1), mustLocate(t, c, "l").tabletID())
	require.Equal(t, 2, f.calls(), "hits must not ask the PD")
	require.Equal(t, uint64(2), mustLocate(t, c, "q").leader)
}

func TestCacheStaleEpoch(t *testing.T) {
	f := &fakePD{}
	f.set(td(1, "a", "z", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "b")
	// The tablet shrank (its right part merged away elsewhere); the store
	// answers EpochMismatch with the current descriptor.
	cur := td(1, "a", "k", 2, 1, 1, 2, 3).Tablet
	r := c.newRetrier(nil, false, "test")
	require.NoError(t, r.handle(context.Background(), loc, 1, errs.EpochMismatch(cur)))
	l, ok := c.cache.cached([]byte("b"))
	require.True(t, ok)
	require.Equal(t, uint64(2), l.desc.Epoch.Version)
	require.Equal(t, uint64(1), l.leader, "leader kept across the epoch change")
	_, ok = c.cache.cached([]byte("p"))
	require.False(t, ok, "the stale range beyond the new end is gone")
	require.Equal(t, 1, f.calls())

	// A lagging PD answering with the old (version 1) descriptor must not
	// replace the newer entry.
	f.set(td(1, "a", "z", 1, 1, 1, 2, 3))
	l = mustLocate(t, c.cache, "p")
	require.Equal(t, uint64(1), l.desc.Epoch.Version)
	l, _ = c.cache.cached([]byte("b"))
	require.Equal(t, uint64(2), l.desc.Epoch.Version)
}

func TestCacheLeaderMovedHint(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "x")
	require.Equal(t, uint64(1), loc.target())
	r := c.newRetrier(nil, true, "test")
	start := time.Now()
	require.NoError(t, r.handle(context.Background(), loc, 1, errs.NotLeader(7, 3, "10.0.0.3:1")))
	require.Less(t, time.Since(start), 5*time.Millisecond, "a hinted redirect retries at once")
	l, ok := c.cache.cached([]byte("x"))
	require.True(t, ok)
	require.Equal(t, uint64(3), l.target())
	require.Equal(t, 1, f.calls(), "a hint needs no PD call")
	c.pool.mu.Lock()
	require.Equal(t, "10.0.0.3:1", c.pool.mu.addrs[3])
	c.pool.mu.Unlock()
}

func TestCacheNotLeaderNoHintTriesReplicasThenPD(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	r := c.newRetrier(nil, false, "test")
	ctx := context.Background()
	var sentTo []uint64
	for i := 0; i < 3; i++ {
		loc := mustLocate(t, c.cache, "x")
		sentTo = append(sentTo, loc.target())
		require.NoError(t, r.handle(ctx, loc, loc.target(), errs.NotLeader(7, 0, "")))
	}
	require.ElementsMatch(t, []uint64{1, 2, 3}, sentTo)
	require.Equal(t, 1, f.calls(), "every replica is tried before asking the PD")
	_, ok := c.cache.cached([]byte("x"))
	require.False(t, ok, "after all replicas the entry is dropped")
	f.set(td(7, "", "", 1, 2, 1, 2, 3))
	require.Equal(t, uint64(2), mustLocate(t, c.cache, "x").target())
	require.Equal(t, 2, f.calls())
}

func TestCacheSplit(t *testing.T) {
	f := &fakePD{}
	f.set(td(1, "", "a", 1, 1, 1, 2, 3), td(5, "a", "z", 3, 2, 1, 2, 3), td(9, "z", "", 1, 3, 1, 2, 3))
	c := testClient(f)
	for _, k := range []string{"0", "b", "zz"} {
		mustLocate(t, c.cache, k)
	}
	loc := mustLocate(t, c.cache, "q")
	require.Equal(t, 3, f.calls())
	left := td(5, "a", "m", 4, 0, 1, 2, 3).Tablet
	right := td(6, "m", "z", 4, 0, 1, 2, 3).Tablet
	r := c.newRetrier(nil, true, "test")
	require.NoError(t, r.handle(context.Background(), loc, 2, errs.EpochMismatch(left, right)))
	l := mustLocate(t, c.cache, "b")
	require.Equal(t, uint64(5), l.tabletID())
	require.Equal(t, "m", string(l.desc.EndKey))
	require.Equal(t, uint64(2), l.target(), "left half keeps the parent's leader")
	l = mustLocate(t, c.cache, "q")
	require.Equal(t, uint64(6), l.tabletID())
	require.Equal(t, uint64(2), l.target(), "right half is assumed led where the parent was")
	require.Equal(t, uint64(1), mustLocate(t, c.cache, "0").tabletID(), "neighbours untouched")
	require.Equal(t, uint64(9), mustLocate(t, c.cache, "zz").tabletID())
	require.Equal(t, 3, f.calls(), "the split needs no PD call")
	require.Equal(t, 4, c.cache.len())
}

func TestCacheKeyNotInTablet(t *testing.T) {
	f := &fakePD{}
	f.set(td(5, "a", "z", 3, 2, 1, 2, 3))
	c := testClient(f)
	loc := mustLocate(t, c.cache, "q")
	// Meanwhile the tablet shrank and a new one took [m, z).
	f.set(td(5, "a", "m", 4, 2, 1, 2, 3), td(6, "m", "z", 4, 3, 1, 2, 3))
	r := c.newRetrier(nil, false, "test")
	require.NoError(t, r.handle(context.Background(), loc, 2, errs.KeyNotInTablet([]byte("q"), td(5, "a", "m", 4, 0, 1, 2, 3).Tablet)))
	_, ok := c.cache.cached([]byte("q"))
	require.False(t, ok)
	l := mustLocate(t, c.cache, "q")
	require.Equal(t, uint64(6), l.tabletID())
	require.Equal(t, uint64(3), l.target())
	require.Equal(t, 2, f.calls())

	// TabletNotFound drops the entry too.
	require.NoError(t, r.handle(context.Background(), l, 3, errs.TabletNotFound(6, 3)))
	_, ok = c.cache.cached([]byte("q"))
	require.False(t, ok)
}

func TestCachePDFailover(t *testing.T) {
	f := &fakePD{}
	f.set(td(1, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	f.failNext = 2
	r := c.newRetrier(nil, false, "test")
	ctx := context.Background()
	var loc location
	for i := 0; ; i++ {
		require.Less(t, i, 5)
		l, err := c.cache.locate(ctx, []byte("k"))
		if err == nil {
			loc = l
			break
		}
		require.NoError(t, r.handlePD(ctx, err), "an unavailable PD is retried")
	}
	require.Equal(t, uint64(1), loc.tabletID())
	require.Equal(t, 3, f.calls())
	// Cached entries keep serving while the PD is down.
	f.failNext = 100
	require.Equal(t, uint64(1), mustLocate(t, c.cache, "zzz").tabletID())
	// And a deadline ends the retries with a non-ambiguous error.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	c.cache.drop(1)
	for {
		_, err := c.cache.locate(dctx, []byte("k"))
		require.Error(t, err)
		if err := r.handlePD(dctx, err); err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NotErrorIs(t, err, ErrAmbiguous)
			break
		}
	}
}

func TestCacheLocateBefore(t *testing.T) {
	f := &fakePD{}
	f.set(td(1, "", "b\x00\x01", 1, 1, 1), td(2, "b\x00\x01", "d\x00\x01", 1, 1, 1), td(3, "d\x00\x01", "", 1, 1, 1))
	c := newLocationCache(f)
	ctx := context.Background()
	l, err := c.locateBefore(ctx, []byte("d\x00\x01"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), l.tabletID())
	l, err = c.locateBefore(ctx, []byte("c\x00\x01"))
	require.NoError(t, err)
	require.Equal(t, uint64(2), l.tabletID())
	l, err = c.locateBefore(ctx, []byte("b\x00\x01"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), l.tabletID())
	// Bare 8-byte table prefixes.
	f.set(td(1, "", "\x00\x00\x00\x00\x00\x00\x00\x02", 1, 1, 1), td(2, "\x00\x00\x00\x00\x00\x00\x00\x02", "", 1, 1, 1))
	c = newLocationCache(f)
	l, err = c.locateBefore(ctx, []byte("\x00\x00\x00\x00\x00\x00\x00\x02"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), l.tabletID())
}

func TestCachePrefetchPaged(t *testing.T) {
	f := &fakePD{}
	var ts []*pdpb.TabletInfo
	prev := ""
	for i := 0; i < 200; i++ {
		end := string([]byte{byte(i/26) + 'a', byte(i%26) + 'a'})
		if i == 199 {
			end = ""
		}
		ts = append(ts, td(uint64(i+1), prev, end, 1, 1, 1))
		prev = end
	}
	f.set(ts...)
	c := newLocationCache(f)
	require.NoError(t, c.prefetch(context.Background(), []byte(""), nil, 1000))
	require.Equal(t, 200, c.len())
	require.Equal(t, 4, f.scans)
	before := f.calls()
	mustLocate(t, c, "hh")
	require.Equal(t, before, f.calls())
}
