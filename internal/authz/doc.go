// Package authz is the one place that decides who may call what.
//
// Every gRPC method of every Shale service, every HTTP route, every Thrift
// gateway method and every SQL statement kind is classified in table.go
// (public, authenticated, data read, data write, table admin, cluster
// admin, internal); TestEveryRPCIsClassified walks the gRPC service
// descriptors and fails on a method missing from the table, and an
// unclassified method or route is refused at run time.
//
// Identities come from the verified TLS peer certificate: a node
// certificate (security.IsNodeCert) is the node role, any other
// certificate's common name is the user. The Thrift gateway and the SQL
// endpoint may instead authenticate a user by password (Authenticate),
// checked against the argon2id hashes of PD's auth state.
//
// Users, roles and grants live in PD's replicated metadata as one
// versioned AuthState (proto/pdpb). Stores, gateways and PD itself cache
// it in a Cache that polls PD with the version it has; a revoke is
// enforced everywhere within RevocationBound, and a cache that cannot
// refresh for longer than that refuses user requests instead of serving
// stale grants.
//
// An Authorizer enforces the table: gRPC unary and stream interceptors
// (ServerOptions, appended where a server is constructed), an HTTP
// middleware, and CheckThrift/CheckSQL hooks for the Thrift processor and
// the SQL endpoint. Refusals are codes.Unauthenticated (no or unusable
// identity) or codes.PermissionDenied (identity known, grant missing),
// returned before the handler runs, so nothing is applied.
//
// Authorization is off only in Insecure mode, which a process selects
// explicitly when it runs without TLS (--insecure); an Authorizer in
// Secure mode without an auth source does not start.
package authz
