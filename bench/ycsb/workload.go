package ycsb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Workload is YCSB's CoreWorkload, configured from properties (names and
// defaults as in YCSB 0.17). Build it with NewWorkload; it is shared by all
// client threads.
type Workload struct {
	Table          string
	FieldNames     []string
	ReadAllFields  bool
	WriteAllFields bool
	DataIntegrity  bool
	// RecordCount is the number of records loaded (recordcount).
	RecordCount int64
	// InsertStart and InsertCount delimit the keys this client loads
	// (insertstart, insertcount).
	InsertStart, InsertCount int64
	// OperationCount is operationcount (0: no limit).
	OperationCount int64
	// Distribution is requestdistribution.
	Distribution string
	// Percentiles are hdrhistogram.percentiles.
	Percentiles []float64
	// Threads, TargetOps and MaxExecution are threadcount, target and
	// maxexecutiontime (seconds), the client's own properties.
	Threads      int
	TargetOps    float64
	MaxExecution time.Duration
	// StatusInterval is status.interval (seconds).
	StatusInterval time.Duration

	fieldLength   IntGenerator
	fieldLen      int64 // fieldlength, for dataintegrity values
	ops           Discrete
	keyChooser    IntGenerator
	fieldChooser  Uniform
	scanLength    IntGenerator
	keySequence   *Counter
	insertSeq     *AcknowledgedCounter
	ordered       bool
	zeroPadding   int
	retryLimit    int
	retryInterval time.Duration
}

// Property defaults that differ from "unset means zero".
const (
	defaultFieldCount  = 10
	defaultFieldLength = 100
)

