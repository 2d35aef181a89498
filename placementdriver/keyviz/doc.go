// Package keyviz keeps the history behind PD's key heat map (the web
// console's "Key heat map", in the manner of Bigtable's Key Visualizer and
// TiDB's Key Visualizer): for every minute, the tablets in key order with
// their read and write rates (bytes and operations per second), as the
// stores report them in tablet heartbeats.
//
// A Recorder is fed by Observe (one call per tablet report) and closes a
// column when the first report of a later minute arrives; no goroutine is
// needed. Columns live in a ring of Options.Columns entries (24 hours at
// one-minute resolution by default), each with at most Options.MaxBuckets
// buckets (adjacent tablets are merged beyond that) whose start keys are
// truncated to Options.MaxKeyBytes, so memory is bounded by
// Options.MaxBytes regardless of the number of tablets or of how often
// they split (docs/limits.md). Consecutive columns with the same bucket
// boundaries share one copy of the keys.
//
// Matrix resamples the columns of a time window onto one key axis for
// drawing.
package keyviz
