package pdclient

import (
	"context"

	"github.com/shaledb/shale/proto/pdpb"
)

// ModifyColumnFamilies adds, changes and deletes a table's column families.
func (c *Client) ModifyColumnFamilies(ctx context.Context, req *pdpb.ModifyColumnFamiliesRequest) (*pdpb.ModifyColumnFamiliesResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ModifyColumnFamiliesResponse, error) {
		req.Header = c.header()
		return cl.ModifyColumnFamilies(ctx, req)
	})
}
