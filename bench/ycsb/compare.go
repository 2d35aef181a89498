package ycsb

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// CompareTable writes Markdown tables comparing results of the same
// workload and thread count across targets (the first target is baseTarget
// when present, e.g. "shale", and ratios are base/other): throughput and
// p99 over all operations, then every operation's percentiles and error
// counts. A later result replaces an earlier one of the same workload,
// threads and target.
func CompareTable(w io.Writer, results []*Result, baseTarget string) error {
	type key struct {
		workload string
		threads  int
	}
	byKey := map[key]map[string]*Result{}
	var keys []key
	targetSet := map[string]bool{}
	for _, r := range results {
		k := key{resultWorkload(r), r.Threads}
		if byKey[k] == nil {
			byKey[k] = map[string]*Result{}
			keys = append(keys, k)
		}
		byKey[k][r.Target] = r
		targetSet[r.Target] = true
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if keys[i].threads != keys[j].threads {
			return keys[i].threads < keys[j].threads
		}
		return workloadOrder(keys[i].workload) < workloadOrder(keys[j].workload)
	})
	var targets []string
	for t := range targetSet {
		targets = append(targets, t)
	}
	sort.Slice(targets, func(i, j int) bool {
		if (targets[i] == baseTarget) != (targets[j] == baseTarget) {
			return targets[i] == baseTarget
		}
		return targets[i] < targets[j]
	})
	if len(targets) == 0 {
		return fmt.Errorf("no results to compare")
	}

	var b strings.Builder
	b.WriteString("| workload | threads |")
	for _, t := range targets {
		fmt.Fprintf(&b, " %s ops/s |", t)
	}
	for _, t := range targets[1:] {
		fmt.Fprintf(&b, " %s/%s |", targets[0], t)
	}
	for _, t := range targets {
		fmt.Fprintf(&b, " %s p99 ms |", t)
	}
	for _, t := range targets[1:] {
		fmt.Fprintf(&b, " p99 %s/%s |", targets[0], t)
	}
	b.WriteString("\n|" + strings.Repeat(" --- |", 2+2*len(targets)+2*(len(targets)-1)) + "\n")
	for _, k := range keys {
		rs := byKey[k]
		fmt.Fprintf(&b, "| %s | %d |", k.workload, k.threads)
		for _, t := range targets {
			if r := rs[t]; r != nil {
				fmt.Fprintf(&b, " %s |", thousands(r.Throughput))
			} else {
				b.WriteString(" - |")
			}
		}
		base := rs[targets[0]]
		for _, t := range targets[1:] {
			if r := rs[t]; r != nil && base != nil && r.Throughput > 0 {
				fmt.Fprintf(&b, " %.2f |", base.Throughput/r.Throughput)
			} else {
				b.WriteString(" - |")
			}
		}
		for _, t := range targets {
			if r := rs[t]; r != nil {
				fmt.Fprintf(&b, " %s |", ms(r.P99Us))
			} else {
				b.WriteString(" - |")
			}
		}
		for _, t := range targets[1:] {
			if r := rs[t]; r != nil && base != nil && r.P99Us > 0 {
				fmt.Fprintf(&b, " %.2f |", float64(base.P99Us)/float64(r.P99Us))
			} else {
				b.WriteString(" - |")
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("\nPer operation (latencies in ms; errors are every Return other than OK):\n\n")
	b.WriteString("| workload | threads | target | operation | count | avg | p50 | p95 | p99 | p99.9 | max | errors |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range keys {
		for _, t := range targets {
			r := byKey[k][t]
			if r == nil {
				continue
			}
			for _, op := range r.Ops {
				if strings.HasSuffix(op.Name, "-FAILED") || (op.Operations == 0 && len(op.Returns) == 0) {
					continue
				}
				var errs int64
				for _, s := range op.Returns {
					if s.Status != StatusOK {
						errs += s.Count
					}
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %s | %d | %s | %s | %s | %s | %s | %s | %d |\n",
					k.workload, k.threads, t, op.Name, op.Operations, msf(op.AverageUs),
					ms(pct(op, 50)), ms(pct(op, 95)), ms(pct(op, 99)), ms(pct(op, 99.9)), ms(op.MaxUs), errs)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// resultWorkload names a result's row: "load" for the load phase, the
// workload's name otherwise.
func resultWorkload(r *Result) string {
	if r.Phase == PhaseLoad {
		return "load"
	}
	return r.Workload
}

func workloadOrder(w string) string {
	if w == "load" {
		return ""
	}
	return w
}

func pct(op OpResult, p float64) int64 {
	for _, x := range op.Percentiles {
		if x.P == p {
			return x.Us
		}
	}
	return -1
}

func ms(us int64) string {
	if us < 0 {
		return "-"
	}
	return msf(float64(us))
}

func msf(us float64) string {
	switch {
	case us >= 100_000:
		return fmt.Sprintf("%.0f", us/1000)
	case us >= 10_000:
		return fmt.Sprintf("%.1f", us/1000)
	}
	return fmt.Sprintf("%.2f", us/1000)
}

// thousands formats a rate with a thousands separator and no decimals.
func thousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	n := len(s)
	if n <= 3 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (n-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
