package keyviz

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Metric is what a heat map colours by.
type Metric int

// The metrics of a tablet report, in the order of a bucket's values.
const (
	ReadBytes Metric = iota
	WriteBytes
	ReadOps
	WriteOps
	numMetrics
)

var metricNames = [numMetrics]string{"read_bytes", "write_bytes", "read_ops", "write_ops"}

func (m Metric) String() string {
	if m < 0 || m >= numMetrics {
		return fmt.Sprintf("Metric(%d)", int(m))
	}
	return metricNames[m]
}

// Unit is the unit of the metric's values.
func (m Metric) Unit() string {
	if m == ReadBytes || m == WriteBytes {
		return "bytes/s"
	}
	return "ops/s"
}

// ParseMetric parses a metric name (read_bytes, write_bytes, read_ops,
// write_ops).
func ParseMetric(s string) (Metric, error) {
	for i, n := range metricNames {
		if n == s {
			return Metric(i), nil
		}
	}
	return 0, fmt.Errorf("unknown heat map metric %q (want one of read_bytes, write_bytes, read_ops, write_ops)", s)
}

// Rates are one tablet's per-second rates over a report interval.
type Rates [numMetrics]float64

// Options bound a Recorder.
type Options struct {
	// Resolution is the width of one column (default one minute).
	Resolution time.Duration
	// Columns is how many columns are kept (default 1440: 24 hours at one
	// minute).
	Columns int
	// MaxBuckets caps the buckets of one column (default 256); beyond it
	// adjacent tablets are merged and their rates summed.
	MaxBuckets int
	// MaxKeyBytes caps the bytes kept of each bucket's start key (default
	// 32); longer keys are truncated, which keeps their order.
	MaxKeyBytes int
}

// EnsureDefaults fills unset fields.
func (o Options) EnsureDefaults() Options {
	if o.Resolution == 0 {
		o.Resolution = time.Minute
	}
	if o.Columns == 0 {
		o.Columns = 1440
	}
	if o.MaxBuckets == 0 {
		o.MaxBuckets = 256
	}
	if o.MaxKeyBytes == 0 {
		o.MaxKeyBytes = 32
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Resolution <= 0:
		return fmt.Errorf("keyviz: Resolution must be positive, got %s", o.Resolution)
	case o.Columns <= 0:
		return fmt.Errorf("keyviz: Columns must be positive, got %d", o.Columns)
	case o.MaxBuckets <= 0:
		return fmt.Errorf("keyviz: MaxBuckets must be positive, got %d", o.MaxBuckets)
	case o.MaxKeyBytes <= 0:
		return fmt.Errorf("keyviz: MaxKeyBytes must be positive, got %d", o.MaxKeyBytes)
	}
	return nil
}

// bucketBytes is the worst-case memory of one bucket besides its key
// bytes: a slice header for the key and four float32 rates.
const bucketBytes = 24 + 4*4

// columnBytes is the fixed memory of one column (time, two slice headers,
// the end key's header).
const columnBytes = 8 + 3*24

// MaxBytes is the most memory the columns of a Recorder with these options
// hold (keys, rates and headers; the current minute's per-tablet
// accumulators come on top and are bounded by the number of tablets).
// With the defaults it is 1440 × (80 + 256 × (40 + 32) + 32) bytes,
// about 25.5 MiB; when tablet boundaries do not change between minutes the
// keys are shared and a column costs about 256 × 16 bytes.
func (o Options) MaxBytes() int {
	o = o.EnsureDefaults()
	return o.Columns * (columnBytes + o.MaxBuckets*(bucketBytes+o.MaxKeyBytes) + o.MaxKeyBytes)
}

// column is one closed minute: buckets in key order. keys[i] starts bucket
// i, which ends where bucket i+1 starts (the last ends at end, empty: the
// end of the key space).
type column struct {
	at   time.Time
	keys [][]byte
	end  []byte
	vals [][numMetrics]float32
}

// acc accumulates one tablet's reports within the current minute.
type acc struct {
	start, end []byte
	sum        Rates
	reports    int
}

// Recorder keeps the heat map's history. It is safe for concurrent use.
type Recorder struct {
	opts Options
	mu   sync.Mutex
	// window is the start of the minute being accumulated (zero: none).
	window  time.Time
	tablets map[uint64]*acc
	ring    []column // ring[(head+i) % len] for i < n, oldest first
	head, n int
}

// New returns an empty Recorder.
func New(o Options) (*Recorder, error) {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Recorder{opts: o, tablets: map[uint64]*acc{}, ring: make([]column, o.Columns)}, nil
}

