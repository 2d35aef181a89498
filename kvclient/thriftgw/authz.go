package thriftgw

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"github.com/apache/thrift/lib/go/thrift"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/kvclient"
)

// Authorization (internal/authz): the processor middleware checks each
// call's class (authz.Thrift) for the connection's identity before the
// arguments are decoded; calls on a table are checked again, on that
// table, where every one of them resolves its table (handler.table). The
// identity is the connection's verified client certificate: the HBase
// Thrift2 protocol has no login, so there is no password path here.

// callKey carries the call's identity and method from the middleware to
// handler.table.
type callKey struct{}

type call struct {
	id     authz.Identity
	method string
}

// connIdentity is one connection's identity, taken from its TLS state on
// its first call (the handshake is done by then).
type connIdentity struct {
	trans thrift.TTransport
	// fixed, when set (export_test.go), replaces the TLS identity.
	fixed func() (authz.Identity, error)
	once  sync.Once
	id    authz.Identity
	err   error
}

func (c *connIdentity) get() (authz.Identity, error) {
	c.once.Do(func() {
		if c.fixed != nil { // tests
			c.id, c.err = c.fixed()
			return
		}
		var cs *tls.ConnectionState
		if tc, ok := netConn(c.trans).(*tls.Conn); ok {
			st := tc.ConnectionState()
			cs = &st
		}
		c.id, c.err = authz.FromTLS(cs)
	})
	return c.id, c.err
}

func netConn(t thrift.TTransport) net.Conn {
	if tc, ok := t.(*trackedConn); ok {
		if tc.tls != nil {
			// The gateway's listener does TLS itself (connTracker).
			return tc.tls
		}
		t = tc.TTransport
	}
	if c, ok := t.(interface{ Conn() net.Conn }); ok {
		return c.Conn()
	}
	return nil
}

// authzMiddleware refuses a call its caller may not make, reading (and
// dropping) its arguments so the connection stays in step.
func (h *connHandler) authzMiddleware(name string, next thrift.TProcessorFunction) thrift.TProcessorFunction {
	a := h.s.opts.Authz
	if a == nil || !a.Secure() {
		return next
	}
	class := authz.Thrift[name]
	return thrift.WrappedTProcessorFunction{Wrapped: func(ctx context.Context, seqID int32, in, out thrift.TProtocol) (bool, thrift.TException) {
		if class == authz.Public {
			return next.Process(ctx, seqID, in, out)
		}
		id, err := h.ident.get()
		if err == nil && !class.PerTable() {
			err = a.CheckThrift(id, name)
		}
		if err != nil {
			return refuse(ctx, name, seqID, in, out, err)
		}
		// The tablet servers charge the call to the caller's user quotas.
		ctx = authz.OnBehalfOf(ctx, id.User)
		return next.Process(context.WithValue(ctx, callKey{}, call{id: id, method: name}), seqID, in, out)
	}}
}

// refuse answers a call with a TApplicationException naming the refusal.
func refuse(ctx context.Context, name string, seqID int32, in, out thrift.TProtocol, cause error) (bool, thrift.TException) {
	if err := in.Skip(ctx, thrift.STRUCT); err != nil {
		return false, thrift.WrapTException(err)
	}
	if err := in.ReadMessageEnd(ctx); err != nil {
		return false, thrift.WrapTException(err)
	}
	st := status.Convert(cause)
	x := thrift.NewTApplicationException(thrift.UNKNOWN_APPLICATION_EXCEPTION, fmt.Sprintf("%s: %s", st.Code(), st.Message()))
	if err := out.WriteMessageBegin(ctx, name, thrift.EXCEPTION, seqID); err != nil {
		return false, thrift.WrapTException(err)
	}
	if err := x.Write(ctx, out); err != nil {
		return false, thrift.WrapTException(err)
	}
	if err := out.WriteMessageEnd(ctx); err != nil {
		return false, thrift.WrapTException(err)
	}
	if err := out.Flush(ctx); err != nil {
		return false, thrift.WrapTException(err)
	}
	return true, nil
}

// authorizeTable checks the running call on table t (its per-table class;
// the other classes were checked by the middleware).
func (h *handler) authorizeTable(ctx context.Context, t *kvclient.Table) error {
	a := h.s.opts.Authz
	if a == nil || !a.Secure() {
		return nil
	}
	c, ok := ctx.Value(callKey{}).(call)
	if !ok {
		// Fail closed: a call that did not pass the middleware.
		return fmt.Errorf("permission denied: call not authorized by the gateway")
	}
	if err := a.CheckThrift(c.id, c.method, t.Info().ID); err != nil {
		return fmt.Errorf("permission denied: %s", status.Convert(err).Message())
	}
	return nil
}
