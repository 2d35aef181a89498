package placementdriver

import (
	"context"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

var tableNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$`)
var familyNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// createTable adds a table to the catalog. Table IDs come from the ID
// allocator and are never reused; the tablets covering the new table are
// split at its boundaries (and its split rows) by CreateTable (splitKeys),
// or else by the boundary checker.
// fixedID, when non-zero, is used instead of allocating (the built-in
// raw key/value table).
func (c *cluster) createTable(ctx context.Context, req *pdpb.CreateTableRequest, fixedID uint64) (*metapb.TableSchema, error) {
	if !tableNameRE.MatchString(req.Name) {
		return nil, status.Errorf(codes.InvalidArgument, "table name %q is invalid: use letters, digits, '_', '.', '-', starting with a letter or '_', at most 128 characters", req.Name)
	}
	if len(req.Families) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "table %q needs at least one column family", req.Name)
	}
	seen := map[string]bool{}
	for _, f := range req.Families {
		if !familyNameRE.MatchString(f.GetName()) {
			return nil, status.Errorf(codes.InvalidArgument, "column family name %q is invalid: 1-64 letters, digits, '_', '.', '-'", f.GetName())
		}
		if seen[f.Name] {
			return nil, status.Errorf(codes.InvalidArgument, "column family %q is listed twice", f.Name)
		}
		if f.MaxAgeMs < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "column family %q: max age must not be negative", f.Name)
		}
		seen[f.Name] = true
	}
	for _, r := range req.SplitRows {
		if len(r) == 0 {
			return nil, status.Error(codes.InvalidArgument, "split rows must not be empty")
		}
	}
	c.mu.Lock()
	for _, t := range c.tables {
		if t.Name == req.Name {
			c.mu.Unlock()
			return nil, status.Errorf(codes.AlreadyExists, "table %q already exists", req.Name)
		}
	}
	c.mu.Unlock()
	id := fixedID
	if id == 0 {
		var err error
		if id, err = c.alloc.alloc(ctx, 1); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	version := c.catalogVersion + 1
	c.mu.Unlock()
	t := &metapb.TableSchema{TableId: id, Name: req.Name, Families: req.Families, Version: version, SplitRows: req.SplitRows, SqlSchema: req.SqlSchema}
	v, err := proto.Marshal(t)
	if err != nil {
		return nil, err
	}
	if err := c.meta.put(ctx, map[string][]byte{idRow(prefixTable, id): v, rowCatalogVersion: u64(version)}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tables[id] = t
	c.catalogVersion = max(c.catalogVersion, version)
	c.mu.Unlock()
	c.s.log.Info("table created", "table", t.Name, "id", id)
	return t, nil
}

// catalogWait bounds how long a catalog change waits for stores to learn it.
const catalogWait = 10 * time.Second

// waitCatalog waits (bounded) until every Up store has reported catalog
// version v in a heartbeat, so a table can be used as soon as its creation
// returns. A store that has not caught up by then gets it on its next
// heartbeat; requests for the table fail with TableNotFound until then.
// Stores in installed already have the change (pushSchema) and are not
// waited for.
func (c *cluster) waitCatalog(ctx context.Context, v uint64, installed map[uint64]bool) {
	deadline := time.Now().Add(catalogWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c.mu.Lock()
		behind := 0
		for id, si := range c.stores {
			if si.State == pdpb.StoreState_UP && c.storeCatalog[id] < v && !installed[id] {
				behind++
			}
		}
		c.mu.Unlock()
		if behind == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dropTable removes a table from the catalog; stores learn of the drop
// from their heartbeats (dropTable waits for them, bounded by
// catalogWait) and delete its data in the background.
func (c *cluster) dropTable(ctx context.Context, name string) error {
	c.mu.Lock()
	var t *metapb.TableSchema
	for _, x := range c.tables {
		if x.Name == name {
			t = x
		}
	}
	version := c.catalogVersion + 1
	c.mu.Unlock()
	if t == nil {
		return status.Errorf(codes.NotFound, "table %q does not exist", name)
	}
	if t.TableId == kvTableID {
		return status.Errorf(codes.FailedPrecondition, "table %q is built in and cannot be dropped", name)
	}
	if err := c.meta.put(ctx, map[string][]byte{
		idRow(prefixTable, t.TableId):   nil,
		idRow(prefixDropped, t.TableId): u64(version),
		rowCatalogVersion:               u64(version),
	}); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.tables, t.TableId)
	c.dropped[t.TableId] = version
	c.catalogVersion = max(c.catalogVersion, version)
	c.mu.Unlock()
	c.s.log.Info("table dropped", "table", name, "id", t.TableId)
	c.dropTableQuota(ctx, t.TableId)
	// A drop is not pushed to stores: wait (bounded) for their heartbeats,
	// so that a client that sees the drop, or a table created after it
	// (whose schema is pushed), is not then served the dropped table by a
	// store that has not heard of the drop.
	c.waitCatalog(ctx, version, nil)
	return nil
}

// setSQLSchema replaces a table's SQL schema (opaque bytes owned by the SQL
// layer), optionally only if the table is still at expectedVersion, and
// bumps the catalog version so stores learn the new schema.
func (c *cluster) setSQLSchema(ctx context.Context, req *pdpb.SetSQLSchemaRequest) (*metapb.TableSchema, error) {
	c.catalogMu.Lock()
	defer c.catalogMu.Unlock()
	c.mu.Lock()
	var old *metapb.TableSchema
	for _, x := range c.tables {
		if x.Name == req.Name {
			old = x
		}
	}
	version := c.catalogVersion + 1
	c.mu.Unlock()
	if old == nil {
		return nil, status.Errorf(codes.NotFound, "table %q does not exist", req.Name)
	}
	if req.ExpectedVersion != 0 && old.Version != req.ExpectedVersion {
		return nil, status.Errorf(codes.FailedPrecondition, "table %q changed concurrently (version %d, expected %d)", req.Name, old.Version, req.ExpectedVersion)
	}
	t := proto.Clone(old).(*metapb.TableSchema)
	t.SqlSchema = req.SqlSchema
	t.Version = version
	v, err := proto.Marshal(t)
	if err != nil {
		return nil, err
	}
	if err := c.meta.put(ctx, map[string][]byte{idRow(prefixTable, t.TableId): v, rowCatalogVersion: u64(version)}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tables[t.TableId] = t
	c.catalogVersion = max(c.catalogVersion, version)
	c.mu.Unlock()
	return t, nil
}

func (c *cluster) table(name string) (*metapb.TableSchema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tables {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "table %q does not exist", name)
}
