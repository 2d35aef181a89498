// Package thriftgw serves Shale tables over Apache Thrift with the HBase
// Thrift2 protocol: the service THBaseService of HBase's thrift2
// hbase.thrift, declared (its core) in proto/hbase.thrift with HBase's
// exact service, method, struct and field names and field IDs. An existing
// HBase Thrift2 client works against `shale thrift` by changing the address
// it connects to.
//
// # Transport
//
// The default is what HBase's Thrift2 server serves by default: the binary
// protocol over a buffered (unframed) transport. Options.Framed and
// Options.Compact select the framed transport and the compact protocol
// (`shale thrift --framed --compact`); client and server must agree.
// Options.MaxMessageSize bounds every message, frame, string and container a
// client can declare, so a malformed or hostile request is rejected without
// allocating what it claims; such a request closes only its own
// connection.
//
// # Mapping
//
//   - Tables: an HBase table name "t" or "default:t" is the Shale table "t".
//     Only the default namespace exists; other namespaces answer TIOError.
//   - Column families are Shale column families, qualifiers and values are
//     bytes unchanged. A family's maxVersions and timeToLive (seconds) map
//     to Family.MaxVersions and Family.MaxAge.
//   - Timestamps: HBase uses milliseconds since the epoch, Shale
//     microseconds. Timestamps on the wire are milliseconds: a cell read
//     through the gateway reports its Shale timestamp divided by 1000
//     (truncated), an explicit timestamp written through the gateway is
//     stored as ms*1000, and a time range [min, max) in ms selects Shale
//     timestamps [min*1000, max*1000) (a max beyond what fits after the
//     conversion, such as Long.MAX_VALUE, means unbounded). An exact
//     timestamp T selects [T*1000, (T+1)*1000), so it matches cells written
//     by the gateway at T and server-assigned timestamps within that
//     millisecond. Puts without a timestamp use the server's commit
//     timestamp, as in HBase.
//   - Results: cells come back in Shale's storage order (family,
//     qualifier, newest first), as HBase orders them; TColumnValue.type is
//     4 (Put).
//   - checkAndPut/checkAndDelete/checkAndMutate follow HBase's convention
//     that the expected value is the left operand ("GREATER" holds when the
//     expected value is greater than the stored one); an absent or empty
//     expected value checks that the column does not exist (NOT_EQUAL: that
//     it exists).
//   - Deletes: a family-only column deletes the family; family+qualifier
//     with DELETE_COLUMNS (the default) deletes all versions (those <= the
//     timestamp when one is given); DELETE_COLUMN deletes the version at the
//     timestamp, or without one the newest version (read then delete, not
//     atomic with concurrent writers). A row delete or family delete with a
//     timestamp and DELETE_FAMILY_VERSION are not supported (TIOError).
//   - Scans: startRow inclusive, stopRow exclusive, reversed scans
//     (startRow is then the upper, inclusive bound), columns, maxVersions,
//     timeRange, limit and caching (page size) are honoured. Scanners live
//     in the gateway and belong to the connection that opened them: at
//     most Options.MaxScanners (default 1000) are open at once per
//     connection (openScanner past that answers TIOError), a scanner idle
//     for Options.ScannerIdleTimeout (default 60s) is closed, and a
//     connection's scanners are closed when it closes. Scanner ids are
//     unique across the gateway, but only the owning connection can use or
//     close one: an unknown, expired or foreign id answers
//     TIllegalArgument, so a stray id never disturbs another client.
//   - Region locations are real: a region is a tablet (regionId = tablet
//     ID), its start and end keys are the tablet's boundaries restricted to
//     the table (empty at the table's ends), and its server is the host and
//     port of the tablet's leader, from the client's routing cache
//     (getRegionLocation with reload, and getAllRegionLocations, ask the
//     placement driver). While no leader is known the gateway's own address
//     stands in. The locations are informative: every request still goes
//     through the gateway.
//   - Table admin: createTable, deleteTable (no need to disable first),
//     truncateTable (drop and re-create, not atomic), tableExists,
//     getTableDescriptor(s), getTableNamesByNamespace/ByPattern,
//     getTableDescriptorsByNamespace/ByPattern. enableTable and
//     isTableEnabled/isTableAvailable treat every existing table as enabled;
//     disableTable is not supported.
//
// Not supported (they answer TIOError with a message saying so): filters
// (filterString/filterBytes), per-family time ranges in scans, visibility
// labels and cell tags (ignored on write), durability (ignored: every write
// is replicated and durable), disabling tables, namespaces other than
// default. Methods of HBase's THBaseService not declared in
// proto/hbase.thrift (namespace administration, column family changes,
// modifyTable, ...) answer a Thrift TApplicationException UNKNOWN_METHOD and
// the connection stays usable.
//
// Error mapping: every failure answers the method's declared exception,
// TIOError (with TIllegalArgument for bad scanner ids), carrying Shale's
// message; the connection is never dropped for an application error.
package thriftgw
