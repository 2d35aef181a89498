package placementdriver

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// maxFamilyModifications bounds one ModifyColumnFamilies request.
const maxFamilyModifications = 256

// ModifyColumnFamilies adds, changes and deletes a table's column families
// online (Bigtable's ModifyColumnFamilies): one new schema version, pushed
// to the stores before the call returns (bounded, as SetSQLSchema), so
// that a deleted family's cells are hidden from every read that follows.
func (v *service) ModifyColumnFamilies(ctx context.Context, req *pdpb.ModifyColumnFamiliesRequest) (*pdpb.ModifyColumnFamiliesResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	t, err := c.modifyFamilies(ctx, req)
	if err != nil {
		return nil, err
	}
	c.waitCatalog(ctx, t.Version, c.pushSchema(ctx, t))
	return &pdpb.ModifyColumnFamiliesResponse{Table: t}, nil
}

func (c *cluster) modifyFamilies(ctx context.Context, req *pdpb.ModifyColumnFamiliesRequest) (*metapb.TableSchema, error) {
	if n := len(req.Modifications); n == 0 || n > maxFamilyModifications {
		return nil, status.Errorf(codes.InvalidArgument, "give 1 to %d column family modifications, got %d", maxFamilyModifications, n)
	}
	c.catalogMu.Lock()
	defer c.catalogMu.Unlock()
	old, err := c.table(req.Name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	version := c.catalogVersion + 1
	c.mu.Unlock()
	t := proto.Clone(old).(*metapb.TableSchema)
	for _, m := range req.Modifications {
		if err := applyFamilyModification(t, m); err != nil {
			return nil, err
		}
	}
	if len(t.Families) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "table %q would have no column family left (drop the table instead)", req.Name)
	}
	t.Version = version
	b, err := proto.Marshal(t)
	if err != nil {
		return nil, err
	}
	if err := c.meta.put(ctx, map[string][]byte{idRow(prefixTable, t.TableId): b, rowCatalogVersion: u64(version)}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tables[t.TableId] = t
	c.catalogVersion = max(c.catalogVersion, version)
	c.mu.Unlock()
	c.s.log.Info("column families changed", "table", t.Name, "families", len(t.Families), "version", version)
	return t, nil
}

// applyFamilyModification applies one modification to t (a copy).
func applyFamilyModification(t *metapb.TableSchema, m *pdpb.ColumnFamilyModification) error {
	name := m.GetName()
	i := slices.IndexFunc(t.Families, func(f *metapb.FamilySchema) bool { return f.Name == name })
	policy := func(f *metapb.FamilySchema) (*metapb.FamilySchema, error) {
		if f == nil {
			f = &metapb.FamilySchema{}
		}
		if f.MaxAgeMs < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "column family %q: max age must not be negative", name)
		}
		return &metapb.FamilySchema{Name: name, MaxVersions: f.MaxVersions, MaxAgeMs: f.MaxAgeMs}, nil
	}
	switch x := m.GetMod().(type) {
	case *pdpb.ColumnFamilyModification_Create:
		if !familyNameRE.MatchString(name) {
			return status.Errorf(codes.InvalidArgument, "column family name %q is invalid: 1-64 letters, digits, '_', '.', '-'", name)
		}
		if i >= 0 {
			return status.Errorf(codes.AlreadyExists, "table %q already has column family %q", t.Name, name)
		}
		if slices.Contains(t.DroppedFamilies, name) {
			return status.Errorf(codes.FailedPrecondition, "column family %q was deleted from table %q and its name cannot be used again there (docs/limits.md)", name, t.Name)
		}
		f, err := policy(x.Create)
		if err != nil {
			return err
		}
		t.Families = append(t.Families, f)
	case *pdpb.ColumnFamilyModification_Update:
		if i < 0 {
			return status.Errorf(codes.NotFound, "table %q has no column family %q", t.Name, name)
		}
		f, err := policy(x.Update)
		if err != nil {
			return err
		}
		t.Families[i] = f
	case *pdpb.ColumnFamilyModification_Drop:
		if !x.Drop {
			return status.Errorf(codes.InvalidArgument, "column family %q: drop must be true", name)
		}
		if i < 0 {
			return status.Errorf(codes.NotFound, "table %q has no column family %q", t.Name, name)
		}
		t.Families = slices.Delete(t.Families, i, i+1)
		t.DroppedFamilies = append(t.DroppedFamilies, name)
	default:
		return status.Errorf(codes.InvalidArgument, "column family %q: no modification given (create, update or drop)", name)
	}
	return nil
}
