// Package quota limits how fast a table or a user may read and write, as
// HBase's set_quota does: requests per second and bytes per second, for
// reads and for writes, each set at runtime (`shale ctl quota`).
//
// The quotas live in PD's replicated metadata (one QuotaState row, like
// the users and grants). A quota is a cluster-wide rate; PD splits it into
// one share per store (Shares) and sends each store its shares in the
// store heartbeat answer. A tablet server keeps one token bucket
// (golang.org/x/time/rate) per configured (table or user, limit) and
// refuses a request over its share with QuotaExceeded, which carries how
// long to wait (Limiter.Admit). Memory is bounded by the quotas set, not
// by the tables or users that exist.
//
// This package holds the pure parts: validation and editing of quotas
// (limits.go), the split into shares (shares.go) and the store's buckets
// (limiter.go). docs/qos.md ("Quotas") is the user's guide.
package quota
