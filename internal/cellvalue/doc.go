// Package cellvalue is the envelope every user cell's value has in the
// storage engine: a one-byte header saying whether the version is a value
// or a tombstone (a delete, kept as a version so that reads at earlier
// timestamps still see what it deleted) and whether a CRC-32C of the
// payload follows, then the CRC (4 bytes, big-endian) if present, then the
// payload.
//
//	value, with CRC:    0x02 | BE4(crc32c(payload)) | payload
//	value, without CRC: 0x00 | payload
//	tombstone:          0x01
//
// A value may also carry 0x04, "masks older": it hides every older version
// of its column like a tombstone, while being a value itself. It is what a
// put at the commit timestamp (so the engine key) of a delete of its column
// writes in place of the tombstone: keys are unique per column and
// timestamp, so the two cannot both be stored.
//
// The other header bits are reserved: a header with any of them set, a
// tombstone with a payload, or a CRC that does not match is corrupt data.
// The store records the format in its identity (FormatVersion), so a store
// written by a build without envelopes is refused at open instead of
// having its raw values misread.
package cellvalue