// NewWorkload reads YCSB's core workload properties from p and checks
// them; a bad value is a *PropertyError.
func NewWorkload(p *Properties) (*Workload, error) {
	w := &Workload{Table: p.String("table", "usertable")}
	// The class name YCSB files carry; only the core workload exists here.
	if cls, ok := p.Lookup("workload"); ok && !strings.HasSuffix(cls, "CoreWorkload") {
		return nil, &PropertyError{Key: "workload", Value: cls, Want: "site.ycsb.workloads.CoreWorkload (the only workload implemented)"}
	}
	var err error
	geti := func(key string, def int64) int64 {
		if err != nil {
			return 0
		}
		var v int64
		v, err = p.Int64(key, def)
		return v
	}
	getf := func(key string, def float64) float64 {
		if err != nil {
			return 0
		}
		var v float64
		v, err = p.Float(key, def)
		return v
	}
	getb := func(key string, def bool) bool {
		if err != nil {
			return false
		}
		var v bool
		v, err = p.Bool(key, def)
		return v
	}

	fieldCount := geti("fieldcount", defaultFieldCount)
	prefix := p.String("fieldnameprefix", "field")
	w.fieldLen = geti("fieldlength", defaultFieldLength)
	minFieldLen := geti("minfieldlength", 1)
	w.ReadAllFields = getb("readallfields", true)
	w.WriteAllFields = getb("writeallfields", false)
	w.DataIntegrity = getb("dataintegrity", false)
	readP := getf("readproportion", 0.95)
	updateP := getf("updateproportion", 0.05)
	insertP := getf("insertproportion", 0)
	scanP := getf("scanproportion", 0)
	rmwP := getf("readmodifywriteproportion", 0)
	w.RecordCount = geti("recordcount", 0)
	w.InsertStart = geti("insertstart", 0)
	w.OperationCount = geti("operationcount", 0)
	minScan := geti("minscanlength", 1)
	maxScan := geti("maxscanlength", 1000)
	zeroPadding := geti("zeropadding", 1)
	hotData := getf("hotspotdatafraction", 0.2)
	hotOpn := getf("hotspotopnfraction", 0.8)
	retryLimit := geti("core_workload_insertion_retry_limit", 0)
	retryInterval := geti("core_workload_insertion_retry_interval", 3)
	threads := geti("threadcount", 1)
	w.TargetOps = getf("target", 0)
	maxExec := geti("maxexecutiontime", 0)
	statusInterval := geti("status.interval", 10)
	if err != nil {
		return nil, err
	}
	bad := func(key string, v any, want string) error {
		return &PropertyError{Key: key, Value: fmt.Sprint(v), Want: want}
	}
	switch {
	case fieldCount < 1:
		return nil, bad("fieldcount", fieldCount, "at least 1")
	case w.fieldLen < 1:
		return nil, bad("fieldlength", w.fieldLen, "at least 1")
	case minFieldLen < 1 || minFieldLen > w.fieldLen:
		return nil, bad("minfieldlength", minFieldLen, "between 1 and fieldlength")
	case w.RecordCount < 0:
		return nil, bad("recordcount", w.RecordCount, "a non-negative count")
	case w.InsertStart < 0:
		return nil, bad("insertstart", w.InsertStart, "a non-negative key number")
	case w.OperationCount < 0:
		return nil, bad("operationcount", w.OperationCount, "a non-negative count (0: no limit)")
	case minScan < 1 || maxScan < minScan:
		return nil, bad("maxscanlength", maxScan, fmt.Sprintf("at least minscanlength (%d), which must be at least 1", minScan))
	case zeroPadding < 1 || zeroPadding > 64:
		return nil, bad("zeropadding", zeroPadding, "between 1 and 64")
	case hotData < 0 || hotData > 1:
		return nil, bad("hotspotdatafraction", hotData, "a fraction between 0 and 1")
	case hotOpn < 0 || hotOpn > 1:
		return nil, bad("hotspotopnfraction", hotOpn, "a fraction between 0 and 1")
	case retryLimit < 0 || retryInterval < 0:
		return nil, bad("core_workload_insertion_retry_limit", retryLimit, "non-negative retry limit and interval")
	case threads < 1 || threads > 100000:
		return nil, bad("threadcount", threads, "between 1 and 100000")
	case w.TargetOps < 0 || math.IsNaN(w.TargetOps) || math.IsInf(w.TargetOps, 0):
		return nil, bad("target", w.TargetOps, "a non-negative rate in operations per second (0: unthrottled)")
	case maxExec < 0:
		return nil, bad("maxexecutiontime", maxExec, "a non-negative number of seconds (0: no limit)")
	case statusInterval < 1:
		return nil, bad("status.interval", statusInterval, "at least 1 second")
	}
	for _, kv := range []struct {
		k string
		v float64
	}{{"readproportion", readP}, {"updateproportion", updateP}, {"insertproportion", insertP}, {"scanproportion", scanP}, {"readmodifywriteproportion", rmwP}} {
		if kv.v < 0 || math.IsNaN(kv.v) || math.IsInf(kv.v, 0) {
			return nil, bad(kv.k, kv.v, "a non-negative proportion")
		}
	}
	if readP+updateP+insertP+scanP+rmwP <= 0 {
		return nil, bad("readproportion", readP, "operation proportions that are not all zero")
	}
	w.Threads, w.MaxExecution = int(threads), time.Duration(maxExec)*time.Second
	w.StatusInterval = time.Duration(statusInterval) * time.Second
	w.zeroPadding, w.retryLimit, w.retryInterval = int(zeroPadding), int(retryLimit), time.Duration(retryInterval)*time.Second

	for i := int64(0); i < fieldCount; i++ {
		w.FieldNames = append(w.FieldNames, prefix+strconv.FormatInt(i, 10))
	}
	w.fieldChooser = Uniform{0, fieldCount - 1}

	switch d := p.String("fieldlengthdistribution", "constant"); d {
	case "constant":
		w.fieldLength = Constant(w.fieldLen)
	case "uniform":
		w.fieldLength = Uniform{minFieldLen, w.fieldLen}
	case "zipfian":
		w.fieldLength = NewZipfian(minFieldLen, w.fieldLen)
	default:
		return nil, bad("fieldlengthdistribution", d, "constant, uniform or zipfian")
	}
	if w.DataIntegrity {
		if _, ok := w.fieldLength.(Constant); !ok {
			return nil, bad("fieldlengthdistribution", p.String("fieldlengthdistribution", ""), "constant when dataintegrity=true")
		}
	}

	if w.Percentiles, err = parsePercentiles(p.String("hdrhistogram.percentiles", "50,95,99,99.9")); err != nil {
		return nil, err
	}

	switch o := p.String("insertorder", "hashed"); o {
	case "hashed":
	case "ordered":
		w.ordered = true
	default:
		return nil, bad("insertorder", o, "hashed or ordered")
	}

	// insertcount: how many records this client loads, from insertstart.
	w.InsertCount = geti("insertcount", w.RecordCount-w.InsertStart)
	if err != nil {
		return nil, err
	}
	if w.InsertCount < 0 {
		return nil, bad("insertcount", w.InsertCount, "a non-negative count (recordcount - insertstart by default)")
	}
	if w.RecordCount == 0 && w.InsertCount == 0 {
		// YCSB takes recordcount=0 as "unlimited"; a run needs records.
		return nil, bad("recordcount", 0, "at least 1")
	}
	if w.RecordCount < w.InsertStart+w.InsertCount {
		return nil, bad("recordcount", w.RecordCount, fmt.Sprintf("at least insertstart + insertcount (%d)", w.InsertStart+w.InsertCount))
	}

	w.ops.Add(readP, OpRead)
	w.ops.Add(updateP, OpUpdate)
	w.ops.Add(insertP, OpInsert)
	w.ops.Add(scanP, OpScan)
	w.ops.Add(rmwP, OpReadModifyWrite)

	w.keySequence = NewCounter(w.InsertStart)
	w.insertSeq = NewAcknowledgedCounter(w.RecordCount)
	w.Distribution = p.String("requestdistribution", "uniform")
	lo, hi := w.InsertStart, w.InsertStart+w.InsertCount-1
	switch w.Distribution {
	case "uniform":
		w.keyChooser = Uniform{lo, hi}
	case "zipfian":
		// Leave room for the keys this run will insert, as YCSB does, so
		// new records are chosen too.
		expectedNew := int64(float64(w.OperationCount) * insertP * 2.0)
		w.keyChooser = NewScrambledZipfian(lo, hi+1+expectedNew)
	case "latest":
		w.keyChooser = NewSkewedLatest(w.insertSeq)
	case "hotspot":
		w.keyChooser = NewHotspot(lo, hi, hotData, hotOpn)
	default:
		return nil, bad("requestdistribution", w.Distribution, "zipfian, uniform, latest or hotspot")
	}

	switch d := p.String("scanlengthdistribution", "uniform"); d {
	case "uniform":
		w.scanLength = Uniform{minScan, maxScan}
	case "zipfian":
		w.scanLength = NewZipfian(minScan, maxScan)
	default:
		return nil, bad("scanlengthdistribution", d, "uniform or zipfian")
	}
	return w, nil
}

