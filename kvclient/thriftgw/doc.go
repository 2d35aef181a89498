// Package thriftgw serves Shale tables over Apache Thrift with the HBase
// Thrift2 protocol: the service THBaseService of HBase's thrift2
// hbase.thrift, declared (its core) in proto/hbase.thrift with HBase's
// exact service, method, struct and field names and field IDs. An existing
// HBase Thrift2 client works against `shale thrift` by changing the address
// it connects to.
//
// With Options.Thrift1Addr (`shale thrift --thrift1-addr`; the playground's
// `thrift1:` line) it also serves HBase's Thrift1 service Hbase
// (proto/hbase1.thrift, generated into proto/hbase1), which happybase and
// older clients speak, on its own port: HBase runs its thrift and thrift2
// servers apart, and a client library is written for one of them. Both
// listeners share one handler, scanner registry, transport and protocol
// choice, TLS, authorization (internal/authz classifies the methods of
// both services by wire name) and limits (MaxConnections counts each
// listener's connections apart).
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
//   - Tables: an HBase table name "t" or "default:t" is the Shale table
//     "t", "ns:t" the Shale table "ns.t" (see Namespaces).
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
//     timeRange, filterString, limit and caching (page size) are honoured. Scanners live
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
// # Filters
//
// TGet.filterString, TScan.filterString (Thrift2) and the Thrift1 TScan's
// filterString take HBase's filter language, parsed and evaluated by
// package filterlang (its doc lists the filters, the grammar and how
// combinations and stateful filters behave). What the tablet servers can
// do is pushed down: the row range of PrefixFilter, InclusiveStopFilter and
// binary RowFilters narrows the scan, a SingleColumnValueFilter with a
// binary comparator becomes a kvclient.RowFilter, FamilyFilter(=) a family
// selection; the gateway evaluates the whole filter on the rows that come
// back (so a push-down saves work, never changes a result). A scan's limit
// then counts the rows the filter returns. A filter that keeps few rows of
// many makes getScannerRows wait while the gateway reads past the others
// (HBase's region servers do the same, with heartbeats). An unknown filter
// or a malformed string is refused before anything is read: TIOError whose
// message starts "IllegalArgumentException: bad filter string:" and names
// the filter or the offset. (TIllegalArgument is not declared by get,
// openScanner, getScannerResults or Thrift1's scannerOpen*; an undeclared
// exception would reach HBase's generated clients as "unknown result".)
// filterBytes (serialized Java filters) is not supported.
//
// # Namespaces
//
// createNamespace, modifyNamespace, deleteNamespace (only an empty one, as
// HBase), getNamespaceDescriptor, listNamespaceDescriptors and
// listNamespaces. The HBase table "ns:t" (TTableName ns and qualifier, or
// "ns:t" wherever a table name is bytes, Thrift1 included) is the Shale
// table "ns.t"; "default:t" and "t" are "t". Namespaces and their
// configuration are rows of the table _hbase_namespaces (hidden from table
// listings). A Shale table "a.b" is listed in namespace "a" if that exists;
// so creating namespace "a" is refused while a table "a.*" exists, and
// creating table "a.b" in the default namespace while namespace "a" exists.
// HBase's system namespace "hbase" does not exist.
//
// # Durability
//
// TDurability (TPut, TDelete, TIncrement, TAppend, TRowMutations) and
// Thrift1's Mutation.writeToWAL are accepted and ignored: every write is
// appended to its tablet's Raft log and acknowledged once a majority of
// replicas has it on disk, so it is always at least as durable as HBase's
// SYNC_WAL; SKIP_WAL and ASYNC_WAL buy no speed.
//
// # Thrift1
//
// Served: enableTable, disableTable (not supported: TIOError),
// isTableEnabled, getTableNames, getTableNamesWithIsTableEnabled,
// getColumnDescriptors, getTableRegions (regions are tablets, as
// getAllRegionLocations), createTable (AlreadyExists, IllegalArgument),
// deleteTable; get, getVer, getVerTs, getRow, getRowWithColumns, getRowTs,
// getRowWithColumnsTs, getRows, getRowsWithColumns, getRowsTs,
// getRowsWithColumnsTs; mutateRow, mutateRowTs, mutateRows, mutateRowsTs,
// atomicIncrement, increment, incrementRows, append, checkAndPut; deleteAll,
// deleteAllTs, deleteAllRow, deleteAllRowTs; scannerOpen,
// scannerOpenWithStop, scannerOpenWithPrefix, scannerOpenWithScan,
// scannerOpenTs, scannerOpenWithStopTs, scannerGet, scannerGetList,
// scannerClose; getThriftServerType (ONE). The others (compact,
// majorCompact, getRegionInfo, getClusterId, grant, revoke) answer
// TApplicationException UNKNOWN_METHOD. As HBase's Thrift1 server:
//
//   - A column is "family:qualifier"; a name without ':' is the whole
//     family (reads, deletes) or the empty qualifier (puts, increments).
//     Result maps are keyed "family:qualifier" and hold each column's
//     newest version (TScan.sortColumns: the sortedColumns list instead, in
//     storage order); getVer/getVerTs return up to numVersions versions.
//     Rows without cells are left out of results.
//   - The "Ts" reads (getVerTs, getRowTs, scannerOpenTs, TScan.timestamp,
//     ...) select versions strictly older than the timestamp (HBase's
//     setTimeRange(0, ts)); the "Ts" writes put at the timestamp and
//     delete the versions at or before it. A family or whole row deleted up
//     to a timestamp (deleteAllTs of a family, deleteAllRowTs) reads the
//     row's columns and deletes each: not atomic with a writer adding a
//     column meanwhile.
//   - A row's mutations (mutateRow, one BatchMutation) are one atomic
//     Shale row mutation, deletes before puts; mutateRows applies each row
//     atomically, not the batch.
//   - atomicIncrement returns the new 8-byte big-endian counter value.
//   - scannerOpenWithPrefix is a scan from the prefix with a PrefixFilter,
//     pushed down as the row range. TScan.batchSize (rows cut into batches
//     of columns) is not supported.
//   - Exceptions: IOError (IllegalArgument for bad scanner ids and, where
//     declared, bad arguments), with the messages Thrift2 gives.
//
// Not supported (they answer TIOError with a message saying so):
// filterBytes, per-family time ranges in scans, visibility labels and
// cell tags (ignored on write), disabling tables. Methods of HBase's
// THBaseService not declared in proto/hbase.thrift (column family
// changes, modifyTable, ...) answer a Thrift TApplicationException
// UNKNOWN_METHOD and the connection stays usable.
//
// Error mapping: every failure answers the method's declared exception,
// TIOError (with TIllegalArgument for bad scanner ids), carrying Shale's
// message; the connection is never dropped for an application error.
package thriftgw
