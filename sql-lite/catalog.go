package sqllite

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/shaledb/shale/kvclient"
)

// family is the one column family every SQL table has.
const family = "c"

// versionQual is the hidden per-row version cell: every SQL row has it (so
// it also marks the row's existence) and every SQL write replaces it with a
// fresh random token, so check-and-mutate on it detects any concurrent
// write, including a delete and re-insert.
var versionQual = []byte{0}

// ColumnDef is one column of a SQL table.
type ColumnDef struct {
	// ID is the cell qualifier (uvarint), never reused within a table, so
	// DROP/ADD COLUMN need no data rewrite.
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	Type    Type   `json:"type"`
	NotNull bool   `json:"not_null,omitempty"`
	// Default is the default value in its display form (converted with
	// the column type); nil means NULL.
	Default *string `json:"default,omitempty"`
	// DefaultNow: DEFAULT CURRENT_TIMESTAMP (the time of the insert).
	DefaultNow bool `json:"default_now,omitempty"`
	// Backfill marks a column added by ALTER TABLE with a default: rows
	// written before it existed read the default.
	Backfill bool `json:"backfill,omitempty"`
}

// tableSchema is the SQL schema stored (as JSON) with the table in the PD
// catalog.
type tableSchema struct {
	Columns []ColumnDef `json:"columns"`
	PK      []uint64    `json:"pk"`
	NextID  uint64      `json:"next_id"`
	// Splits are the SPLIT AT tuples as SQL text, for SHOW CREATE TABLE.
	Splits []string `json:"splits,omitempty"`
}

// table is a resolved SQL table.
type table struct {
	name   string
	info   *kvclient.TableInfo
	kv     *kvclient.Table
	schema tableSchema
	cols   []ColumnDef
	byName map[string]int
	pk     []int    // indexes into cols
	isPK   []bool   // by column index
	quals  [][]byte // by column index
}

func qualOf(id uint64) []byte { return binary.AppendUvarint(nil, id) }

func newTable(ctx context.Context, c *kvclient.Client, info *kvclient.TableInfo) (*table, error) {
	var s tableSchema
	if err := json.Unmarshal(info.SQLSchema, &s); err != nil {
		return nil, errf(CodeStorage, "table %s has an unreadable SQL schema: %v", info.Name, err)
	}
	kv, err := c.Table(ctx, info.Name)
	if err != nil {
		return nil, storageErr(err, "open table "+info.Name)
	}
	t := tableFromSchema(info.Name, s)
	t.info, t.kv = info, kv
	return t, nil
}

// tableFromSchema resolves a SQL schema's columns and primary key.
func tableFromSchema(name string, s tableSchema) *table {
	t := &table{name: name, schema: s, cols: s.Columns, byName: map[string]int{}}
	t.isPK = make([]bool, len(s.Columns))
	for i, col := range s.Columns {
		t.byName[strings.ToLower(col.Name)] = i
		t.quals = append(t.quals, qualOf(col.ID))
	}
	for _, id := range s.PK {
		for i, col := range s.Columns {
			if col.ID == id {
				t.pk = append(t.pk, i)
				t.isPK[i] = true
			}
		}
	}
	return t
}

func (t *table) col(name string) (int, bool) {
	i, ok := t.byName[strings.ToLower(name)]
	return i, ok
}

// lookup resolves a table by name (names are case-insensitive and stored
// lower-case). Statements that write (and DDL) always check the catalog
// (once per table per statement), so they never write with a stale
// schema; SELECTs use the session's cache and check it in parallel with
// their execution (see execSelect), re-running when it was stale.
func (s *Session) lookup(ctx context.Context, name string) (*table, error) {
	name = strings.ToLower(name)
	if t, ok := s.seen[name]; ok {
		return t, nil
	}
	if t, _ := s.cache.get(name); t != nil && !s.fresh {
		return t, nil
	}
	info, err := s.client.DescribeTable(ctx, name)
	if err != nil {
		s.cache.drop(name)
		if errors.Is(err, kvclient.ErrTableNotFound) {
			return nil, errf(CodeUnknownTable, "table %s does not exist", name)
		}
		return nil, storageErr(err, "describe table "+name)
	}
	if len(info.SQLSchema) == 0 {
		return nil, errf(CodeUnknownTable, "table %s is not a SQL table (it has no SQL schema)", name)
	}
	t, _ := s.cache.get(name)
	if t == nil || t.info.ID != info.ID || t.info.Version != info.Version {
		if t, err = newTable(ctx, s.client, info); err != nil {
			return nil, err
		}
	}
	s.cache.put(name, t)
	if s.seen != nil {
		s.seen[name] = t
	}
	return t, nil
}

