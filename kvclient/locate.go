package kvclient

import (
	"bytes"
	"context"
	"fmt"

	"github.com/shaledb/shale/internal/keys"
)

// TabletLocation is where one tablet of a table lives, as the client routes
// to it. It is a snapshot: splits, merges and leader changes make it stale.
type TabletLocation struct {
	// TabletID identifies the tablet.
	TabletID uint64
	// StartRow and EndRow are the tablet's rows within the table:
	// [StartRow, EndRow). Nil StartRow: from the table's first row; nil
	// EndRow: to its last (the tablet may extend into other tables' key
	// space; only the table's part is reported).
	StartRow, EndRow []byte
	// EpochVersion counts the tablet's splits and merges.
	EpochVersion uint64
	// LeaderStoreID is the store believed to lead the tablet; 0 when
	// unknown.
	LeaderStoreID uint64
	// LeaderAddr is that store's gRPC address ("" when unknown).
	LeaderAddr string
}

// Locate returns the tablet holding row. With refresh it asks the placement
// driver (as after a routing error); otherwise the routing cache answers
// when it can.
func (t *Table) Locate(ctx context.Context, row []byte, refresh bool) (TabletLocation, error) {
	if t.c.closed.Load() {
		return TabletLocation{}, ErrClosed
	}
	ctx, cancel := t.c.opContext(ctx)
	defer cancel()
	key := t.key(row)
	if refresh {
		if l, ok := t.c.cache.cached(key); ok {
			t.c.cache.drop(l.tabletID())
		}
	}
	r := t.c.newRetrier(t, false, "locate")
	for {
		l, err := t.c.cache.locate(ctx, key)
		if err != nil {
			if err := r.handlePD(ctx, err); err != nil {
				return TabletLocation{}, err
			}
			continue
		}
		return t.tabletLocation(ctx, l), nil
	}
}

// Tablets returns every tablet of the table in row order, asking the
// placement driver (the answers also refresh the routing cache).
func (t *Table) Tablets(ctx context.Context) ([]TabletLocation, error) {
	if t.c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := t.c.opContext(ctx)
	defer cancel()
	const page = 64
	start, end := keys.TablePrefix(t.info.ID), keys.PrefixEnd(keys.TablePrefix(t.info.ID))
	r := t.c.newRetrier(t, false, "list tablets")
	var out []TabletLocation
	for {
		infos, err := t.c.cache.lookup.ScanTablets(ctx, start, end, page)
		if err != nil {
			if err := r.handlePD(ctx, err); err != nil {
				return nil, err
			}
			continue
		}
		var last []byte
		for _, info := range infos {
			d := info.GetTablet()
			if d == nil {
				continue
			}
			l := location{desc: d, leader: info.GetLeaderStoreId()}
			t.c.cache.insert(l)
			out = append(out, t.tabletLocation(ctx, l))
			last = d.EndKey
		}
		if len(infos) < page || len(last) == 0 || bytes.Compare(last, end) >= 0 {
			break
		}
		if bytes.Compare(last, start) <= 0 {
			return nil, fmt.Errorf("kvclient: list tablets of %q: the placement driver made no progress at %x", t.info.Name, start)
		}
		start = last
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kvclient: list tablets of %q: the placement driver knows no tablet for the table", t.info.Name)
	}
	return out, nil
}

// tabletLocation converts a cache entry, restricting its range to the
// table and resolving the leader's address (best effort: "" if the store
// cannot be resolved now).
func (t *Table) tabletLocation(ctx context.Context, l location) TabletLocation {
	out := TabletLocation{TabletID: l.tabletID(), EpochVersion: epochVersion(l.desc), LeaderStoreID: l.leader}
	if row, ok := rowOf(t.info.ID, l.desc.StartKey); ok {
		out.StartRow = row
	}
	if row, ok := rowOf(t.info.ID, l.desc.EndKey); ok {
		out.EndRow = row
	}
	if l.leader != 0 {
		out.LeaderAddr, _ = t.c.pool.storeAddr(ctx, l.leader)
	}
	return out
}

// storeAddr returns a store's address from the pool's cache or the
// placement driver, without opening a connection.
func (p *connPool) storeAddr(ctx context.Context, storeID uint64) (string, error) {
	p.mu.Lock()
	addr, ok := p.mu.addrs[storeID]
	p.mu.Unlock()
	if ok {
		return addr, nil
	}
	return p.resolve.StoreAddr(ctx, storeID)
}
