// Package kvclient is the public Go client of Shale: the tablet location
// cache and routing, retries on typed errors (stale epoch, not leader,
// server busy), batching, scans stitched across tablets in key order,
// single-row transactions and the plain Get/Put/Delete/Scan API. Bulk SST
// building and the Thrift gateway server live below it. It imports only
// proto/ and its own code, never server internals.
package kvclient
