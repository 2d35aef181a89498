package kvclient

import "context"

// The raw key/value API stores each key as a row of the built-in table
// "kv" (table ID 1) with one cell: family "v", empty qualifier.
const (
	rawTableID = 1
	rawTable   = "kv"
	rawFamily  = "v"
)

func (c *Client) raw() *Table {
	return &Table{c: c, info: &TableInfo{ID: rawTableID, Name: rawTable, Families: []Family{{Name: rawFamily, MaxVersions: 1}}}}
}

// RawGet returns the value of key and whether it exists.
func (c *Client) RawGet(ctx context.Context, key []byte) ([]byte, bool, error) {
	row, err := c.raw().Get(ctx, key, Columns(Column{Family: rawFamily, Qualifier: []byte{}}))
	if err != nil || row == nil {
		return nil, false, err
	}
	v, ok := row.Value(rawFamily, nil)
	return v, ok, nil
}

// RawPut sets key to value.
func (c *Client) RawPut(ctx context.Context, key, value []byte) error {
	_, err := c.raw().MutateRow(ctx, key, SetCell(rawFamily, nil, value))
	return err
}

// RawDelete deletes key (no error if it does not exist).
func (c *Client) RawDelete(ctx context.Context, key []byte) error {
	_, err := c.raw().MutateRow(ctx, key, DeleteRow())
	return err
}

// RawScan returns up to limit pairs with start <= key < end in key order
// (nil end: to the end; limit 0: no limit).
func (c *Client) RawScan(ctx context.Context, start, end []byte, limit int) ([]KV, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	sc := c.raw().Scan(ctx, ScanOptions{Start: start, End: end, Limit: limit, Read: []ReadOption{Families(rawFamily)}})
	defer sc.Close()
	var out []KV
	for sc.Next() {
		if v, ok := sc.Row().Value(rawFamily, nil); ok {
			out = append(out, KV{Key: sc.Row().Key, Value: v})
		}
	}
	return out, sc.Err()
}
