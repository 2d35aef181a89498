package thriftgw

import (
	"context"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
)

// HBase's column family administration, online (PD's
// ModifyColumnFamilies): the table is checked for the caller's admin
// grant (authz table: TableAdmin), then changed in one schema version.

// familyTable resolves and authorizes the table a family call names.
func (h *handler) familyTable(ctx context.Context, tn *hbase.TTableName) (string, error) {
	name, err := tTableName(tn)
	if err != nil {
		return "", err
	}
	t, err := h.c.Table(ctx, name)
	if err != nil {
		return "", err
	}
	return name, h.authorizeTable(ctx, t)
}

// tFamily converts one family descriptor (its name, maxVersions and
// timeToLive, as createTable reads them).
func tFamily(tn *hbase.TTableName, col *hbase.TColumnFamilyDescriptor) (kvclient.Family, error) {
	if col == nil || len(col.Name) == 0 {
		return kvclient.Family{}, illegalf("missing column family descriptor or name")
	}
	_, fams, err := fromTDescriptor(&hbase.TTableDescriptor{TableName: tn, Columns: []*hbase.TColumnFamilyDescriptor{col}})
	if err != nil {
		return kvclient.Family{}, err
	}
	return fams[0], nil
}

// modifyFamilies runs changes on the table tn names.
func (h *handler) modifyFamilies(ctx context.Context, tn *hbase.TTableName, changes func(current *kvclient.TableInfo) ([]kvclient.FamilyChange, error)) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	name, err := h.familyTable(ctx, tn)
	if err != nil {
		return ioError(err)
	}
	ti, err := h.c.DescribeTable(ctx, name)
	if err != nil {
		return ioError(err)
	}
	chs, err := changes(ti)
	if err != nil {
		return ioError(err)
	}
	if len(chs) == 0 {
		return nil
	}
	_, err = h.c.ModifyColumnFamilies(ctx, name, chs...)
	return ioError(err)
}

func (h *handler) AddColumnFamily(ctx context.Context, tn *hbase.TTableName, col *hbase.TColumnFamilyDescriptor) error {
	return h.modifyFamilies(ctx, tn, func(*kvclient.TableInfo) ([]kvclient.FamilyChange, error) {
		f, err := tFamily(tn, col)
		return []kvclient.FamilyChange{kvclient.CreateFamily(f)}, err
	})
}

func (h *handler) DeleteColumnFamily(ctx context.Context, tn *hbase.TTableName, column []byte) error {
	return h.modifyFamilies(ctx, tn, func(*kvclient.TableInfo) ([]kvclient.FamilyChange, error) {
		if len(column) == 0 {
			return nil, illegalf("missing column family name")
		}
		return []kvclient.FamilyChange{kvclient.DropFamily(string(column))}, nil
	})
}

func (h *handler) ModifyColumnFamily(ctx context.Context, tn *hbase.TTableName, col *hbase.TColumnFamilyDescriptor) error {
	return h.modifyFamilies(ctx, tn, func(*kvclient.TableInfo) ([]kvclient.FamilyChange, error) {
		f, err := tFamily(tn, col)
		return []kvclient.FamilyChange{kvclient.UpdateFamily(f)}, err
	})
}

// ModifyTable makes the table's families those of desc, as HBase does:
// new ones are added, changed policies updated, missing ones deleted, all
// in one schema version.
func (h *handler) ModifyTable(ctx context.Context, desc *hbase.TTableDescriptor) error {
	if desc == nil {
		return ioError(illegalf("missing table descriptor"))
	}
	return h.modifyFamilies(ctx, desc.TableName, func(cur *kvclient.TableInfo) ([]kvclient.FamilyChange, error) {
		_, want, err := fromTDescriptor(desc)
		if err != nil {
			return nil, err
		}
		if len(want) == 0 {
			return nil, illegalf("table %q must keep at least one column family", cur.Name)
		}
		have := map[string]kvclient.Family{}
		for _, f := range cur.Families {
			have[f.Name] = f
		}
		var chs []kvclient.FamilyChange
		keep := map[string]bool{}
		for _, f := range want {
			keep[f.Name] = true
			switch old, ok := have[f.Name]; {
			case !ok:
				chs = append(chs, kvclient.CreateFamily(f))
			case old != f:
				chs = append(chs, kvclient.UpdateFamily(f))
			}
		}
		for _, f := range cur.Families {
			if !keep[f.Name] {
				chs = append(chs, kvclient.DropFamily(f.Name))
			}
		}
		return chs, nil
	})
}
