package filterlang

import "github.com/shaledb/shale/kvclient"

// Scan evaluates a filter over the rows of one scan (or one get), in scan
// order. It is not safe for concurrent use.
type Scan struct {
	st   stage
	done bool
}

// NewScan returns a fresh evaluator for a scan in the given direction.
func (f *Filter) NewScan(reverse bool) *Scan {
	return &Scan{st: f.root.stage(reverse)}
}

// Row filters one row. It returns the row as the filter leaves it, or nil
// when the row is not returned; stop reports that no later row can pass
// (the scan can end).
func (s *Scan) Row(r *kvclient.Row) (out *kvclient.Row, stop bool) {
	if s.done {
		return nil, true
	}
	if r == nil || len(r.Cells) == 0 {
		return nil, false
	}
	cells := make([]cell, len(r.Cells))
	for i, c := range r.Cells {
		cells[i] = cell{i: i, c: c}
	}
	kept, stop := s.st.row(r.Key, cells)
	if stop {
		s.done = true
		return nil, true
	}
	if len(kept) == 0 {
		return nil, false
	}
	out = &kvclient.Row{Key: r.Key, Cells: make([]kvclient.Cell, len(kept))}
	for i, c := range kept {
		out.Cells[i] = c.c
	}
	return out, false
}
