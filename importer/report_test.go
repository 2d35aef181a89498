package importer

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProgressFraction(t *testing.T) {
	for _, tc := range []struct {
		p    Progress
		want float64
	}{
		{Progress{Phase: "start"}, 0},
		{Progress{Phase: "parse", InputBytes: 50}, 0}, // stdin: total unknown
		{Progress{Phase: "parse", InputBytes: 50, InputTotal: 100}, 0.15},
		{Progress{Phase: "parse", InputBytes: 200, InputTotal: 100}, 0.3}, // a file grew
		{Progress{Phase: "split"}, 0.3},
		{Progress{Phase: "ingest"}, 0.3},
		{Progress{Phase: "ingest", IngestedBytes: 50, SortedBytes: 100}, 0.65},
		{Progress{Phase: "verify"}, 1},
		{Progress{Phase: "done"}, 1},
	} {
		require.InDelta(t, tc.want, tc.p.Fraction(), 1e-9, "%+v", tc.p)
	}
}

func TestRateMeter(t *testing.T) {
	var r RateMeter
	r.Observe(Progress{Phase: "parse", Elapsed: time.Second, InputRows: 1000, InputBytes: 1 << 20, InputTotal: 4 << 20})
	// The first snapshot is a phase change from "": no rate yet.
	rows, mib, eta := r.Rates(Progress{Phase: "parse", Elapsed: time.Second, InputBytes: 1 << 20, InputTotal: 4 << 20})
	require.Zero(t, rows)
	require.Zero(t, mib)
	// 7.5% done after 1s: 12.33s left.
	require.Equal(t, "12s", eta)

	p := Progress{Phase: "parse", Elapsed: 2 * time.Second, InputRows: 3000, InputBytes: 3 << 20, InputTotal: 4 << 20}
	r.Observe(p)
	rows, mib, _ = r.Rates(p)
	require.InDelta(t, 0.3*2000, rows, 1e-9) // smoothed: 30% of 2000 rows/s
	require.InDelta(t, 0.3*2, mib, 1e-9)
	r.Observe(Progress{Phase: "parse", Elapsed: 2 * time.Second}) // no time passed: ignored
	rows, _, _ = r.Rates(p)
	require.InDelta(t, 0.3*2000, rows, 1e-9)

	// Nothing known yet, and after the ingest: averages over the job.
	_, _, eta = r.Rates(Progress{Phase: "start"})
	require.Equal(t, "--", eta)
	rows, mib, eta = r.Rates(Progress{Phase: "done", Elapsed: 10 * time.Second, IngestedRows: 5000, IngestedBytes: 10 << 20})
	require.Equal(t, 500.0, rows)
	require.Equal(t, 1.0, mib)
	require.Equal(t, "0s", eta)
}

func TestSummaryReport(t *testing.T) {
	s := &Summary{Table: "users", Timestamp: 42, InputRows: 4, InputBytes: 1 << 20, Rows: 3, Cells: 6, Bytes: 2 << 20,
		Rejected: 1, Duplicates: 1, SSTs: 2, Recuts: 1, VerifiedRows: 3, Checksum: "ab", VerifiedChecksum: "ab",
		Resumed: true, Duration: 2 * time.Second, RejectFile: "w/rejects.txt"}
	var b strings.Builder
	s.WriteReport(&b, "w/")
	require.Equal(t, `Imported 3 rows (6 cells, 2.0 MiB) into "users" in 2s (resumed; time of this run)
  throughput  2 rows/s, 1.0 MiB/s
  input       4 rows, 1.0 MiB
  rejected    1 (see w/rejects.txt)
  duplicates  1 rows (the last record of each kept)
  SSTs        2 ingested, 1 re-cut after a split or move
  verified    3 rows hold a cell at timestamp 42; cells match the input (digest ab)
  work dir    w (remove it when done)
`, b.String())

	s.VerifiedRows, s.VerifiedChecksum = 2, "cd"
	b.Reset()
	s.WriteReport(&b, "w")
	require.Contains(t, b.String(), "verified    2 rows hold a cell at timestamp 42; 1 differ from the 3 imported")

	f := s.Fields()
	require.Equal(t, int64(3), f["rows"])
	require.Equal(t, 1.5, f["rows_per_s"])
	require.Equal(t, 1.0, f["mib_per_s"])
	require.Equal(t, "users", f["table"])
	require.Len(t, f, 19)
}
