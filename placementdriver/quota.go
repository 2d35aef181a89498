package placementdriver

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/quota"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/pdpb"
)

// Quotas (internal/quota): one versioned QuotaState in one metadata row,
// changed by compare-and-swap like the auth state; each store gets its
// shares in its heartbeat answer.

// rowQuota holds the marshalled pdpb.QuotaState.
const rowQuota = "quota"

// shareRefresh bounds how often the shares are recomputed (the leaders of
// the limited tables move slowly; a quota change recomputes at once).
const shareRefresh = time.Second

// quotaShares caches the per-store shares on the leader.
type quotaShares struct {
	mu      sync.Mutex
	at      time.Time
	version uint64
	byStore map[uint64][]*pdpb.QuotaShare
	invalid bool
}

func decodeQuotas(v []byte) (*pdpb.QuotaState, error) {
	st := &pdpb.QuotaState{}
	if err := proto.Unmarshal(v, st); err != nil {
		return nil, fmt.Errorf("pd: corrupt quota state in metadata: %w", err)
	}
	return st, nil
}

// readQuotas reads the quotas from this member's replica of the metadata.
func (s *Server) readQuotas(ctx context.Context) (*pdpb.QuotaState, error) {
	v, ok, err := s.meta.localRow(ctx, rowQuota)
	if err != nil || !ok {
		return &pdpb.QuotaState{}, err
	}
	return decodeQuotas(v)
}

// editQuotas applies f to the current quota state and writes the result
// if nobody changed the state meanwhile (else it retries on the new one).
func (c *cluster) editQuotas(ctx context.Context, f func(*pdpb.QuotaState) error) error {
	for range maxAuthEditAttempts {
		old, ok, err := c.meta.get(ctx, rowQuota)
		if err != nil {
			return err
		}
		cur := &pdpb.QuotaState{}
		if ok {
			if cur, err = decodeQuotas(old); err != nil {
				return err
			}
		} else {
			old = nil
		}
		if err := f(cur); err != nil {
			return err
		}
		v, err := proto.Marshal(cur)
		if err != nil {
			return err
		}
		won, err := c.meta.cas(ctx, rowQuota, old, v)
		if err != nil {
			return err
		}
		if won {
			c.quotas.mu.Lock()
			c.quotas.invalid = true
			c.quotas.mu.Unlock()
			c.s.log.Info("quotas changed", "version", cur.Version)
			return nil
		}
	}
	return status.Error(codes.Aborted, "the quotas changed concurrently too often; retry")
}

// quotaSubject resolves a request's table name (to its ID) or checks that
// its user exists.
func (c *cluster) quotaSubject(ctx context.Context, table, user string) (uint64, string, error) {
	if err := quota.ValidateSubject(table, user); err != nil {
		return 0, "", err
	}
	if table != "" {
		t, err := c.table(table)
		if err != nil {
			return 0, "", err
		}
		return t.TableId, t.Name, nil
	}
	if user == authz.RootUser {
		return 0, "", nil
	}
	st, err := c.s.readAuth(ctx)
	if err != nil {
		return 0, "", err
	}
	if !slices.ContainsFunc(st.Users, func(u *pdpb.AuthUser) bool { return u.Name == user }) {
		return 0, "", status.Errorf(codes.NotFound, "user %q does not exist (create it with 'shale ctl user add')", user)
	}
	return 0, "", nil
}

