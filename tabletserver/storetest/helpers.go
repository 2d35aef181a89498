package storetest

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// TestTable is the schema most tests use: table 7, family "f" keeping 3
// versions.
var TestTable = &metapb.TableSchema{TableId: 7, Name: "t", Version: 1, Families: []*metapb.FamilySchema{{Name: "f", MaxVersions: 3}}}

// TableSpan is the whole key range of TestTable.
func TableSpan() (start, end []byte) {
	p := keys.TablePrefix(TestTable.TableId)
	return p, keys.PrefixEnd(p)
}

// Put writes value into row's f:q cell of TestTable through the leader.
func (c *Cluster) Put(ctx context.Context, tabletID uint64, row, value string) error {
	return c.Call(ctx, tabletID, func(cl kvpb.TabletClient) error {
		_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{
			Header: &kvpb.RequestHeader{TabletId: tabletID}, TableId: TestTable.TableId, RowKey: []byte(row),
			Mutations: []*kvpb.Mutation{SetCell("f", "q", value)},
		})
		return err
	})
}

// Read returns row's newest f:q value ("" and false when absent).
func (c *Cluster) Read(ctx context.Context, tabletID uint64, row string) (string, bool, error) {
	var val string
	var found bool
	err := c.Call(ctx, tabletID, func(cl kvpb.TabletClient) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tabletID}, TableId: TestTable.TableId, RowKey: []byte(row)})
		if err != nil {
			return err
		}
		val, found = "", false
		if resp.Row != nil {
			for _, c := range resp.Row.Cells {
				if c.Family == "f" && string(c.Qualifier) == "q" {
					val, found = string(c.Value), true
				}
			}
		}
		return nil
	})
	return val, found, err
}

// SetCell builds a set-cell mutation.
func SetCell(family, qualifier, value string) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: family, Qualifier: []byte(qualifier), Value: []byte(value)}}}
}

// notApplied reports a tablet's verdict that nothing was applied
// (internal/retry). TableNotFound is final here: a storetest cluster has
// no placement driver for a store to lag behind.
func notApplied(err error) bool {
	_, noTable := errs.As[*errorpb.TableNotFound](err)
	return retry.Classify(err).NotApplied() && !noTable
}

func isUnavailable(err error) bool {
	c := status.Code(err)
	return c == codes.Unavailable
}

// MustRead fails the test when the row's value differs from want.
func (c *Cluster) MustRead(ctx context.Context, tabletID uint64, row, want string) error {
	got, ok, err := c.Read(ctx, tabletID, row)
	if err != nil {
		return err
	}
	if !ok || got != want {
		return fmt.Errorf("row %q: got %q (found=%v), want %q", row, got, ok, want)
	}
	return nil
}
