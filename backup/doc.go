// Package backup is `shale backup`, `shale restore`, `shale backup ls` and
// `shale backup verify`: consistent backups of tables at one timestamp to
// a blob store (gocloud.dev/blob: file:// and s3://), full or incremental,
// and their restore through the bulk import's path. docs/backup.md is the
// user's guide; docs/decisions.md ("Backup and restore") the design.
//
// # Backup
//
// Backup fixes a timestamp ts (the placement driver's "now", or one given)
// and registers a service GC safe point at ts with the placement driver,
// renewed while it runs, so no version a read at ts needs is collected.
// The tables' key ranges are cut into pieces by the tablets that hold them:
// one replica of each tablet (a follower first: store.WaitReadableAt)
// streams its cells as of ts as SST files (tabletserver/store/export.go),
// Options.Parallel pieces at once, at most PerStore per store, each store
// rate-limiting its reads. Each file is checked (SHA-256 from the store),
// digested and written under data/; a piece's record under checkpoint/
// lists its files once they are all written. A killed backup, run again
// with the same destination, re-reads the records and exports only the
// ranges no record covers. The manifest (backupmeta.json), written last,
// records the schemas, the pieces (key ranges), every file with size and
// SHA-256, the state's digest per table, ts and the Shale version.
//
// An incremental backup (Options.Since, the previous backup's URL) holds
// the versions in (since, ts] plus, per piece, the keys of the older cells
// still visible at ts: that list is how a deletion reaches a restore.
// Tombstones (tabletserver/store: deletes keep history) hide what they
// delete from an export at or after them, as from a read, and are not
// exported themselves.
//
// # Restore
//
// Restore follows a backup's chain to its full backup, creates each table
// (under a new name with As), splits it at the backup's piece boundaries
// and scatters the leaders, then merges the chain's files piece by piece
// (the newest backup's cells, and older cells its key list names), re-keys
// the cells to the new table and ingests them with importer.CellIngester:
// SSTs staged on every replica and ingested by reference, cells keeping
// their timestamps. A local work directory records the finished pieces, so
// a killed restore resumes. At the end the restored table's digest,
// computed by the tablet servers, must equal the manifest's.
//
// # Errors
//
// A file whose bytes do not match the manifest is a *CorruptFileError
// naming it (verify and restore); a missing one a *MissingFileError.
package backup