func (v *service) SetQuota(ctx context.Context, req *pdpb.SetQuotaRequest) (*pdpb.SetQuotaResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if err := quota.ValidateSet(req.Limits); err != nil {
		return nil, err
	}
	id, name, err := c.quotaSubject(ctx, req.Table, req.User)
	if err != nil {
		return nil, err
	}
	var q *pdpb.Quota
	err = c.editQuotas(ctx, func(st *pdpb.QuotaState) error {
		var err error
		q, err = quota.Set(st, id, name, req.User, req.Limits)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &pdpb.SetQuotaResponse{Quota: q}, nil
}

func (v *service) RemoveQuota(ctx context.Context, req *pdpb.RemoveQuotaRequest) (*pdpb.RemoveQuotaResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if err := quota.ValidateNames(req.Limits); err != nil {
		return nil, err
	}
	if err := quota.ValidateSubject(req.Table, req.User); err != nil {
		return nil, err
	}
	var id uint64
	if req.Table != "" {
		t, err := c.table(req.Table)
		if err != nil {
			return nil, err
		}
		id = t.TableId
	}
	err = c.editQuotas(ctx, func(st *pdpb.QuotaState) error {
		found, err := quota.Remove(st, id, req.User, req.Limits)
		if err == nil && !found {
			return status.Errorf(codes.NotFound, "%s has no quota", subjectName(req.Table, req.User))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &pdpb.RemoveQuotaResponse{}, nil
}

func subjectName(table, user string) string {
	if table != "" {
		return fmt.Sprintf("table %q", table)
	}
	return fmt.Sprintf("user %q", user)
}

func (v *service) ListQuotas(ctx context.Context, req *pdpb.ListQuotasRequest) (*pdpb.ListQuotasResponse, error) {
	if _, err := v.leader(req.Header); err != nil {
		return nil, err
	}
	st, err := v.s.readQuotas(ctx)
	if err != nil {
		return nil, err
	}
	return &pdpb.ListQuotasResponse{State: st}, nil
}

// dropTableQuota forgets a dropped table's quota (best effort: a quota
// left behind names a table ID no store serves and limits nothing).
func (c *cluster) dropTableQuota(ctx context.Context, tableID uint64) {
	err := c.editQuotas(ctx, func(st *pdpb.QuotaState) error {
		quota.DropTable(st, tableID)
		return nil
	})
	if err != nil {
		c.s.log.Warn("removing a dropped table's quota failed", "table_id", tableID, "err", err)
	}
}

// storeQuotas returns the store's quota shares for its heartbeat answer;
// nil (say nothing, the store keeps what it has) if the quota state
// cannot be read.
func (c *cluster) storeQuotas(ctx context.Context, storeID uint64) *pdpb.QuotaShares {
	qs := &c.quotas
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.invalid || qs.byStore == nil || time.Since(qs.at) > shareRefresh {
		st, err := c.s.readQuotas(ctx)
		if err != nil {
			c.s.log.Warn("reading the quotas failed", "err", err)
			return nil
		}
		qs.byStore, qs.version, qs.at, qs.invalid = c.computeShares(st), st.Version, time.Now(), false
	}
	return &pdpb.QuotaShares{Version: qs.version, Shares: qs.byStore[storeID]}
}

// computeShares splits st over the serving stores (internal/quota.Shares),
// from the leaders of each limited table's tablets: O(quotas × stores +
// tablets of the limited tables).
func (c *cluster) computeShares(st *pdpb.QuotaState) map[uint64][]*pdpb.QuotaShare {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := quota.Placement{Leaders: map[uint64]map[uint64]int{}}
	for id, si := range c.stores {
		if si.State == pdpb.StoreState_UP {
			p.Stores = append(p.Stores, id)
		}
	}
	live := &pdpb.QuotaState{Version: st.Version}
	all := c.view.Tablets()
	for _, q := range st.Quotas {
		if q.User != "" {
			live.Quotas = append(live.Quotas, q)
			continue
		}
		if _, ok := c.tables[q.TableId]; !ok {
			continue // dropped
		}
		live.Quotas = append(live.Quotas, q)
		p.Leaders[q.TableId] = leadersOf(all, q.TableId)
	}
	return quota.Shares(live, p)
}

// leadersOf counts the leaders per store of the tablets overlapping the
// table's key range (all: key-ordered).
func leadersOf(all []*schedule.Tablet, tableID uint64) map[uint64]int {
	start, end := keys.TablePrefix(tableID), keys.TablePrefix(tableID+1)
	i := sort.Search(len(all), func(i int) bool {
		return len(all[i].EndKey) == 0 || bytes.Compare(all[i].EndKey, start) > 0
	})
	out := map[uint64]int{}
	for ; i < len(all) && bytes.Compare(all[i].StartKey, end) < 0; i++ {
		if all[i].LeaderStoreID != 0 {
			out[all[i].LeaderStoreID]++
		}
	}
	return out
}