func parsePercentiles(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 100 {
			return nil, &PropertyError{Key: "hdrhistogram.percentiles", Value: s, Want: "comma-separated percentiles in (0, 100]"}
		}
		out = append(out, v)
	}
	return out, nil
}

// KeyName returns the row key of record number keynum: "user" followed by
// the number (FNV-hashed unless insertorder=ordered), zero-padded to
// zeropadding digits (YCSB's buildKeyName).
func (w *Workload) KeyName(keynum int64) string {
	if !w.ordered {
		keynum = FNVHash64(keynum)
	}
	v := strconv.FormatInt(keynum, 10)
	if pad := w.zeroPadding - len(v); pad > 0 {
		v = strings.Repeat("0", pad) + v
	}
	return "user" + v
}

// nextKeynum chooses the record of a transaction among those inserted
// completely (YCSB's nextKeynum).
func (w *Workload) nextKeynum(r *rand.Rand) int64 {
	last := w.insertSeq.Last()
	for i := 0; ; i++ {
		k := w.keyChooser.Next(r)
		if k <= last {
			return k
		}
		if i == 1000 { // only when the chooser's range is mostly beyond the records
			return k % (last + 1)
		}
	}
}

// thread is one client thread's state.
type thread struct {
	w   *Workload
	db  DB
	r   *rand.Rand
	m   *Measurements
	buf []byte // value arena, reused per operation
}

