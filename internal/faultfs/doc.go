// Package faultfs wraps a Pebble vfs.FS to corrupt what reads return, in
// the manner of Pebble's own vfs/errorfs (which injects errors, not
// flipped bytes): a Corruptor sees every read (path, offset, length) and
// may flip one byte of the data returned, as a disk with bit rot would.
// Tests use it to check that a flipped byte in an SST, the WAL or a
// snapshot file is caught by a checksum before it is served.
//
//	flip := faultfs.NewFlipper()
//	fs := faultfs.Wrap(vfs.Default, flip)
//	... open Pebble on fs, write, flush ...
//	flip.Target(func(path string) bool { return strings.HasSuffix(path, "000012.sst") })
package faultfs
