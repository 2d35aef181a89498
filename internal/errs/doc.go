// Package errs turns Shale's routable errors (proto/errorpb) into gRPC
// statuses and back. A server returns NotLeader(...) and friends; a client
// calls As/Detail to get the typed detail; internal/retry decides how to
// retry. Nothing
// matches on message text.
//
// Each error also has a stable code string (Code) for logs, metrics and docs.
package errs