// catalogCache holds the resolved tables of one kvclient.Client, shared
// by every session on it, so a schema change made by one session is seen
// by the others at once. checked is when the catalog last confirmed an
// entry.
type catalogCache struct {
	mu     sync.Mutex
	tables map[string]cacheEntry
}

type cacheEntry struct {
	t       *table
	checked time.Time
}

var catalogCaches sync.Map // *kvclient.Client -> *catalogCache

func cacheFor(c *kvclient.Client) *catalogCache {
	v, _ := catalogCaches.LoadOrStore(c, &catalogCache{tables: map[string]cacheEntry{}})
	return v.(*catalogCache)
}

func (c *catalogCache) get(name string) (*table, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.tables[name]
	return e.t, e.checked
}

func (c *catalogCache) put(name string, t *table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tables[name]; ok && e.t.info.ID == t.info.ID && e.t.info.Version > t.info.Version {
		return // a slower lookup must not bring back an older schema
	}
	c.tables[name] = cacheEntry{t, time.Now()}
}

// confirm records that the catalog still matches t.
func (c *catalogCache) confirm(t *table) {
	c.mu.Lock()
	if e, ok := c.tables[t.name]; ok && e.t == t {
		c.tables[t.name] = cacheEntry{t, time.Now()}
	}
	c.mu.Unlock()
}

func (c *catalogCache) drop(name string) {
	c.mu.Lock()
	delete(c.tables, name)
	c.mu.Unlock()
}

// recheckAfter is how long a SELECT trusts a cached schema without asking
// the catalog again. Schema changes made through the same kvclient.Client
// update the cache at once; this bounds how long a change made elsewhere
// (another process or client) can go unseen by reads. Writes always ask.
var recheckAfter = 100 * time.Millisecond

// staleTables reports which of the tables changed in the catalog since
// they were cached.
func (s *Session) staleTables(ctx context.Context, ts []*table) ([]string, error) {
	var stale []string
	for _, t := range ts {
		info, err := s.client.DescribeTable(ctx, t.name)
		if err != nil {
			if errors.Is(err, kvclient.ErrTableNotFound) {
				stale = append(stale, t.name)
				continue
			}
			return nil, err
		}
		if info.ID != t.info.ID || info.Version != t.info.Version {
			stale = append(stale, t.name)
		}
	}
	return stale, nil
}

// encodeKey encodes the primary-key values (in pk order) into a row key.
func (t *table) encodeKey(vals []Datum) ([]byte, error) {
	var k []byte
	for i, ci := range t.pk {
		if vals[i].IsNull() {
			return nil, errf(CodeConstraint, "primary key column %s must not be NULL", t.cols[ci].Name)
		}
		k = encodeValue(k, vals[i], t.cols[ci].Type, true)
	}
	return k, nil
}

// decodeRow turns a storage row into values by column index. It reports
// false when the row has no version cell (not a SQL row / deleted).
func (t *table) decodeRow(r *kvclient.Row) ([]Datum, uint64, bool, error) {
	if r == nil {
		return nil, 0, false, nil
	}
	vals := make([]Datum, len(t.cols))
	rest := r.Key
	for _, ci := range t.pk {
		var err error
		vals[ci], rest, err = decodeValue(rest, t.cols[ci].Type, true)
		if err != nil {
			return nil, 0, false, errf(CodeStorage, "table %s: bad row key %q: %v", t.name, r.Key, err)
		}
	}
	var version uint64
	found := false
	for _, c := range r.Cells {
		if c.Family != family {
			continue
		}
		if len(c.Qualifier) == 1 && c.Qualifier[0] == 0 {
			if len(c.Value) == 8 {
				version = binary.BigEndian.Uint64(c.Value)
			}
			found = true
			continue
		}
		id, n := binary.Uvarint(c.Qualifier)
		if n <= 0 {
			continue
		}
		for ci := range t.cols {
			if t.cols[ci].ID == id && !t.isPK[ci] {
				d, _, err := decodeValue(c.Value, t.cols[ci].Type, false)
				if err != nil {
					return nil, 0, false, errf(CodeStorage, "table %s column %s: bad value: %v", t.name, t.cols[ci].Name, err)
				}
				vals[ci] = d
				break
			}
		}
	}
	if found {
		epoch := version & (1<<epochBits - 1)
		for ci := range t.cols {
			if c := &t.cols[ci]; c.Backfill && c.ID >= epoch && vals[ci].IsNull() {
				vals[ci] = c.defaultValue()
			}
		}
	}
	return vals, version, found, nil
}

func (t *table) pkVals(vals []Datum) []Datum {
	out := make([]Datum, len(t.pk))
	for i, ci := range t.pk {
		out[i] = vals[ci]
	}
	return out
}

func versionBytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
