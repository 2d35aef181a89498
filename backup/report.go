package backup

import (
	"fmt"
	"io"
	"time"
)

// Rates returns MiB/s and an ETA ("--" while unknown) for a progress
// snapshot, as `shale import` shows them.
func (p Progress) Rates() (mib float64, eta string) {
	secs := max(p.Elapsed.Seconds(), 1e-9)
	mib = float64(p.Bytes) / (1 << 20) / secs
	f := p.Fraction()
	switch {
	case f >= 1:
		eta = "0s"
	case f > 0.01:
		eta = (time.Duration(float64(p.Elapsed) * (1 - f) / f)).Round(time.Second).String()
	default:
		eta = "--"
	}
	return mib, eta
}

// WriteReport prints the summary for a person, one aspect per line.
func (s *Summary) WriteReport(w io.Writer) {
	secs := max(s.Duration.Seconds(), 1e-9)
	kind := "Full backup"
	if s.Since > 0 {
		kind = fmt.Sprintf("Incremental backup (since %d)", s.Since)
	}
	fmt.Fprintf(w, "%s %s at timestamp %d written to %s in %s", kind, s.ID, s.Timestamp, s.URL, s.Duration.Round(time.Millisecond))
	if s.Resumed {
		fmt.Fprint(w, " (resumed; time of this run)")
	}
	fmt.Fprintf(w, "\n  tables      %d\n", s.Tables)
	fmt.Fprintf(w, "  cells       %d (the state at the timestamp)\n", s.Cells)
	fmt.Fprintf(w, "  files       %d, %.1f MiB\n", s.Files, float64(s.Bytes)/(1<<20))
	fmt.Fprintf(w, "  pieces      %d (key ranges, one replica each)\n", s.Pieces)
	fmt.Fprintf(w, "  throughput  %.1f MiB/s\n", float64(s.Bytes)/(1<<20)/secs)
}

// Fields is the summary as a flat map for JSON output.
func (s *Summary) Fields() map[string]any {
	secs := max(s.Duration.Seconds(), 1e-9)
	return map[string]any{"url": s.URL, "id": s.ID, "timestamp": s.Timestamp, "since": s.Since, "tables": s.Tables,
		"pieces": s.Pieces, "files": s.Files, "bytes": s.Bytes, "cells": s.Cells, "resumed": s.Resumed,
		"duration_s": s.Duration.Seconds(), "mib_per_s": float64(s.Bytes) / (1 << 20) / secs}
}

// WriteReport prints the restore's summary for a person.
func (s *RestoreSummary) WriteReport(w io.Writer) {
	secs := max(s.Duration.Seconds(), 1e-9)
	fmt.Fprintf(w, "Restored %v from %s (state at timestamp %d, a chain of %d backups) in %s", s.Tables, s.From, s.Timestamp, s.Chain, s.Duration.Round(time.Millisecond))
	if s.Resumed {
		fmt.Fprint(w, " (resumed; time of this run)")
	}
	fmt.Fprintf(w, "\n  cells       %d ingested in %d SSTs\n", s.Cells, s.SSTs)
	fmt.Fprintf(w, "  read        %.1f MiB of backup files, %.1f MiB/s\n", float64(s.Bytes)/(1<<20), float64(s.Bytes)/(1<<20)/secs)
	fmt.Fprintf(w, "  verified    the tablet servers' digest %s equals the backup's\n", s.Digest)
	fmt.Fprintf(w, "  work dir    %s (remove it when done)\n", s.WorkDir)
}

// Fields is the restore summary as a flat map for JSON output.
func (s *RestoreSummary) Fields() map[string]any {
	secs := max(s.Duration.Seconds(), 1e-9)
	return map[string]any{"from": s.From, "timestamp": s.Timestamp, "chain": s.Chain, "tables": s.Tables, "cells": s.Cells,
		"bytes": s.Bytes, "ssts": s.SSTs, "digest": s.Digest, "resumed": s.Resumed, "duration_s": s.Duration.Seconds(),
		"mib_per_s": float64(s.Bytes) / (1 << 20) / secs, "work_dir": s.WorkDir}
}
