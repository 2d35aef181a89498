// Package kvclient is the public Go client of Shale: the tablet location
// cache and routing, retries on typed errors (stale epoch, not leader,
// server busy), batching, scans stitched across tablets in key order,
// single-row transactions and the plain Get/Put/Delete/Scan API. Bulk SST
// building and the Thrift gateway server live below it. It imports only
// proto/, the shared internal/ plumbing (key codec, error codes) and the PD
// client, never server internals.
//
// # Usage
//
//	c, err := kvclient.Open(ctx, kvclient.Options{PD: []string{"127.0.0.1:2379"}})
//	defer c.Close()
//	_, err = c.CreateTable(ctx, "users", []kvclient.Family{{Name: "f", MaxVersions: 3}}, []byte("m"))
//	t, err := c.Table(ctx, "users")
//	ts, err := t.MutateRow(ctx, []byte("alice"), kvclient.SetCell("f", []byte("name"), []byte("Alice")))
//	row, err := t.Get(ctx, []byte("alice"), kvclient.Families("f"))
//	sc := t.Scan(ctx, kvclient.ScanOptions{Start: []byte("a"), End: []byte("n")})
//	for sc.Next() { use(sc.Row()) }
//	err = sc.Err(); sc.Close()
//
// The raw key/value API (RawGet, RawPut, RawDelete, RawScan) stores each key
// as a row of the built-in table "kv" (ID 1), family "v", empty qualifier.
//
// # Routing
//
// Every request goes to the leader of the tablet holding the row's encoded
// key (internal/keys.RowKey). The location cache keeps tablet descriptors
// sorted by start key, each with the store believed to lead it. It is
// filled from the placement driver (GetTablet on a miss, ScanTablets,
// paged, before a scan) and corrected from the errors tablet servers
// return, without asking the PD where the error says enough:
//
//   - NotLeader with a leader hint: the leader is updated in place.
//   - NotLeader without a hint (election running): the descriptor's other
//     voters are tried, then the entry is dropped and refetched.
//   - EpochMismatch: the current descriptors carried by the error replace
//     the entry and every cached entry they overlap.
//   - KeyNotInTablet, TabletNotFound: the entry is dropped and refetched.
//
// A descriptor never replaces an overlapping cached one with a newer epoch
// version, so a PD lagging behind a split cannot undo what a tablet server
// already told the client. Store addresses come from PD GetStore, are
// cached, and are forgotten after a connection failure. There is one
// gRPC connection per store address. The PD client follows PD leader
// changes on its own.
//
// # Retries and ambiguity
//
// What follows an error is internal/retry's classification, shared with
// the importer (which routes and connects through Client.RouteKey,
// TabletConn and Reroute). An operation is retried, with exponential
// backoff and ±50% jitter (10ms up to 1s, internal/retry) until its
// context's deadline (Options.RequestTimeout, default 10s, when the
// context has none), only after errors that guarantee nothing was
// applied: NotLeader, TabletNotFound, KeyNotInTablet, EpochMismatch,
// ServerBusy (waiting at least its retry_after), QuotaExceeded (waiting its
// retry_after plus jitter; ErrQuotaExceeded at once when the deadline cannot
// cover the wait), a store that could not be
// reached before the request was sent (writes are only sent over a
// connected channel), and TableNotFound from a store that has not yet
// learned a table the PD knows. Reads additionally retry connection
// failures (Unavailable without a routing detail).
//
// Every write carries a RequestID{client_id, seq}: client_id is a random
// 128-bit ID drawn by Open (or Options.ClientID, which is then single-use),
// seq grows per logical write (one per BatchMutate call, whose entries are
// numbered by input position) and is reused by that write's retries.
// Tablets remember, per row, the response to each request ID (and batch
// entry) for ten minutes of their own time and answer a repeat with it
// without applying anything, so a write is applied at most once however
// often it is sent.
//
// That makes retrying safe even when a write's outcome is unknown
// (Unavailable without a routing detail after it was sent, or Unknown -
// "result unknown" - from a tablet that timed out or lost its leadership):
// such writes are resent, with the same request ID, until they succeed,
// the caller's deadline ends, or five minutes have passed since the first
// attempt (later the tablets may have forgotten the ID). Only then is the
// error ambiguous, errors.Is(err, ErrAmbiguous): the write may or may not
// have applied. If a deadline ends the retries after only "nothing
// applied" failures, the error wraps context.DeadlineExceeded and is not
// ambiguous.
//
// # Errors
//
// ErrTableNotFound, ErrTableExists, ErrInvalidArgument (wrapping the
// server's message), ErrAmbiguous and ErrClosed are matched with errors.Is;
// the underlying gRPC status stays reachable through errors.As/Unwrap.
//
// # Scans
//
// A Scanner streams one tablet at a time and fetches one page ahead of the
// caller in a background goroutine. When a tablet's stream ends with
// tablet_exhausted, the scan continues from that tablet's end key (start
// key when reverse), re-resolving the location, so tablets that split or
// merge during the scan are followed. On an error mid-stream the scan
// resumes right after the last row returned (row+"\x00" forward; end=row
// reverse), so rows come exactly once and in order; the client also drops
// any row that is not strictly past the last one returned.
//
// # Reads at a timestamp
//
// AsOf(ts) reads exactly the versions with timestamp <= ts on every tablet
// a Get, BatchGet or Scan touches: one consistent snapshot across tablets
// while writes go on. Client.Now returns a timestamp that includes every
// write this client was told of; StaleTimestamp(d) is d earlier.
// FollowerRead lets any replica (one at random) serve such a read:
// tablets keep a closed timestamp a few seconds behind their leader's
// clock, and a replica serves reads at or below it at once (a fresher ts
// costs one raft round). A ts below a tablet's history floor (after a
// delete, an ingest or version GC) fails with ErrReadTooOld;
// ReadTooOldFloor names the earliest timestamp it serves.
//
// # Batches
//
// BatchGet and BatchMutate group rows by tablet and run the groups in
// parallel; results come back in input order. BatchMutate sends one
// BatchMutate RPC per tablet and returns one error per entry; a row named
// more than once gets every entry applied, in input order. Rows refused
// with a routing error are re-routed and retried (with the call's one
// request ID, so regrouped rows still apply once); rows of an RPC whose
// outcome stays unknown until the deadline are ErrAmbiguous.
package kvclient