func (t *thread) measure(op string, start time.Time, err error) string {
	st := StatusOK
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		st = StatusNotFound
	default:
		st = StatusError
	}
	t.m.Measure(op, time.Since(start), st, err)
	return st
}

// randomValue returns n random printable bytes from the thread's arena
// (YCSB's RandomByteIterator draws printable characters too).
func (t *thread) randomValue(n int64) []byte {
	if int64(cap(t.buf)-len(t.buf)) < n {
		t.buf = make([]byte, 0, max(n, 16*1024))
	}
	v := t.buf[len(t.buf) : len(t.buf)+int(n)]
	t.buf = t.buf[:len(t.buf)+int(n)]
	for i := 0; i < len(v); {
		x := t.r.Uint64()
		for j := 0; j < 8 && i < len(v); j++ {
			v[i] = ' ' + byte((x&0xff)%95)
			x >>= 8
			i++
		}
	}
	return v
}

func (t *thread) value(key, field string) []byte {
	if t.w.DataIntegrity {
		return []byte(DeterministicValue(key, field, t.w.fieldLen))
	}
	return t.randomValue(t.w.fieldLength.Next(t.r))
}

// allValues builds a whole record (YCSB's buildValues).
func (t *thread) allValues(key string) Record {
	rec := make(Record, len(t.w.FieldNames))
	for i, f := range t.w.FieldNames {
		rec[i] = Field{Name: f, Value: t.value(key, f)}
	}
	return rec
}

// oneValue builds one random field (YCSB's buildSingleValue).
func (t *thread) oneValue(key string) Record {
	f := t.w.FieldNames[t.w.fieldChooser.Next(t.r)]
	return Record{{Name: f, Value: t.value(key, f)}}
}

func (t *thread) updateValues(key string) Record {
	if t.w.WriteAllFields {
		return t.allValues(key)
	}
	return t.oneValue(key)
}

func (t *thread) readFields() []string {
	if t.w.ReadAllFields {
		return nil
	}
	return []string{t.w.FieldNames[t.w.fieldChooser.Next(t.r)]}
}

// DeterministicValue is the value YCSB stores under dataintegrity=true:
// "key:field" followed by ":<Java hashCode of the string so far>" until
// size bytes, cut at size (YCSB's buildDeterministicValue).
func DeterministicValue(key, field string, size int64) string {
	var b strings.Builder
	b.WriteString(key)
	b.WriteByte(':')
	b.WriteString(field)
	for int64(b.Len()) < size {
		h := javaStringHash(b.String())
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(h)))
	}
	return b.String()[:size]
}

// javaStringHash is Java's String.hashCode for an ASCII string.
func javaStringHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
		h = 31*h + int32(s[i])
	}
	return h
}

