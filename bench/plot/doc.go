// Package plot draws benchmark results over time: throughput and p99
// latency per second, one line per result file, the two charts side by
// side. The output is a self-contained HTML page with inline SVG (or a
// bare SVG), written with the standard library only, so it opens in any
// browser and diffs as text.
package plot
