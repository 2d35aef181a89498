package pdclient

import (
	"context"

	"github.com/shaledb/shale/proto/pdpb"
)

// GetGCSafePoint calls PD.GetGCSafePoint.
func (c *Client) GetGCSafePoint(ctx context.Context, req *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetGCSafePointResponse, error) {
		req.Header = c.header()
		return cl.GetGCSafePoint(ctx, req)
	})
}

// UpdateServiceSafePoint calls PD.UpdateServiceSafePoint.
func (c *Client) UpdateServiceSafePoint(ctx context.Context, req *pdpb.UpdateServiceSafePointRequest) (*pdpb.UpdateServiceSafePointResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.UpdateServiceSafePointResponse, error) {
		req.Header = c.header()
		return cl.UpdateServiceSafePoint(ctx, req)
	})
}
