package importer

import (
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// Fraction is how far the job is, from 0 to 1: parsing counts for the
// first 30%, ingesting for the rest (splits sit at 30%).
func (p Progress) Fraction() float64 {
	switch p.Phase {
	case "parse", "start":
		if p.InputTotal > 0 {
			return 0.3 * min(1, float64(p.InputBytes)/float64(p.InputTotal))
		}
		return 0
	case "split":
		return 0.3
	case "ingest":
		if p.SortedBytes > 0 {
			return 0.3 + 0.7*min(1, float64(p.IngestedBytes)/float64(p.SortedBytes))
		}
		return 0.3
	}
	return 1
}

// RateMeter turns progress snapshots into recent rates (exponentially
// smoothed) and an ETA, for a progress display.
type RateMeter struct {
	prev Progress
	rows float64 // per second, smoothed
	mib  float64
}

// Observe records a snapshot. Rates count input while parsing and
// ingested data while ingesting; a phase change restarts them.
func (r *RateMeter) Observe(p Progress) {
	dt := (p.Elapsed - r.prev.Elapsed).Seconds()
	if dt <= 0 {
		return
	}
	var rows, bytes float64
	if p.Phase == "ingest" {
		rows, bytes = float64(p.IngestedRows-r.prev.IngestedRows), float64(p.IngestedBytes-r.prev.IngestedBytes)
	} else {
		rows, bytes = float64(p.InputRows-r.prev.InputRows), float64(p.InputBytes-r.prev.InputBytes)
	}
	if rows < 0 || bytes < 0 || p.Phase != r.prev.Phase {
		rows, bytes = 0, 0
	}
	const a = 0.3
	r.rows = a*rows/dt + (1-a)*r.rows
	r.mib = a*bytes/(1<<20)/dt + (1-a)*r.mib
	r.prev = p
}

// Rates returns rows/s, MiB/s and the ETA ("--" while unknown) for p.
// Past the ingest they are the job's averages, not a decayed rate.
func (r *RateMeter) Rates(p Progress) (rows, mib float64, eta string) {
	f := p.Fraction()
	if p.Phase == "verify" || p.Phase == "done" {
		secs := max(p.Elapsed.Seconds(), 1e-9)
		return float64(p.IngestedRows) / secs, float64(p.IngestedBytes) / (1 << 20) / secs, "0s"
	}
	eta = "--"
	if f > 0.01 && f < 1 {
		left := time.Duration(float64(p.Elapsed) * (1 - f) / f)
		eta = left.Round(time.Second).String()
	} else if f >= 1 {
		eta = "0s"
	}
	return r.rows, r.mib, eta
}

// Fields is the summary as a flat map for JSON output, with the rates
// (rows_per_s, mib_per_s) computed.
func (s *Summary) Fields() map[string]any {
	secs := max(s.Duration.Seconds(), 1e-9)
	return map[string]any{
		"table": s.Table, "timestamp": s.Timestamp, "rows": s.Rows, "cells": s.Cells, "bytes": s.Bytes,
		"input_rows": s.InputRows, "input_bytes": s.InputBytes, "rejected": s.Rejected, "duplicates": s.Duplicates,
		"ssts": s.SSTs, "recuts": s.Recuts, "verified_rows": s.VerifiedRows, "resumed": s.Resumed,
		"duration_s": s.Duration.Seconds(), "rows_per_s": float64(s.Rows) / secs, "mib_per_s": float64(s.Bytes) / (1 << 20) / secs,
		"reject_file": s.RejectFile, "checksum": s.Checksum, "verified_checksum": s.VerifiedChecksum,
	}
}

// WriteReport prints the summary for a person, one aspect per line,
// ending with the work directory to remove.
func (s *Summary) WriteReport(w io.Writer, workDir string) {
	secs := max(s.Duration.Seconds(), 1e-9)
	fmt.Fprintf(w, "Imported %d rows (%d cells, %.1f MiB) into %q in %s", s.Rows, s.Cells, float64(s.Bytes)/(1<<20), s.Table, s.Duration.Round(time.Millisecond))
	if s.Resumed {
		fmt.Fprint(w, " (resumed; time of this run)")
	}
	fmt.Fprintf(w, "\n  throughput  %.0f rows/s, %.1f MiB/s\n", float64(s.Rows)/secs, float64(s.Bytes)/(1<<20)/secs)
	fmt.Fprintf(w, "  input       %d rows, %.1f MiB\n", s.InputRows, float64(s.InputBytes)/(1<<20))
	fmt.Fprintf(w, "  rejected    %d", s.Rejected)
	if s.RejectFile != "" {
		fmt.Fprintf(w, " (see %s)", s.RejectFile)
	}
	fmt.Fprintf(w, "\n  duplicates  %d rows", s.Duplicates)
	if s.Duplicates > 0 {
		fmt.Fprint(w, " (the last record of each kept)")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  SSTs        %d ingested, %d re-cut after a split or move\n", s.SSTs, s.Recuts)
	fmt.Fprintf(w, "  verified    %d rows hold a cell at timestamp %d", s.VerifiedRows, s.Timestamp)
	switch {
	case s.Checksum != "" && s.Checksum == s.VerifiedChecksum:
		fmt.Fprintf(w, "; cells match the input (digest %s)", s.Checksum)
	case s.VerifiedRows != s.Rows:
		fmt.Fprintf(w, "; %d differ from the %d imported (deleted or collected since?)", s.Rows-s.VerifiedRows, s.Rows)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  work dir    %s (remove it when done)\n", filepath.Clean(workDir))
}
