// Package kvnemesis is a seeded, randomized generator of concurrent
// operations against an in-process Shale cluster (PD, four tablet servers,
// the HBase Thrift2 gateway), run under splits, merges, leader transfers,
// replica moves, store restarts, partitions, message drops, responses
// lost after apply and stores' wall clocks jumping ahead while a client
// resends a write (clock.go), and checked against a model.
//
// It follows CockroachDB's kvnemesis and Jepsen's generators: every
// operation the API has, with arguments drawn from the edges (explicit
// timestamps old, within the clock offset, beyond it and HBase's
// LATEST_TIMESTAMP; duplicate rows in one batch; every compare operator),
// from several clients at once. Each operation is recorded with its call
// and return times and its outcome (ok, failed, or unknown for an
// ambiguous write), and the history is checked per row with porcupine
// against a sequential model of a Bigtable row: every read must equal the
// model at some point between its call and its return, so an acknowledged
// write that is lost, applied twice, applied out of order or hidden behind
// a wrong timestamp fails the check. A full read of every row after the
// faults heal is part of the history.
//
// TestKVNemesis runs in `make test` for SHALE_KVNEMESIS_DURATION (default
// 60s); `make kvnemesis-soak` runs it for 30 minutes. SHALE_TEST_SEED
// replays a run's choices (the interleaving still differs).
package kvnemesis
