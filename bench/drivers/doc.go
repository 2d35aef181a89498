// Package drivers implements the YCSB DB bindings of `shale bench ycsb`:
// Shale through its Go client (kvclient), Shale through the HBase
// Thrift2 gateway, and etcd (go.etcd.io/etcd/client/v3) as the baseline.
// Each maps a YCSB record the same way a user of that store would.
//
// # Shale (kvclient) and Thrift
//
// One table (property table, default usertable) with one column family
// (columnfamily, default "f", keeping 1 version so updates do not grow the
// table); each YCSB field is a column (qualifier field0..field9) and the
// YCSB key is the row key. The table is created when missing, pre-split
// into shale.tablets tablets (default 8) at evenly spaced "user<NN>"
// prefixes: YCSB's hashed keys are "user" followed by a decimal number
// spread evenly over [0, 2^63), so their first two digits are close to
// uniform in 10..92 and the tablets get similar shares of the load. Reads
// and scans ask for the family (or the one column read), updates and
// inserts are one MutateRow (Thrift: put) of the fields written.
//
// Read-modify-write is a single-row transaction: read the row, then
// CheckAndMutateRow (Thrift: checkAndPut) writing the new values only if
// the first written column still holds the value read (or still does not
// exist); if another writer got there first, read again and retry.
//
// # etcd
//
// One key per field: "<table>/<key>/<field>", so a field update is one
// Put, an insert a Txn of all the record's Puts, a read a range read of the
// record's prefix (linearizable, etcd's default), and a scan of n records
// range reads from the start key with a limit of n*fieldcount keys, over
// windows of the key space rather than to the table's end, because etcd
// walks its whole index range before applying a limit (see etcdDB.Scan;
// etcd.scanwindow=false reads to the table's end).
// Read-modify-write reads the record's prefix and writes in a Txn whose
// compares check that no key of the record changed since that read's
// revision (ModRevision < rev+1), retrying on conflict.
package drivers