// Options returns the recorder's options (with defaults).
func (r *Recorder) Options() Options { return r.opts }

// Observe records one tablet report at now. A report of an earlier minute
// than the one being accumulated is dropped (reports arrive in order up to
// clock jitter; the minute is closed already).
func (r *Recorder) Observe(tabletID uint64, start, end []byte, rates Rates, now time.Time) {
	w := now.Truncate(r.opts.Resolution)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.window.IsZero():
		r.window = w
	case w.After(r.window):
		r.closeLocked()
		r.window = w
	case w.Before(r.window):
		return
	}
	a := r.tablets[tabletID]
	if a == nil {
		a = &acc{}
		r.tablets[tabletID] = a
	}
	// Copies: the caller's descriptor may be reused.
	a.start, a.end = append(a.start[:0], start...), append(a.end[:0], end...)
	for i, v := range rates {
		a.sum[i] += v
	}
	a.reports++
}

// closeLocked turns the current minute into a column of the ring.
func (r *Recorder) closeLocked() {
	col := r.buildColumn(r.window, r.tablets)
	r.tablets = map[uint64]*acc{}
	if len(col.keys) == 0 {
		return
	}
	if r.n > 0 {
		prev := &r.ring[(r.head+r.n-1)%len(r.ring)]
		if equalKeys(prev.keys, col.keys) {
			col.keys = prev.keys // share: boundaries rarely move
		}
		if bytes.Equal(prev.end, col.end) {
			col.end = prev.end
		}
	}
	if r.n < len(r.ring) {
		r.ring[(r.head+r.n)%len(r.ring)] = col
		r.n++
		return
	}
	r.ring[r.head] = col // overwrite the oldest
	r.head = (r.head + 1) % len(r.ring)
}

// buildColumn sorts the tablets by start key, folds overlapping ones (a
// tablet merged away mid-minute) into the one before, and merges adjacent
// tablets into at most MaxBuckets buckets.
func (r *Recorder) buildColumn(at time.Time, tablets map[uint64]*acc) column {
	list := make([]*acc, 0, len(tablets))
	for _, a := range tablets {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return bytes.Compare(list[i].start, list[j].start) < 0 })
	type span struct {
		start, end []byte
		v          Rates
	}
	var spans []span
	for _, a := range list {
		var mean Rates
		for i, s := range a.sum {
			mean[i] = s / float64(a.reports)
		}
		if n := len(spans); n > 0 && (len(spans[n-1].end) == 0 || bytes.Compare(a.start, spans[n-1].end) < 0) {
			last := &spans[n-1]
			for i := range mean {
				last.v[i] += mean[i]
			}
			if len(last.end) != 0 && (len(a.end) == 0 || bytes.Compare(a.end, last.end) > 0) {
				last.end = a.end
			}
			continue
		}
		spans = append(spans, span{a.start, a.end, mean})
	}
	per := (len(spans) + r.opts.MaxBuckets - 1) / max(r.opts.MaxBuckets, 1)
	col := column{at: at}
	for i := 0; i < len(spans); i += per {
		var v [numMetrics]float32
		for _, s := range spans[i:min(i+per, len(spans))] {
			for m := range v {
				v[m] += float32(s.v[m])
			}
		}
		col.keys = append(col.keys, r.truncate(spans[i].start))
		col.vals = append(col.vals, v)
	}
	if len(spans) > 0 {
		col.end = r.truncate(spans[len(spans)-1].end)
	}
	return col
}

func (r *Recorder) truncate(k []byte) []byte {
	return slices.Clone(k[:min(len(k), r.opts.MaxKeyBytes)])
}

func equalKeys(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

// Len is the number of closed columns kept.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Bytes is the memory the kept columns hold, counted as MaxBytes counts
// it (shared keys once).
func (r *Recorder) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	var prevKeys [][]byte
	for i := 0; i < r.n; i++ {
		c := &r.ring[(r.head+i)%len(r.ring)]
		total += columnBytes + len(c.vals)*4*int(numMetrics) + len(c.end)
		if i == 0 || !sameSlice(prevKeys, c.keys) {
			for _, k := range c.keys {
				total += 24 + len(k)
			}
		}
		prevKeys = c.keys
	}
	return total
}

func sameSlice(a, b [][]byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// ErrBadWindow is returned by Matrix for an empty or inverted window.
var ErrBadWindow = errors.New("keyviz: the window must end after it starts")
