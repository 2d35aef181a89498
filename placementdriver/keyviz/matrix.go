package keyviz

import (
	"bytes"
	"sort"
	"time"
)

// Matrix is a time window of the heat map resampled onto one key axis:
// Values[c][k] is the metric's rate in column c (starting at Times[c]) over
// the key range [Keys[k], Keys[k+1]) (the last row ends at End).
type Matrix struct {
	Metric Metric
	Times  []time.Time
	Keys   [][]byte
	End    []byte
	Values [][]float64
	// Max is the largest value (0 for an idle or empty window).
	Max float64
}

// Matrix returns the columns starting in [from, to), the minute still
// being accumulated included, on a key axis of at most maxRows rows: the
// union of the columns' bucket boundaries, thinned evenly when larger.
// A row gets the sum of the buckets starting inside it, or, when none
// does, the rate of the bucket covering it.
func (r *Recorder) Matrix(m Metric, from, to time.Time, maxRows int) (Matrix, error) {
	if !to.After(from) {
		return Matrix{}, ErrBadWindow
	}
	if maxRows <= 0 {
		maxRows = r.opts.MaxBuckets
	}
	cols := r.columns(from, to)
	out := Matrix{Metric: m}
	if len(cols) == 0 {
		return out, nil
	}
	out.Keys, out.End = axis(cols, maxRows)
	for _, c := range cols {
		row := resample(c, out.Keys, m)
		for _, v := range row {
			out.Max = max(out.Max, v)
		}
		out.Times = append(out.Times, c.at)
		out.Values = append(out.Values, row)
	}
	return out, nil
}

// columns copies the kept columns in [from, to), oldest first, and the
// current minute's partial column when it starts in the window.
func (r *Recorder) columns(from, to time.Time) []column {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []column
	for i := 0; i < r.n; i++ {
		c := r.ring[(r.head+i)%len(r.ring)]
		if !c.at.Before(from) && c.at.Before(to) {
			out = append(out, c)
		}
	}
	if !r.window.IsZero() && len(r.tablets) > 0 && !r.window.Before(from) && r.window.Before(to) {
		out = append(out, r.buildColumn(r.window, r.tablets))
	}
	return out
}

// axis is the sorted union of the columns' start keys, thinned to maxRows
// (the first key always kept), and the largest end (empty wins: the end of
// the key space).
func axis(cols []column, maxRows int) ([][]byte, []byte) {
	seen := map[string]bool{}
	var keys [][]byte
	var end []byte
	endSet := false
	for _, c := range cols {
		for _, k := range c.keys {
			if !seen[string(k)] {
				seen[string(k)] = true
				keys = append(keys, k)
			}
		}
		if !endSet || len(c.end) == 0 || (len(end) != 0 && bytes.Compare(c.end, end) > 0) {
			end, endSet = c.end, true
		}
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	if len(keys) <= maxRows {
		return keys, end
	}
	thin := make([][]byte, 0, maxRows)
	for i := 0; i < maxRows; i++ {
		thin = append(thin, keys[i*len(keys)/maxRows])
	}
	return thin, end
}

// resample maps a column's buckets onto the axis rows.
func resample(c column, keys [][]byte, m Metric) []float64 {
	row := make([]float64, len(keys))
	filled := make([]bool, len(keys))
	// rowOf is the axis row holding key k (-1: before the axis).
	rowOf := func(k []byte) int {
		return sort.Search(len(keys), func(i int) bool { return bytes.Compare(keys[i], k) > 0 }) - 1
	}
	for b, k := range c.keys {
		if i := rowOf(k); i >= 0 {
			row[i] += float64(c.vals[b][m])
			filled[i] = true
		}
	}
	// Rows no bucket starts in take the bucket covering their start.
	b := -1
	for i, k := range keys {
		for b+1 < len(c.keys) && bytes.Compare(c.keys[b+1], k) <= 0 {
			b++
		}
		if filled[i] || b < 0 {
			continue
		}
		if b == len(c.keys)-1 && len(c.end) != 0 && bytes.Compare(k, c.end) >= 0 {
			continue // past the column's last tablet
		}
		row[i] = float64(c.vals[b][m])
	}
	return row
}
