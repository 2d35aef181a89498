package ycsb

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// WriteText writes the summary in YCSB's text format (its
// TextMeasurementsExporter with HDR-histogram measurements):
//
//	[OVERALL], RunTime(ms), 10110
//	[OVERALL], Throughput(ops/sec), 98.91196834817013
//	[READ], Operations, 491
//	[READ], AverageLatency(us), 397.2281059063136
//	[READ], MinLatency(us), 190
//	[READ], MaxLatency(us), 11511
//	[READ], 95thPercentileLatency(us), 607
//	[READ], 99thPercentileLatency(us), 1172
//	[READ], Return=OK, 491
func WriteText(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "[OVERALL], RunTime(ms), %d\n", r.RunTimeMs)
	fmt.Fprintf(bw, "[OVERALL], Throughput(ops/sec), %s\n", javaDouble(r.Throughput))
	for _, op := range r.Ops {
		fmt.Fprintf(bw, "[%s], Operations, %d\n", op.Name, op.Operations)
		fmt.Fprintf(bw, "[%s], AverageLatency(us), %s\n", op.Name, javaDouble(op.AverageUs))
		fmt.Fprintf(bw, "[%s], MinLatency(us), %d\n", op.Name, op.MinUs)
		fmt.Fprintf(bw, "[%s], MaxLatency(us), %d\n", op.Name, op.MaxUs)
		for _, p := range op.Percentiles {
			fmt.Fprintf(bw, "[%s], %sPercentileLatency(us), %d\n", op.Name, ordinal(p.P), p.Us)
		}
		for _, s := range op.Returns {
			fmt.Fprintf(bw, "[%s], Return=%s, %d\n", op.Name, s.Status, s.Count)
		}
	}
	return bw.Flush()
}

// ordinal names a percentile as YCSB does: 95 -> "95th", 99.9 -> "99.9".
func ordinal(p float64) string {
	if p != math.Trunc(p) {
		return javaDouble(p)
	}
	n := int64(p)
	switch n % 100 {
	case 11, 12, 13:
		return strconv.FormatInt(n, 10) + "th"
	}
	return strconv.FormatInt(n, 10) + [...]string{"th", "st", "nd", "rd", "th", "th", "th", "th", "th", "th"}[n%10]
}

// javaDouble formats f as Java's Double.toString does: shortest
// round-trip digits, always with a fraction ("100.0"), and scientific
// notation ("1.0E7") outside [1e-3, 1e7).
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64) // e.g. 1.2345E+07
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// formatDecimal formats f as Java's DecimalFormat("#.##") does in YCSB's
// status lines: at most two decimals, no trailing zeros.
func formatDecimal(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return javaDouble(f)
	}
	s := strconv.FormatFloat(f, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Summary is a parsed YCSB text summary: sections ("OVERALL", "READ", ...)
// in the order they appear, each with its metrics.
type Summary struct {
	Sections []string
	Metrics  map[string]map[string]float64
}

// Get returns one metric, e.g. Get("READ", "99thPercentileLatency(us)").
func (s *Summary) Get(section, metric string) (float64, bool) {
	v, ok := s.Metrics[section][metric]
	return v, ok
}

// SummaryError reports a summary line that looks like YCSB output but
// does not parse.
type SummaryError struct {
	Line int
	Text string
}

func (e *SummaryError) Error() string {
	return fmt.Sprintf("line %d: %q is not \"[SECTION], metric, value\"", e.Line, e.Text)
}

// ParseText reads YCSB's text summary (from YCSB itself or WriteText).
// Lines not starting with "[" (status lines, logs) are skipped.
func ParseText(r io.Reader) (*Summary, error) {
	s := &Summary{Metrics: map[string]map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "[") {
			continue
		}
		parts := strings.Split(line, ", ")
		if len(parts) != 3 || !strings.HasSuffix(parts[0], "]") {
			return nil, &SummaryError{Line: n, Text: line}
		}
		section := strings.TrimSuffix(strings.TrimPrefix(parts[0], "["), "]")
		v, err := strconv.ParseFloat(parts[2], 64)
		if err != nil {
			return nil, &SummaryError{Line: n, Text: line}
		}
		if _, ok := s.Metrics[section]; !ok {
			s.Sections = append(s.Sections, section)
			s.Metrics[section] = map[string]float64{}
		}
		s.Metrics[section][parts[1]] = v
	}
	return s, sc.Err()
}

// WriteJSONFile writes the result as JSON (the --json output).
func WriteJSONFile(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadJSONFile reads a result written by WriteJSONFile.
func ReadJSONFile(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not a benchmark result: %w", path, err)
	}
	if r.Phase == "" {
		return nil, fmt.Errorf("%s: not a benchmark result (no phase)", path)
	}
	return &r, nil
}
