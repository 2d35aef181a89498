package kvclient

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/hlc"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Client is a connection to a Shale cluster. It is safe for concurrent use;
// share one per process.
type Client struct {
	opts     Options
	log      *slog.Logger
	pd       *pdclient.Client
	cache    *locationCache
	pool     *connPool
	clientID ClientID
	seq      atomic.Uint64
	closed   atomic.Bool
	metrics  *clientMetrics
	// clock orders this client's reads after its writes: it takes in
	// every commit timestamp the client is told of (readts.go).
	clock *hlc.Clock

	tables struct {
		sync.Mutex
		byName map[string]*TableInfo
	}
}

// Open connects to the cluster: it checks that the placement driver
// answers (within ctx) and returns a ready client.
func Open(ctx context.Context, o Options) (*Client, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	pd, err := pdclient.New(o.PD, 0, pdclient.WithTLS(o.TLS))
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.RequestTimeout)
		defer cancel()
	}
	if _, err := pd.GetMembers(ctx); err != nil {
		pd.Close()
		return nil, fmt.Errorf("kvclient: contacting the placement driver at %v: %w", o.PD, err)
	}
	c := &Client{opts: o, log: o.Logger, pd: pd, clientID: o.ClientID, clock: hlc.New(nil, 0)}
	for c.clientID.IsZero() {
		if _, err := crand.Read(c.clientID[:]); err != nil {
			pd.Close()
			return nil, fmt.Errorf("kvclient: drawing a random client ID: %w", err)
		}
	}
	lk := pdLookup{pd}
	c.metrics = newClientMetrics(o.Registry)
	c.cache = newLocationCache(lk)
	c.cache.misses = c.metrics.cacheMisses
	c.pool = newConnPool(lk, o.DialOptions, o.TLS)
	c.tables.byName = map[string]*TableInfo{}
	return c, nil
}

// Close releases the client's connections. Operations in flight fail.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.pool.close()
	return c.pd.Close()
}

// ClientID returns the ID stamped into the RequestID of every write.
func (c *Client) ClientID() ClientID { return c.clientID }

// nextRequestID returns a fresh request ID for one logical write; its
// retries reuse it.
func (c *Client) nextRequestID() *kvpb.RequestID {
	return &kvpb.RequestID{
		ClientIdHi: binary.BigEndian.Uint64(c.clientID[:8]),
		ClientId:   binary.BigEndian.Uint64(c.clientID[8:]),
		Seq:        c.seq.Add(1),
	}
}

// opContext applies RequestTimeout when ctx has no deadline.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.RequestTimeout)
}

// pdLookup serves the location cache and the connection pool from the PD.
type pdLookup struct{ pd *pdclient.Client }

func (l pdLookup) GetTablet(ctx context.Context, key []byte) (*pdpb.TabletInfo, error) {
	resp, err := l.pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
	if err != nil {
		return nil, err
	}
	if resp.Tablet == nil {
		return nil, status.Errorf(codes.NotFound, "no tablet for key %x", key)
	}
	return resp.Tablet, nil
}

func (l pdLookup) ScanTablets(ctx context.Context, start, end []byte, limit int) ([]*pdpb.TabletInfo, error) {
	resp, err := l.pd.ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: start, EndKey: end, Limit: uint32(limit)})
	if err != nil {
		return nil, err
	}
	return resp.Tablets, nil
}

func (l pdLookup) StoreAddr(ctx context.Context, storeID uint64) (string, error) {
	resp, err := l.pd.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: storeID})
	if err != nil {
		return "", err
	}
	addr := resp.GetStore().GetStore().GetAddress()
	if addr == "" {
		return "", fmt.Errorf("store %d has no address", storeID)
	}
	return addr, nil
}

// ---- admin ----

// CreateTable creates a table with the given column families, pre-split at
// splitRows, and waits (within ctx) until its tablets exist and have
// leaders.
func (c *Client) CreateTable(ctx context.Context, name string, families []Family, splitRows ...[]byte) (*TableInfo, error) {
	return c.CreateTableWithSQLSchema(ctx, name, families, nil, splitRows...)
}

// CreateTableWithSQLSchema is CreateTable that also stores the SQL layer's
// (opaque) schema with the table in the PD catalog.
func (c *Client) CreateTableWithSQLSchema(ctx context.Context, name string, families []Family, sqlSchema []byte, splitRows ...[]byte) (*TableInfo, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := c.pd.CreateTable(ctx, &pdpb.CreateTableRequest{Name: name, Families: familiesToProto(families), SplitRows: splitRows, SqlSchema: sqlSchema})
	if err != nil {
		return nil, pdError(err, "create table "+name)
	}
	ti := tableInfoFromProto(resp.Table)
	if err := c.waitTableReady(ctx, ti); err != nil {
		return nil, err
	}
	c.tables.Lock()
	c.tables.byName[name] = ti
	c.tables.Unlock()
	return ti, nil
}

