package thriftgw

import "github.com/shaledb/shale/internal/authz"

// SetIdentityForTest makes every new connection act as id (the tests'
// connections have no TLS).
func SetIdentityForTest(s *Server, id authz.Identity) {
	s.testIdentity = func() (authz.Identity, error) { return id, nil }
}

// WithSendBufferForTest returns o with the accepted connections' socket
// send buffer set to n bytes.
func WithSendBufferForTest(o Options, n int) Options {
	o.sendBuffer = n
	return o
}