// verify checks a record read under dataintegrity=true and measures it as
// VERIFY (YCSB's verifyRow).
func (t *thread) verify(key string, fields []string, rec Record) {
	start := time.Now()
	st := StatusOK
	var err error
	if len(rec) == 0 {
		st, err = StatusError, fmt.Errorf("record %s: no fields", key)
	}
	for _, f := range rec {
		if string(f.Value) != DeterministicValue(key, f.Name, t.w.fieldLen) {
			st, err = StatusUnexpectedState, fmt.Errorf("record %s field %s: value %.40q... is not the one written", key, f.Name, f.Value)
			break
		}
	}
	if st == StatusOK {
		want := fields
		if want == nil {
			want = t.w.FieldNames
		}
		for _, f := range want {
			if _, ok := rec.Get(f); !ok {
				st, err = StatusUnexpectedState, fmt.Errorf("record %s: field %s missing", key, f)
				break
			}
		}
	}
	t.m.Measure(OpVerify, time.Since(start), st, err)
}

// doInsert loads one record (YCSB's doInsert), retrying as
// core_workload_insertion_retry_limit says.
func (t *thread) doInsert(ctx context.Context) {
	keynum := t.w.keySequence.Next(t.r)
	key := t.w.KeyName(keynum)
	t.buf = t.buf[:0]
	values := t.allValues(key)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := t.db.Insert(ctx, t.w.Table, key, values)
		if t.measure(OpInsert, start, err) == StatusOK || attempt >= t.w.retryLimit || ctx.Err() != nil {
			return
		}
		// YCSB sleeps the interval with +-20% jitter.
		d := time.Duration(float64(t.w.retryInterval) * (0.8 + 0.4*t.r.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// doTransaction runs one operation of the mix (YCSB's doTransaction).
func (t *thread) doTransaction(ctx context.Context) {
	t.buf = t.buf[:0]
	switch t.w.ops.Next(t.r) {
	case OpRead:
		key := t.w.KeyName(t.w.nextKeynum(t.r))
		fields := t.readFields()
		start := time.Now()
		rec, err := t.db.Read(ctx, t.w.Table, key, fields)
		if t.measure(OpRead, start, err) == StatusOK && t.w.DataIntegrity {
			t.verify(key, fields, rec)
		}
	case OpUpdate:
		key := t.w.KeyName(t.w.nextKeynum(t.r))
		values := t.updateValues(key)
		start := time.Now()
		t.measure(OpUpdate, start, t.db.Update(ctx, t.w.Table, key, values))
	case OpInsert:
		keynum := t.w.insertSeq.Next(t.r)
		// Acknowledge even on failure, as YCSB does, so later keys become
		// choosable.
		defer t.w.insertSeq.Acknowledge(keynum)
		key := t.w.KeyName(keynum)
		values := t.allValues(key)
		start := time.Now()
		t.measure(OpInsert, start, t.db.Insert(ctx, t.w.Table, key, values))
	case OpScan:
		key := t.w.KeyName(t.w.nextKeynum(t.r))
		n := int(t.w.scanLength.Next(t.r))
		fields := t.readFields()
		start := time.Now()
		recs, err := t.db.Scan(ctx, t.w.Table, key, n, fields)
		if t.measure(OpScan, start, err) == StatusOK && t.w.DataIntegrity {
			for _, rec := range recs {
				t.verify(keyOf(rec, key), fields, stripKey(rec))
			}
		}
	case OpReadModifyWrite:
		key := t.w.KeyName(t.w.nextKeynum(t.r))
		fields := t.readFields()
		values := t.updateValues(key)
		start := time.Now()
		rec, err := t.db.ReadModifyWrite(ctx, t.w.Table, key, fields, values)
		if t.measure(OpReadModifyWrite, start, err) == StatusOK && t.w.DataIntegrity {
			t.verify(key, fields, rec)
		}
	}
}

// KeyField is the pseudo-field under which Scan results carry each
// record's key, so scanned records can be verified.
const KeyField = "_key"

func keyOf(rec Record, def string) string {
	if k, ok := rec.Get(KeyField); ok {
		return string(k)
	}
	return def
}

func stripKey(rec Record) Record {
	out := rec[:0:0]
	for _, f := range rec {
		if f.Name != KeyField {
			out = append(out, f)
		}
	}
	return out
}
