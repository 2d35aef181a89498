package node

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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
)

// DebugClient reads and writes the default raw-KV table (KVTableID, family
// KVFamily, empty qualifier) on the bootstrap tablet. It follows NotLeader
// hints and retries transient failures with backoff. It is a stopgap for
// tests and `shale tablet-debug` until kvclient exists: it knows one tablet
// only and has no routing cache beyond the last leader seen.
type DebugClient struct {
	// RetryTimeout bounds one operation, all retries included. Default 10s.
	RetryTimeout time.Duration
	// AttemptTimeout bounds one RPC. Default 3s.
	AttemptTimeout time.Duration

	mu     sync.Mutex
	addrs  map[uint64]string // guarded by mu
	conns  map[uint64]*grpc.ClientConn
	leader uint64 // best guess; 0 unknown
	next   int    // round-robin cursor when no leader is known
}

// NewDebugClient returns a client for the given store-id → address map.
// Connections are made lazily.
func NewDebugClient(stores map[uint64]string) (*DebugClient, error) {
	if len(stores) == 0 {
		return nil, errors.New("debug client: no stores given")
	}
	return &DebugClient{
		RetryTimeout:   10 * time.Second,
		AttemptTimeout: 3 * time.Second,
		addrs:          maps.Clone(stores),
		conns:          map[uint64]*grpc.ClientConn{},
	}, nil
}

// Close closes every connection.
func (c *DebugClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for id, cc := range c.conns {
		err = errors.Join(err, cc.Close())
		delete(c.conns, id)
	}
	return err
}

func header() *kvpb.RequestHeader { return &kvpb.RequestHeader{TabletId: BootstrapTabletID} }

// Put sets row to value. A retried put may apply twice, which for a plain
// set is harmless.
func (c *DebugClient) Put(ctx context.Context, row, value []byte) error {
	return c.do(ctx, func(ctx context.Context, cl kvpb.TabletClient) error {
		_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{
			Header:  header(),
			TableId: KVTableID,
			RowKey:  row,
			Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{
				SetCell: &kvpb.Mutation_SetCell{Family: KVFamily, Value: value},
			}}},
		})
		return err
	})
}

// Get returns row's value; found is false if the row has none.
func (c *DebugClient) Get(ctx context.Context, row []byte) (value []byte, found bool, err error) {
	err = c.do(ctx, func(ctx context.Context, cl kvpb.TabletClient) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{
			Header:  header(),
			TableId: KVTableID,
			RowKey:  row,
			Options: &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: KVFamily}}},
		})
		if err != nil {
			return err
		}
		value, found = kvValue(resp.GetRow())
		return nil
	})
	return value, found, err
}

// Scan calls fn for every row of the table in key order. If the stream
// breaks, it resumes after the last row delivered.
func (c *DebugClient) Scan(ctx context.Context, fn func(row, value []byte) error) error {
	var start []byte
	return c.do(ctx, func(ctx context.Context, cl kvpb.TabletClient) error {
		stream, err := cl.Scan(ctx, &kvpb.ScanRequest{
			Header:   header(),
			TableId:  KVTableID,
			StartRow: start,
			Options:  &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: KVFamily}}},
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
				if v, ok := kvValue(r); ok {
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
func kvValue(r *kvpb.Row) ([]byte, bool) {
	for _, c := range r.GetCells() {
		if c.Family == KVFamily && len(c.Qualifier) == 0 {
			return c.Value, true
		}
	}
	return nil, false
}

// permanent wraps an error that must not be retried.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// do runs op against the best-guess leader until it succeeds, fails
// permanently, or RetryTimeout passes.
func (c *DebugClient) do(ctx context.Context, op func(context.Context, kvpb.TabletClient) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.RetryTimeout)
	defer cancel()
	backoff := 20 * time.Millisecond
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
			if !retryable(err) {
				return err
			}
			err = fmt.Errorf("store %d: %w", id, err)
			if c.followHint(id, err) {
				last = err
				continue // a fresh leader hint: retry at once
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %d attempts: %w (last error: %v)", attempt+1, context.Cause(ctx), last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// pick returns the store to try: the known leader, else the next one in
// store-id order.
func (c *DebugClient) pick() (uint64, kvpb.TabletClient, error) {
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
func (c *DebugClient) followHint(id uint64, err error) bool {
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

// retryable reports errors worth another attempt, possibly elsewhere:
// routing errors (errs.IsRetryable), an unreachable or shutting-down store,
// a timed-out attempt. Ambiguous results (codes.Unknown) are retried too:
// every operation here is idempotent.
func retryable(err error) bool {
	if errs.IsRetryable(err) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Unknown, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}
