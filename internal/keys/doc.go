// Package keys defines shale's order-preserving key encodings: the logical
// keyspace of tables, rows and cells, and the layout of the single Pebble
// keyspace each store keeps.
//
// # Logical keys (the row/cell space)
//
// A cell (table, row, family, qualifier, timestamp) is stored under
//
//	BE8(tableID) | esc(row) | esc(family) | esc(qualifier) | BE8(^uint64(ts))
//
// where esc is the CockroachDB-style byte-string escaping implemented by
// EncodeBytes: every 0x00 byte becomes 0x00 0xFF and the string is closed by
// the terminator 0x00 0x01. Because the terminator sorts below every escaped
// or literal byte that could follow at the same position, esc preserves
// lexicographic order (bytes.Compare(esc(a), esc(b)) == bytes.Compare(a, b))
// and is prefix-free (esc(a) is never a proper prefix of esc(b)). Together
// with the fixed-width table ID and timestamp this makes the byte order of
// cell keys equal the tuple order
//
//	(tableID, row, family, qualifier, timestamp descending)
//
// so the newest version of a column sorts first. Timestamps must be >= 0;
// their complements therefore all have the top bit set, which DecodeCellKey
// checks.
//
// The same encoding yields the prefixes used for scans and splits:
//
//	TablePrefix  = BE8(tableID)
//	RowKey       = TablePrefix | esc(row)
//	FamilyPrefix = RowKey | esc(family)
//	ColumnPrefix = FamilyPrefix | esc(qualifier)
//	CellKey      = ColumnPrefix | BE8(^ts)
//
// Tablet boundaries live in RowKey space: every split key is either a bare
// table prefix or an exact row key (IsValidSplitKey). Because esc is
// prefix-free, every cell of a row lies in [RowKey(row), PrefixEnd(RowKey(row)))
// and a boundary at a row key can never fall inside a row. RowPrefix truncates
// any row, family, column or cell key to its row key, which is how split
// points are derived from arbitrary keys.
//
// # Engine keys (one Pebble keyspace per store)
//
// The first byte of every engine key names its region:
//
//	0x01 store-local:   0x01 'i'                     store ident
//	                    0x01 's' BE8(tableID)        table schema
//	                    0x01 'p' BE8(tabletID) BE8(installID) suffix
//	                                                 a snapshot install's raft
//	                                                 state, until moved under 0x02
//	0x02 tablet-local:  0x02 BE8(tabletID) 'a'       applied state
//	                    0x02 BE8(tabletID) 'd'       tablet descriptor
//	                    0x02 BE8(tabletID) 'h'       raft HardState
//	                    0x02 BE8(tabletID) 't'       raft truncated state
//	                    0x02 BE8(tabletID) 'x'       tombstone
//	                    0x02 BE8(tabletID) 'l' BE8(index)  raft log entry
//	0x03 data:          0x03 | logical key (RowKey/CellKey space)
//
// All tablet-local keys of one tablet share TabletLocalPrefix(tabletID), so a
// tablet's local state can be cleared with one range deletion, and its raft
// log entries sort by index under RaftLogPrefix. A tablet owning the logical
// range [start, end) owns the engine range DataSpan(start, end); an empty end
// means "to the end of the data region" (0x04).
//
// # Errors
//
// Decoding functions never panic on malformed input; they return an error
// wrapping ErrCorruptKey. Encoding functions panic only on caller bugs (a
// negative timestamp).
package keys
