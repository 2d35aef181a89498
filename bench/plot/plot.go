package plot

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/shaledb/shale/bench/ycsb"
)

// Line is one result to draw, with its legend label.
type Line struct {
	Label  string
	Result *ycsb.Result
}

// ErrFormat is returned for an output file name whose extension is not
// .html, .htm or .svg.
type ErrFormat struct{ Path string }

func (e ErrFormat) Error() string {
	return fmt.Sprintf("plot %s: unsupported format %q: use .html (a page with inline SVG charts) or .svg", e.Path, filepath.Ext(e.Path))
}

// Label returns a default legend label for a result: target, workload (or
// "load") and threads.
func Label(r *ycsb.Result) string {
	w := r.Workload
	if r.Phase == ycsb.PhaseLoad {
		w = "load"
	}
	return fmt.Sprintf("%s %s t%d", r.Target, w, r.Threads)
}

// writer picks the output format by the file's extension.
func writer(path string) (func(io.Writer, string, []Line) error, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return WriteHTML, nil
	case ".svg":
		return WriteSVG, nil
	}
	return nil, ErrFormat{path}
}

// CheckPath fails (with ErrFormat) when WriteFile cannot write path's
// format.
func CheckPath(path string) error {
	_, err := writer(path)
	return err
}

// WriteFile writes the charts to path, as HTML or SVG by its extension.
func WriteFile(path, title string, lines []Line) error {
	write, err := writer(path)
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		return fmt.Errorf("plot %s: no results to draw", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = write(bw, title, lines)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// palette: distinguishable colours (Tableau 10).
var palette = []string{"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

func color(i int) string { return palette[i%len(palette)] }

// WriteHTML writes a page with a legend, the throughput and p99 charts
// side by side, and a summary table.
func WriteHTML(w io.Writer, title string, lines []Line) error {
	e := html.EscapeString
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n", e(title))
	fmt.Fprint(w, `<style>body{font-family:sans-serif;margin:20px}.charts{display:flex;flex-wrap:wrap;gap:20px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}
.sw{display:inline-block;width:14px;height:4px;vertical-align:middle;margin-right:6px}</style></head><body>
`)
	fmt.Fprintf(w, "<h2>%s</h2>\n<div class=\"charts\">\n", e(title))
	fmt.Fprint(w, chart("Throughput (ops/s)", lines, func(p ycsb.Point) float64 { return p.Throughput }))
	fmt.Fprint(w, chart("p99 latency, all operations (ms)", lines, func(p ycsb.Point) float64 { return float64(p.P99Us) / 1000 }))
	fmt.Fprint(w, "</div>\n<table><tr><th>run</th><th>ops/s</th><th>p99 ms</th><th>operations</th><th>runtime s</th><th>started</th></tr>\n")
	for i, l := range lines {
		r := l.Result
		fmt.Fprintf(w, "<tr><td><span class=\"sw\" style=\"background:%s\"></span>%s</td><td>%.0f</td><td>%.2f</td><td>%d</td><td>%.1f</td><td>%s</td></tr>\n",
			color(i), e(l.Label), r.Throughput, float64(r.P99Us)/1000, r.Operations, float64(r.RunTimeMs)/1000, e(r.Start.Format("2006-01-02 15:04:05")))
	}
	_, err := fmt.Fprint(w, "</table>\n</body></html>\n")
	return err
}

// WriteSVG writes both charts in one SVG image, side by side.
func WriteSVG(w io.Writer, title string, lines []Line) error {
	legendH := legendRow * ((len(lines) + legendPerLine - 1) / legendPerLine)
	fmt.Fprintf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\">\n", 2*chartW+20, chartH+30+legendH)
	fmt.Fprintf(w, "<text x=\"10\" y=\"18\" font-size=\"14\">%s</text>\n", html.EscapeString(title))
	fmt.Fprintf(w, "<g transform=\"translate(0,30)\">%s</g>\n", chart("Throughput (ops/s)", lines, func(p ycsb.Point) float64 { return p.Throughput }))
	fmt.Fprintf(w, "<g transform=\"translate(%d,30)\">%s</g>\n", chartW+20, chart("p99 latency, all operations (ms)", lines, func(p ycsb.Point) float64 { return float64(p.P99Us) / 1000 }))
	_, err := fmt.Fprint(w, "</svg>\n")
	return err
}

// Chart geometry, in pixels.
const (
	chartW, chartH           = 600, 380
	padL, padR, padT, padB   = 64, 16, 28, 44
	legendRow, legendPerLine = 16, 2
)

// chart draws one metric of every line as an inline <svg>.
func chart(title string, lines []Line, y func(ycsb.Point) float64) string {
	var maxX, maxY float64
	for _, l := range lines {
		for _, p := range drawable(l.Result.Series) {
			maxX = math.Max(maxX, p.T)
			if v := y(p); !math.IsNaN(v) && !math.IsInf(v, 0) {
				maxY = math.Max(maxY, v)
			}
		}
	}
	xTicks, maxX := ticks(maxX)
	yTicks, maxY := ticks(maxY)
	legendH := legendRow * ((len(lines) + legendPerLine - 1) / legendPerLine)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 { return padL + x/maxX*plotW }
	py := func(v float64) float64 { return padT + plotH - v/maxY*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", chartW, chartH+legendH)
	fmt.Fprintf(&b, "<text x=\"%d\" y=\"16\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", padL, html.EscapeString(title))
	for _, t := range yTicks {
		fmt.Fprintf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>", padL, chartW-padR, py(t), py(t))
		fmt.Fprintf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", padL-6, py(t)+4, tickLabel(t))
	}
	for _, t := range xTicks {
		fmt.Fprintf(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>", px(t), px(t), chartH-padB, chartH-padB+4)
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px(t), chartH-padB+16, tickLabel(t))
	}
	fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">seconds</text>\n", padL+plotW/2, chartH-padB+34)
	fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n", padL, padT, plotW, plotH)
	for i, l := range lines {
		var pts []string
		for _, p := range drawable(l.Result.Series) {
			v := y(p)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.T), py(v)))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"%s\"/>\n", color(i), strings.Join(pts, " "))
		}
		lx := padL + (i%legendPerLine)*(chartW-padL)/legendPerLine
		ly := chartH + (i/legendPerLine)*legendRow
		fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
			lx, ly-6, color(i), lx+18, ly, html.EscapeString(l.Label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// ticks returns about five round tick values from 0 covering max, and the
// axis maximum (the last tick).
func ticks(max float64) ([]float64, float64) {
	if max <= 0 {
		max = 1
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := 0.0; ; v += step {
		out = append(out, v)
		if v >= max {
			return out, v
		}
	}
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

// drawable drops a run's last interval when it is under half a second
// and not the only one: its rate and p99 rest on too few operations.
func drawable(ps []ycsb.Point) []ycsb.Point {
	if n := len(ps); n > 1 && ps[n-1].Dt < 0.5 {
		return ps[:n-1]
	}
	return ps
}