// waitTableReady waits until every boundary of the new table starts a
// tablet with a leader.
func (c *Client) waitTableReady(ctx context.Context, ti *TableInfo) error {
	bounds := [][]byte{keys.TablePrefix(ti.ID)}
	for _, r := range ti.SplitRows {
		bounds = append(bounds, keys.RowKey(ti.ID, r))
	}
	bo := retry.NewExponential(20*time.Millisecond, 100*time.Millisecond)
	for i, b := range bounds {
		for {
			resp, err := c.pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: b})
			if err == nil && bytes.Equal(resp.GetTablet().GetTablet().GetStartKey(), b) && resp.Tablet.LeaderStoreId != 0 {
				break
			}
			if err := bo.Wait(ctx, 0); err != nil {
				return &TableNotReadyError{Table: ti.Name, Ready: i, Tablets: len(bounds), Pending: b, Err: err}
			}
		}
	}
	return nil
}

// TableNotReadyError is returned by CreateTable when the table was
// created but not all its tablets became routable before the deadline:
// the cluster finishes the splits in the background.
type TableNotReadyError struct {
	Table          string
	Ready, Tablets int
	Pending        []byte // start key of the first tablet not routable yet
	Err            error
}

func (e *TableNotReadyError) Error() string {
	return fmt.Sprintf("kvclient: table %q was created, but timed out waiting for its tablets to become routable: %d of %d ready, the one starting at %x is not (%v)",
		e.Table, e.Ready, e.Tablets, e.Pending, e.Err)
}

func (e *TableNotReadyError) Unwrap() error { return e.Err }

// DropTable drops a table and its data.
func (c *Client) DropTable(ctx context.Context, name string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	c.forgetTable(name)
	_, err := c.pd.DropTable(ctx, &pdpb.DropTableRequest{Name: name})
	return pdError(err, "drop table "+name)
}

// SetSQLSchema replaces a table's SQL schema in the PD catalog. With a
// non-zero expectedVersion it applies only if the table's Version still
// equals it (an error wrapping codes.FailedPrecondition otherwise).
func (c *Client) SetSQLSchema(ctx context.Context, name string, expectedVersion uint64, sqlSchema []byte) (*TableInfo, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := c.pd.SetSQLSchema(ctx, &pdpb.SetSQLSchemaRequest{Name: name, ExpectedVersion: expectedVersion, SqlSchema: sqlSchema})
	if err != nil {
		return nil, pdError(err, "set SQL schema of "+name)
	}
	ti := tableInfoFromProto(resp.Table)
	c.tables.Lock()
	c.tables.byName[name] = ti
	c.tables.Unlock()
	return ti, nil
}

// ListTables lists every table, the built-in "kv" table included.
func (c *Client) ListTables(ctx context.Context) ([]*TableInfo, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := c.pd.ListTables(ctx, &pdpb.ListTablesRequest{})
	if err != nil {
		return nil, pdError(err, "list tables")
	}
	out := make([]*TableInfo, 0, len(resp.Tables))
	for _, s := range resp.Tables {
		out = append(out, tableInfoFromProto(s))
	}
	return out, nil
}

// DescribeTable returns a table's schema, asking the PD (never the cache).
func (c *Client) DescribeTable(ctx context.Context, name string) (*TableInfo, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	resp, err := c.pd.GetTable(ctx, &pdpb.GetTableRequest{Name: name})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			c.forgetTable(name)
		}
		return nil, pdError(err, "describe table "+name)
	}
	ti := tableInfoFromProto(resp.Table)
	c.tables.Lock()
	c.tables.byName[name] = ti
	c.tables.Unlock()
	return ti, nil
}

// Table returns a handle for reading and writing a table. The schema is
// looked up once and cached.
func (c *Client) Table(ctx context.Context, name string) (*Table, error) {
	c.tables.Lock()
	ti, ok := c.tables.byName[name]
	c.tables.Unlock()
	if !ok {
		var err error
		if ti, err = c.DescribeTable(ctx, name); err != nil {
			return nil, err
		}
	}
	return &Table{c: c, info: ti}, nil
}

func (c *Client) forgetTable(name string) {
	c.tables.Lock()
	delete(c.tables.byName, name)
	c.tables.Unlock()
}

// tableStillExists asks the PD whether t (same ID) still exists.
func (c *Client) tableStillExists(ctx context.Context, t *Table) bool {
	resp, err := c.pd.GetTable(ctx, &pdpb.GetTableRequest{Name: t.info.Name})
	if err != nil {
		if status.Code(err) == codes.NotFound {
			c.forgetTable(t.info.Name)
			return false
		}
		return !errors.Is(err, ErrClosed) // unknown: keep trying until the deadline
	}
	if resp.Table.GetTableId() != t.info.ID {
		c.forgetTable(t.info.Name)
		return false
	}
	return true
}

// Ping checks that the placement driver answers (health checks of
// processes serving from this client).
func (c *Client) Ping(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if _, err := c.pd.GetMembers(ctx); err != nil {
		return fmt.Errorf("kvclient: the placement driver at %v does not answer: %w", c.opts.PD, err)
	}
	return nil
}
