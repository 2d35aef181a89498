// Package importer is the client half of `shale import`: it turns CSV, TSV
// or JSONL files into sorted SSTs of cells and ingests them into a table's
// tablets through their raft logs. The server half is
// tabletserver/store/ingest.go; the design is in docs/decisions.md ("Bulk
// import").
//
// # Pipeline
//
// Run drives one job through its phases, each recorded in the work
// directory's checkpoint so a killed job resumes where it stopped:
//
//  1. parse: input files are read (Options.Parallel at a time); one reader
//     per file cuts it into batches of whole records and GOMAXPROCS
//     workers parse them, turn each record into cells with an Encoder
//     (RawEncoder for raw tables; a SQL encoder plugs in through
//     Options.NewEncoder) and feed their own sorter, which sorts row groups
//     and spills sorted, snappy-framed runs into the work directory within
//     Options.MemoryBytes; rejects are committed in input order;
//  2. split: split points every Options.SplitBytes of sorted data are asked
//     of the placement driver in one request (it splits each tablet at all
//     its points in one raft command) and the tablets' leaders are spread
//     over their replicas, while the ingest already runs;
//  3. ingest: a k-way merge of the runs yields rows in key order (the
//     duplicate rule applies here), cut into chunks that
//     Options.IngestParallel workers turn into one SST per tablet (never
//     spanning a planned split point; SSTBuilder), upload to every replica
//     of the tablet at once (UploadSST) and have the leader ingest
//     (IngestSST: by reference when every replica holds the file),
//     re-cutting when a tablet split or moved meanwhile;
//  4. verify: the tablet servers digest the table's cells at the job's
//     timestamp (the Digest read option: row keys come back, not cells),
//     trailing the ingest's checkpointed prefix; rows are counted and the
//     digest compared with the input's.
//
// Every cell of a job carries one timestamp from the placement driver's
// oracle, fixed when the job first starts; that is what makes re-ingesting
// a chunk after a restart harmless and the job exactly-once.
//
// # Errors
//
// A malformed record is an *InputError naming file:line:column; up to
// Options.MaxErrors of them are written to the reject file and skipped. A
// canceled job returns an error wrapping context.Canceled; running it again
// with the same Options resumes it.
package importer
