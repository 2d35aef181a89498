package thriftgw

import "github.com/shaledb/shale/internal/authz"

// SetIdentityForTest makes every new connection act as id (the tests'
// connections have no TLS).
func SetIdentityForTest(s *Server, id authz.Identity) {
	s.testIdentity = func() (authz.Identity, error) { return id, nil }
}
