package authz

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Mode says whether a server authorizes at all. It must be chosen: the
// zero value is refused by Validate, so running without authorization is
// never an accident.
type Mode int

const (
	// ModeUnset is refused.
	ModeUnset Mode = iota
	// Insecure: the server runs without TLS (--insecure), so there are no
	// identities and everything is allowed.
	Insecure
	// Secure: every call is authenticated by its TLS certificate (or a
	// password on the Thrift and SQL endpoints) and checked.
	Secure
)

// PolicySource gives the current policy (a *Cache).
type PolicySource interface {
	Policy() (*Policy, error)
}

// Options configure an Authorizer.
type Options struct {
	Mode Mode
	// Policies is required in Secure mode.
	Policies PolicySource
	// Resolver maps table names and tablets to table IDs for requests that
	// do not carry a table ID (UploadSST on a store, SetSQLSchema on PD).
	// Without one, such requests are refused to everyone but nodes and
	// cluster admins.
	Resolver Resolver
	Logger   *slog.Logger
}

// EnsureDefaults fills zero fields.
func (o Options) EnsureDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate refuses an unset mode and Secure without policies.
func (o Options) Validate() error {
	switch o.Mode {
	case Insecure:
		return nil
	case Secure:
		if o.Policies == nil {
			return errors.New("authz: secure mode needs the users and grants (a Cache)")
		}
		return nil
	default:
		return errors.New("authz: choose Secure or Insecure explicitly")
	}
}

// Authorizer enforces the classification table on one server.
type Authorizer struct {
	o Options
}

// New returns an Authorizer.
func New(o Options) (*Authorizer, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Authorizer{o: o}, nil
}

// Secure reports whether the authorizer checks anything.
func (a *Authorizer) Secure() bool { return a.o.Mode == Secure }

// Check decides whether id may perform an operation of class c on
// targets: nil, or a PermissionDenied (or, without a fresh policy,
// Unavailable) error. Nodes, Public and Authenticated never need the
// policy, so internal traffic goes on while PD is unreachable.
func (a *Authorizer) Check(id Identity, c Class, targets []Target) error {
	if a.o.Mode == Insecure {
		return nil
	}
	if c == Unclassified {
		return denied(id, "call an operation that has no classification (internal/authz/table.go)")
	}
	if id.Node || c == Public || c == Authenticated {
		return nil
	}
	p, err := a.o.Policies.Policy()
	if err != nil {
		return err
	}
	return p.Check(id, c, targets)
}

// rule looks a gRPC method up (Unclassified if missing).
func rule(method string) Rule { return GRPC[method] }

// authorize decides a request of rule r for the identity of ctx.
func (a *Authorizer) authorize(ctx context.Context, method string, r Rule, req any) error {
	id, err := FromGRPC(ctx)
	if err != nil {
		return err
	}
	var targets []Target
	if r.Class.needsTarget() && !id.Node {
		if r.Targets == nil {
			return denied(id, "call %s, whose table the classification does not name", method)
		}
		if targets, err = r.Targets(req, a.o.Resolver); err != nil {
			if p, perr := a.o.Policies.Policy(); perr == nil && p.permsOf(id.User).cluster {
				return nil // a cluster admin needs no table
			}
			return err
		}
	}
	if err := a.Check(id, r.Class, targets); err != nil {
		if status.Code(err) == codes.PermissionDenied {
			a.o.Logger.Debug("authz: refused", "method", method, "identity", id.String(), "err", err)
		}
		return err
	}
	return nil
}

// UnaryInterceptor checks every unary call before its handler runs.
func (a *Authorizer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		r := rule(info.FullMethod)
		if a.o.Mode == Secure && r.Class != Public {
			if err := a.authorize(ctx, info.FullMethod, r, req); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor checks every stream: at its start, or, for the
// per-table classes, when the handler receives the first message (which
// names the table or tablet) and before the handler sees it.
func (a *Authorizer) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		r := rule(info.FullMethod)
		if a.o.Mode != Secure || r.Class == Public {
			return handler(srv, ss)
		}
		if _, err := FromGRPC(ss.Context()); err != nil {
			return err
		}
		if !r.Class.needsTarget() {
			if err := a.authorize(ss.Context(), info.FullMethod, r, nil); err != nil {
				return err
			}
			return handler(srv, ss)
		}
		return handler(srv, &checkedStream{ServerStream: ss, a: a, method: info.FullMethod, r: r})
	}
}

// checkedStream authorizes the first message received.
type checkedStream struct {
	grpc.ServerStream
	a      *Authorizer
	method string
	r      Rule
	once   sync.Once
	err    error
}

func (s *checkedStream) RecvMsg(m any) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		if err := s.ServerStream.RecvMsg(m); err != nil {
			s.err = err
			return err
		}
		s.err = s.a.authorize(s.Context(), s.method, s.r, m)
		return s.err
	}
	if s.err != nil {
		return s.err
	}
	return s.ServerStream.RecvMsg(m)
}

// ServerOptions are the interceptors to append where a gRPC server is
// constructed.
func (a *Authorizer) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(a.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(a.StreamInterceptor()),
	}
}
