// Package cellsum defines the end-to-end checksums of cells
// (docs/reliability.md, "End-to-end cell checksums"): CRC-32C
// (Castagnoli, hardware-accelerated on amd64 and arm64, as in Pebble,
// ext4 and iSCSI).
//
// A writer (kvclient) sends Cell with every cell it sets; the tablet
// server checks it when it proposes the write and again when each replica
// applies it. A reader gets Value with every cell and checks it before
// returning the cell.
//
// Cell covers, in this order: the value's bytes, then the row key, the
// family name and the qualifier, each of those three preceded by its
// length as 4 bytes big-endian. It starts from Value(value) so that a
// server holding a value's checksum (a stored one) extends it over the
// cell's address without hashing the value again. The timestamp is not
// covered: a server may assign it, and it is checked against the tablet's
// bounds instead.
package cellsum
