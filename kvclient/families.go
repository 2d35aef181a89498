package kvclient

import (
	"context"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// FamilyChange is one change of ModifyColumnFamilies: create a family,
// update its GC policy, or drop it.
type FamilyChange struct {
	m *pdpb.ColumnFamilyModification
}

// CreateFamily adds family f (its name and GC policy).
func CreateFamily(f Family) FamilyChange {
	return FamilyChange{&pdpb.ColumnFamilyModification{Name: f.Name, Mod: &pdpb.ColumnFamilyModification_Create{Create: familySchema(f)}}}
}

// UpdateFamily replaces the GC policy of family f.Name.
func UpdateFamily(f Family) FamilyChange {
	return FamilyChange{&pdpb.ColumnFamilyModification{Name: f.Name, Mod: &pdpb.ColumnFamilyModification_Update{Update: familySchema(f)}}}
}

// DropFamily deletes a family: its cells are hidden from reads at once and
// removed by garbage collection; the name cannot be used again in the table.
func DropFamily(name string) FamilyChange {
	return FamilyChange{&pdpb.ColumnFamilyModification{Name: name, Mod: &pdpb.ColumnFamilyModification_Drop{Drop: true}}}
}

func familySchema(f Family) *metapb.FamilySchema {
	return &metapb.FamilySchema{Name: f.Name, MaxVersions: f.MaxVersions, MaxAgeMs: f.MaxAge.Milliseconds()}
}

// ModifyColumnFamilies changes a table's column families online, all the
// changes at once (one new schema version that the stores have when it
// returns, within PD's bounded wait) or none.
func (c *Client) ModifyColumnFamilies(ctx context.Context, table string, changes ...FamilyChange) (*TableInfo, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	req := &pdpb.ModifyColumnFamiliesRequest{Name: table}
	for _, ch := range changes {
		req.Modifications = append(req.Modifications, ch.m)
	}
	resp, err := c.pd.ModifyColumnFamilies(ctx, req)
	if err != nil {
		return nil, pdError(err, "modify column families of "+table)
	}
	ti := tableInfoFromProto(resp.Table)
	c.tables.Lock()
	c.tables.byName[table] = ti
	c.tables.Unlock()
	return ti, nil
}
