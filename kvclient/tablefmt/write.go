package tablefmt

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shaledb/shale/kvclient"
)

// RowSeparator is the line WriteRows prints before each row, as cbt does.
var RowSeparator = strings.Repeat("-", 40)

// TimeLayout formats cell timestamps (UTC, microseconds), as cbt does.
const TimeLayout = "2006/01/02-15:04:05.000000"

// WriteRow prints a row cbt-style: the key, then per cell
// "  FAMILY:QUALIFIER @ TIMESTAMP" and the quoted value.
func WriteRow(w io.Writer, r *kvclient.Row) {
	fmt.Fprintf(w, "%s\n", r.Key)
	for _, c := range r.Cells {
		fmt.Fprintf(w, "  %s:%s @ %s\n", c.Family, c.Qualifier, FormatTimestamp(c.Timestamp))
		fmt.Fprintf(w, "    %s\n", strconv.Quote(string(c.Value)))
	}
}

// Rows is what WriteRows reads; *kvclient.Scanner is one.
type Rows interface {
	Next() bool
	Row() *kvclient.Row
}

// WriteRows prints each row of rs after a RowSeparator line. The caller
// checks rs's error afterwards.
func WriteRows(w io.Writer, rs Rows) {
	for rs.Next() {
		fmt.Fprintln(w, RowSeparator)
		WriteRow(w, rs.Row())
	}
}

// FormatTimestamp renders a cell timestamp (microseconds) in UTC.
func FormatTimestamp(us int64) string {
	return time.UnixMicro(us).UTC().Format(TimeLayout)
}

// WriteTableNames prints the tables' names, sorted, one per line.
func WriteTableNames(w io.Writer, tables []*kvclient.TableInfo) {
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(w, n)
	}
}

// WriteTableInfo prints a table's families with their GC policies as an
// aligned table ("-": no limit), then its split rows, quoted, if any.
func WriteTableInfo(w io.Writer, ti *kvclient.TableInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAMILY\tMAX VERSIONS\tMAX AGE")
	for _, f := range ti.Families {
		versions, age := "-", "-"
		if f.MaxVersions > 0 {
			versions = strconv.FormatUint(uint64(f.MaxVersions), 10)
		}
		if f.MaxAge > 0 {
			age = ShortDuration(f.MaxAge)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, versions, age)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(ti.SplitRows) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "SPLIT ROWS")
		for _, r := range ti.SplitRows {
			fmt.Fprintln(w, strconv.Quote(string(r)))
		}
	}
	return nil
}

// ShortDuration is d.String() without trailing zero units: 24h, 1h30m
// (the form ParseFamily's maxage accepts back).
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
