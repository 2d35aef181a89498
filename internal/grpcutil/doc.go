// Package grpcutil holds the gRPC options every Shale server and client is
// built with: message limits matched on both ends (internal/limits),
// keepalives that detect a vanished peer, and a reconnect backoff that
// retries a returning peer within about a second. One place, so that a
// server and its clients cannot drift apart, and so that transport security
// is built once: ServerOptions and DialOptions take the process's
// security.Reloader (nil: plaintext, for --insecure) and bound streams per
// connection (docs/security.md).
package grpcutil
