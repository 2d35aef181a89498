package kvclient

import (
	"context"

	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/proto/pdpb"
)

// User management through PD (internal/authz; docs/security.md). Errors
// keep their gRPC code (status.Code works on them) and read as PD's
// message.

// CreateUser creates a user; an empty password allows certificate login
// only.
func (c *Client) CreateUser(ctx context.Context, name, password string) error {
	return c.authCall(ctx, "create user "+name, func(ctx context.Context) error {
		_, err := c.pd.CreateUser(ctx, &pdpb.CreateUserRequest{Name: name, Password: password})
		return err
	})
}

// DropUser removes a user.
func (c *Client) DropUser(ctx context.Context, name string) error {
	return c.authCall(ctx, "drop user "+name, func(ctx context.Context) error {
		_, err := c.pd.DropUser(ctx, &pdpb.DropUserRequest{Name: name})
		return err
	})
}

// SetPassword replaces a user's password ("": none).
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.authCall(ctx, "set password of "+name, func(ctx context.Context) error {
		_, err := c.pd.SetPassword(ctx, &pdpb.SetPasswordRequest{Name: name, Password: password})
		return err
	})
}

// Grant gives a role a permission or a user a role (pdpb.GrantRequest).
func (c *Client) Grant(ctx context.Context, req *pdpb.GrantRequest) error {
	return c.authCall(ctx, "grant", func(ctx context.Context) error {
		_, err := c.pd.Grant(ctx, req)
		return err
	})
}

// Revoke undoes a Grant.
func (c *Client) Revoke(ctx context.Context, req *pdpb.RevokeRequest) error {
	return c.authCall(ctx, "revoke", func(ctx context.Context) error {
		_, err := c.pd.Revoke(ctx, req)
		return err
	})
}

func (c *Client) authCall(ctx context.Context, what string, f func(context.Context) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if err := f(ctx); err != nil {
		return &authError{msg: what + ": " + status.Convert(err).Message(), err: err}
	}
	return nil
}

type authError struct {
	msg string
	err error
}

func (e *authError) Error() string { return e.msg }
func (e *authError) Unwrap() error { return e.err }

// FetchAuth implements internal/authz.Fetcher for the gateways: PD's auth
// state if newer than known, else nil (only a node identity may fetch it).
func (c *Client) FetchAuth(ctx context.Context, known uint64) (*pdpb.AuthState, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	return c.pd.FetchAuth(ctx, known)
}
