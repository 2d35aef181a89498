package pdclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/pdpb"
)

// Client is safe for concurrent use.
type Client struct {
	mu        sync.Mutex
	endpoints []string
	conns     map[string]*grpc.ClientConn
	current   int
	clusterID atomic.Uint64
	tls       *security.Reloader
}

// Option configures a Client.
type Option func(*Client)

// WithTLS connects with mutual TLS, presenting r's certificate (nil:
// plaintext, for clusters run with --insecure).
func WithTLS(r *security.Reloader) Option { return func(c *Client) { c.tls = r } }

// New returns a client for the PD members at endpoints (client addresses).
// clusterID may be 0 (learn it from the first answer) or the ID the
// caller persisted earlier (then a PD of another cluster is refused).
func New(endpoints []string, clusterID uint64, opts ...Option) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("pdclient: no placement driver address given (--pd)")
	}
	c := &Client{endpoints: append([]string(nil), endpoints...), conns: map[string]*grpc.ClientConn{}}
	for _, o := range opts {
		o(c)
	}
	c.clusterID.Store(clusterID)
	return c, nil
}

// ClusterID returns the cluster ID learned so far (0 if none yet).
func (c *Client) ClusterID() uint64 { return c.clusterID.Load() }

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = map[string]*grpc.ClientConn{}
	return nil
}

func (c *Client) header() *pdpb.Header { return &pdpb.Header{ClusterId: c.clusterID.Load()} }

func (c *Client) conn(addr string) (pdpb.PDClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, ok := c.conns[addr]
	if !ok {
		var err error
		conn, err = grpc.NewClient(addr, grpcutil.DialOptions(c.tls)...)
		if err != nil {
			return nil, err
		}
		c.conns[addr] = conn
	}
	return pdpb.NewPDClient(conn), nil
}

func (c *Client) pick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpoints[c.current%len(c.endpoints)]
}

// redirect moves to addr (adding it if new) or, with no address, to the
// next endpoint.
func (c *Client) redirect(from, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endpoints[c.current%len(c.endpoints)] != from {
		return // someone else moved already
	}
	if addr != "" {
		for i, e := range c.endpoints {
			if e == addr {
				c.current = i
				return
			}
		}
		c.endpoints = append(c.endpoints, addr)
		c.current = len(c.endpoints) - 1
		return
	}
	c.current = (c.current + 1) % len(c.endpoints)
}

// call runs f against the leader, retrying redirects and unavailability
// until ctx ends. Without a deadline on ctx it gives up after 30s.
func call[T any](ctx context.Context, c *Client, f func(context.Context, pdpb.PDClient) (T, error)) (T, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	bo := retry.NewExponential(20*time.Millisecond, 500*time.Millisecond)
	var zero T
	for {
		addr := c.pick()
		cl, err := c.conn(addr)
		if err != nil {
			return zero, err
		}
		// Longer than any server-side wait (CreateTable waits up to 10s for
		// stores to learn the new schema), so a slow success is not retried.
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := f(actx, cl)
		cancel()
		if err == nil {
			return resp, nil
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.Unavailable:
		case codes.DeadlineExceeded:
			if ctx.Err() != nil {
				return zero, &DeadlineError{Addr: addr, Err: err}
			}
		default:
			return zero, err
		}
		hint := ""
		for _, d := range st.Details() {
			if nl, ok := d.(*pdpb.NotPDLeader); ok {
				hint = nl.LeaderClientAddr
			}
		}
		c.redirect(addr, hint)
		if hint != "" && hint != addr {
			continue
		}
		if bo.Wait(ctx, 0) != nil {
			if st.Code() == codes.DeadlineExceeded {
				// The member had the request (the server's copy of the
				// deadline may fire just before the caller's).
				return zero, &DeadlineError{Addr: addr, Err: err}
			}
			return zero, fmt.Errorf("pdclient: no placement driver leader reachable at %v: %w%s", c.endpoints, err, c.tlsHint(err))
		}
	}
}

// tlsHint explains the errors of a client and a server that disagree
// about TLS, which gRPC reports in transport terms.
func (c *Client) tlsHint(err error) string {
	msg := err.Error()
	switch {
	case c.tls == nil && (strings.Contains(msg, "server preface") || strings.Contains(msg, "connection reset")):
		return " (if the cluster runs with TLS, connect with --tls-ca, --tls-cert and --tls-key: docs/security.md)"
	case c.tls != nil && strings.Contains(msg, "first record does not look like a TLS handshake"):
		return " (the cluster runs without TLS (--insecure): connect without --tls-* flags)"
	case c.tls != nil && strings.Contains(msg, "certificate"):
		return " (TLS: the certificates of this client and the cluster do not match: docs/security.md)"
	}
	return ""
}

// DeadlineError is returned when the caller's deadline passed while a
// request was with a placement driver member: the member may be slow or
// waiting on something, which "no leader reachable" would misstate.
type DeadlineError struct {
	Addr string
	Err  error
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("pdclient: no answer from the placement driver at %s before the deadline: %v", e.Addr, e.Err)
}

func (e *DeadlineError) Unwrap() error { return e.Err }

// learn records the cluster ID from a response.
func (c *Client) learn(id uint64) error {
	if id == 0 {
		return nil
	}
	if old := c.clusterID.Load(); old != 0 && old != id {
		return fmt.Errorf("pdclient: placement driver belongs to cluster %d, expected cluster %d", id, old)
	}
	c.clusterID.Store(id)
	return nil
}

// GetMembers returns the PD members and the leader.
func (c *Client) GetMembers(ctx context.Context) (*pdpb.GetMembersResponse, error) {
	resp, err := call(ctx, c, func(ctx context.Context, cl pdpb.PDClient) (*pdpb.GetMembersResponse, error) {
		r, err := cl.GetMembers(ctx, &pdpb.GetMembersRequest{})
		if err == nil && r.Leader == nil {
			return nil, status.Error(codes.Unavailable, "no pd leader elected yet")
		}
		return r, err
	})
	if err != nil {
		return nil, err
	}
	return resp, c.learn(resp.ClusterId)
}
