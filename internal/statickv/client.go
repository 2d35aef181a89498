package statickv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
)

// Tablet names the one tablet a Client talks to and the raw-KV table and
// family it reads and writes (empty qualifier).
type Tablet struct {
	TabletID, TableID uint64
	Family            string
}

// Client reads and writes one raw-KV table held by one tablet. It follows
// NotLeader hints and retries under internal/retry's policy; it knows one
// tablet only and has no routing cache beyond the last leader seen.
type Client struct {
	// RetryTimeout bounds one operation, all retries included. Default 10s.
	RetryTimeout time.Duration
	// AttemptTimeout bounds one RPC. Default 3s.
	AttemptTimeout time.Duration

	tablet Tablet
	mu     sync.Mutex
	addrs  map[uint64]string // guarded by mu
	conns  map[uint64]*grpc.ClientConn
	leader uint64 // best guess; 0 unknown
	next   int    // round-robin cursor when no leader is known
}

// New returns a client of tablet for the given store-id → address map.
// Connections are made lazily.
func New(stores map[uint64]string, tablet Tablet) (*Client, error) {
	if len(stores) == 0 {
		return nil, errors.New("statickv: no stores given")
	}
	return &Client{
		tablet:         tablet,
		RetryTimeout:   10 * time.Second,
		AttemptTimeout: 3 * time.Second,
		addrs:          maps.Clone(stores),
		conns:          map[uint64]*grpc.ClientConn{},
	}, nil
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for id, cc := range c.conns {
		err = errors.Join(err, cc.Close())
		delete(c.conns, id)
	}
	return err
}

func (c *Client) header() *kvpb.RequestHeader {
	return &kvpb.RequestHeader{TabletId: c.tablet.TabletID}
}

// Put sets row to value. A retried put may apply twice, which for a plain
// set is harmless.
func (c *Client) Put(ctx context.Context, row, value []byte) error {
	return c.do(ctx, func(ctx context.Context, cl kvpb.TabletClient) error {
		_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{
			Header:  c.header(),
			TableId: c.tablet.TableID,
			RowKey:  row,
			Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{
				SetCell: &kvpb.Mutation_SetCell{Family: c.tablet.Family, Value: value},
			}}},
		})
		return err
	})
}

// Get returns row's value; found is false if the row has none.
func (c *Client) Get(ctx context.Context, row []byte) (value []byte, found bool, err error) {
	err = c.do(ctx, func(ctx context.Context, cl kvpb.TabletClient) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{
			Header:  c.header(),
			TableId: c.tablet.TableID,
			RowKey:  row,
			Options: &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: c.tablet.Family}}},
		})
		if err != nil {
			return err
		}
		value, found = c.kvValue(resp.GetRow())
		return nil
	})
	return value, found, err
}

// Scan calls fn for every row of the table in key order. If the stream
// breaks, it resumes after the last row delivered.
func (c *Client) Scan(ctx context.Context, fn func(row, value []byte) error) error {
	var start []byte
	return c.do(ctx, func(ctx context.Context, cl kvpb.TabletClient) error {
		stream, err := cl.Scan(ctx, &kvpb.ScanRequest{
			Header:   c.header(),
			TableId:  c.tablet.TableID,
			StartRow: start,
			Options:  &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: c.tablet.Family}}},
		})
		if err != nil {
			return err
		}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, r := range resp.Rows {
				if v, ok := c.kvValue(r); ok {
					if err := fn(r.Key, v); err != nil {
						return permanent{err}
					}
				}
				start = append(slices.Clip(r.Key), 0) // the next possible row
			}
			if resp.Last {
				return nil
			}
		}
	})
}

// kvValue extracts the raw-KV cell of a row.
func (c *Client) kvValue(r *kvpb.Row) ([]byte, bool) {
	for _, cell := range r.GetCells() {
		if cell.Family == c.tablet.Family && len(cell.Qualifier) == 0 {
			return cell.Value, true
		}
	}
	return nil, false
}

// permanent wraps an error that must not be retried.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// do runs op against the best-guess leader until it succeeds, fails
// permanently, or RetryTimeout passes. Every operation here is idempotent
// (a put is a plain set), so ambiguous outcomes are retried too.
func (c *Client) do(ctx context.Context, op func(context.Context, kvpb.TabletClient) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.RetryTimeout)
	defer cancel()
	bo := retry.NewExponential(20*time.Millisecond, 500*time.Millisecond)
	var last error
	for attempt := 0; ; attempt++ {
		id, cl, err := c.pick()
		if err == nil {
			actx, acancel := context.WithTimeout(ctx, c.AttemptTimeout)
			err = op(actx, cl)
			acancel()
			if err == nil {
				return nil
			}
			var p permanent
			if errors.As(err, &p) {
				return p.err
			}
			if retry.Classify(err) == retry.Fail {
				return err
			}
			err = fmt.Errorf("store %d: %w", id, err)
			if c.followHint(id, err) {
				last = err
				continue // a fresh leader hint: retry at once
			}
		}
		last = err
		if bo.Wait(ctx, 0) != nil {
			return fmt.Errorf("gave up after %d attempts: %w (last error: %v)", attempt+1, context.Cause(ctx), last)
		}
	}
}

// pick returns the store to try: the known leader, else the next one in
// store-id order.
func (c *Client) pick() (uint64, kvpb.TabletClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.leader
	if id == 0 {
		ids := slices.Sorted(maps.Keys(c.addrs))
		id = ids[c.next%len(ids)]
		c.next++
	}
	cc, ok := c.conns[id]
	if !ok {
		var err error
		cc, err = grpc.NewClient(c.addrs[id], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return id, nil, fmt.Errorf("store %d at %s: %w", id, c.addrs[id], err)
		}
		c.conns[id] = cc
	}
	return id, kvpb.NewTabletClient(cc), nil
}

// followHint updates the leader guess after a failure from store id. It
// reports whether the error named a new leader worth trying immediately.
func (c *Client) followHint(id uint64, err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	nl, ok := errs.As[*errorpb.NotLeader](err)
	if !ok || nl.LeaderStoreId == 0 || nl.LeaderStoreId == id {
		if c.leader == id {
			c.leader = 0 // try the others
		}
		return false
	}
	if _, known := c.addrs[nl.LeaderStoreId]; !known {
		if nl.LeaderAddr == "" {
			c.leader = 0
			return false
		}
		c.addrs[nl.LeaderStoreId] = nl.LeaderAddr
	}
	fresh := c.leader != nl.LeaderStoreId
	c.leader = nl.LeaderStoreId
	return fresh
}
