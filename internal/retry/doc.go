// Package retry is Shale's one retry policy for requests to tablets.
//
// Classify maps an error, by the typed detail Shale puts on the wire
// (internal/errs) or its gRPC code, to one Action: refresh the route, try
// another replica, back off and retry, ambiguous (the request was sent and
// no verdict came back: it may have applied), or fail. kvclient, the
// importer and the test clients act on it; none matches error text.
//
// Exponential is the one backoff with jitter, built on
// github.com/cenkalti/backoff/v5.
package retry
