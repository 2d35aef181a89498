package pdclient

import (
	"context"

	"github.com/shaledb/shale/proto/pdpb"
)

// Users, roles and grants (internal/authz).

// GetAuth calls PD.GetAuth.
func (c *Client) GetAuth(ctx context.Context, req *pdpb.GetAuthRequest) (*pdpb.GetAuthResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetAuthResponse, error) {
		req.Header = c.header()
		return cl.GetAuth(ctx, req)
	})
}

// CreateUser calls PD.CreateUser.
func (c *Client) CreateUser(ctx context.Context, req *pdpb.CreateUserRequest) (*pdpb.CreateUserResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.CreateUserResponse, error) {
		req.Header = c.header()
		return cl.CreateUser(ctx, req)
	})
}

// DropUser calls PD.DropUser.
func (c *Client) DropUser(ctx context.Context, req *pdpb.DropUserRequest) (*pdpb.DropUserResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.DropUserResponse, error) {
		req.Header = c.header()
		return cl.DropUser(ctx, req)
	})
}

// SetPassword calls PD.SetPassword.
func (c *Client) SetPassword(ctx context.Context, req *pdpb.SetPasswordRequest) (*pdpb.SetPasswordResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.SetPasswordResponse, error) {
		req.Header = c.header()
		return cl.SetPassword(ctx, req)
	})
}

// Grant calls PD.Grant.
func (c *Client) Grant(ctx context.Context, req *pdpb.GrantRequest) (*pdpb.GrantResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GrantResponse, error) {
		req.Header = c.header()
		return cl.Grant(ctx, req)
	})
}

// Revoke calls PD.Revoke.
func (c *Client) Revoke(ctx context.Context, req *pdpb.RevokeRequest) (*pdpb.RevokeResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.RevokeResponse, error) {
		req.Header = c.header()
		return cl.Revoke(ctx, req)
	})
}

// ListAuth calls PD.ListAuth.
func (c *Client) ListAuth(ctx context.Context, req *pdpb.ListAuthRequest) (*pdpb.ListAuthResponse, error) {
	return call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.ListAuthResponse, error) {
		req.Header = c.header()
		return cl.ListAuth(ctx, req)
	})
}

// FetchAuth implements authz.Fetcher: the auth state if PD has a version
// newer than known, else nil.
func (c *Client) FetchAuth(ctx context.Context, known uint64) (*pdpb.AuthState, error) {
	resp, err := c.GetAuth(ctx, &pdpb.GetAuthRequest{KnownVersion: known})
	if err != nil {
		return nil, err
	}
	return resp.State, nil
}
