package pdclient

import (
	"context"

	"github.com/shaledb/shale/proto/pdpb"
)

// Wrappers of the operator RPCs behind shale ctl's store, scheduler and
// operator verbs (same shape as methods.go).

// SetStoreLabels calls PD.SetStoreLabels.
func (c *Client) SetStoreLabels(ctx context.Context, req *pdpb.SetStoreLabelsRequest) (*pdpb.SetStoreLabelsResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SetStoreLabelsResponse, error) {
		req.Header = c.header()
		return cl.SetStoreLabels(ctx, req)
	})
}

// SetStoreLimit calls PD.SetStoreLimit.
func (c *Client) SetStoreLimit(ctx context.Context, req *pdpb.SetStoreLimitRequest) (*pdpb.SetStoreLimitResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SetStoreLimitResponse, error) {
		req.Header = c.header()
		return cl.SetStoreLimit(ctx, req)
	})
}

// ListSchedulers calls PD.ListSchedulers.
func (c *Client) ListSchedulers(ctx context.Context, req *pdpb.ListSchedulersRequest) (*pdpb.ListSchedulersResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ListSchedulersResponse, error) {
		req.Header = c.header()
		return cl.ListSchedulers(ctx, req)
	})
}

// PauseScheduler calls PD.PauseScheduler.
func (c *Client) PauseScheduler(ctx context.Context, req *pdpb.PauseSchedulerRequest) (*pdpb.PauseSchedulerResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.PauseSchedulerResponse, error) {
		req.Header = c.header()
		return cl.PauseScheduler(ctx, req)
	})
}

// RemoveOperator calls PD.RemoveOperator.
func (c *Client) RemoveOperator(ctx context.Context, req *pdpb.RemoveOperatorRequest) (*pdpb.RemoveOperatorResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.RemoveOperatorResponse, error) {
		req.Header = c.header()
		return cl.RemoveOperator(ctx, req)
	})
}
