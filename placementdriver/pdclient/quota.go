package pdclient

import (
	"context"

	"github.com/shaledb/shale/proto/pdpb"
)

// Quotas (internal/quota).

// SetQuota calls PD.SetQuota.
func (c *Client) SetQuota(ctx context.Context, req *pdpb.SetQuotaRequest) (*pdpb.SetQuotaResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SetQuotaResponse, error) {
		req.Header = c.header()
		return cl.SetQuota(ctx, req)
	})
}

// RemoveQuota calls PD.RemoveQuota.
func (c *Client) RemoveQuota(ctx context.Context, req *pdpb.RemoveQuotaRequest) (*pdpb.RemoveQuotaResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.RemoveQuotaResponse, error) {
		req.Header = c.header()
		return cl.RemoveQuota(ctx, req)
	})
}

// ListQuotas calls PD.ListQuotas.
func (c *Client) ListQuotas(ctx context.Context, req *pdpb.ListQuotasRequest) (*pdpb.ListQuotasResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ListQuotasResponse, error) {
		req.Header = c.header()
		return cl.ListQuotas(ctx, req)
	})
}
