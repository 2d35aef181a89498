package thriftgw

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw/filterlang"
	"github.com/shaledb/shale/proto/hbase"
)

// cellTypePut is HBase's KeyValue.Type.Put code.
const cellTypePut = 4

// Timestamps: HBase milliseconds <-> Shale microseconds.

// latestTimestamp is HBase's HConstants.LATEST_TIMESTAMP (Long.MAX_VALUE):
// "now". HBase clients send it for puts and deletes without a timestamp
// and as the open end of a time range; the gateway maps it to the
// server-assigned timestamp and to "no upper bound". Taken literally it
// would be a cell timestamp at the end of time, which the tablet servers
// refuse (beyond the clock's maximum offset).
const latestTimestamp = math.MaxInt64

// explicitTS is a request's timestamp, or nil for none or LATEST_TIMESTAMP.
func explicitTS(ts *int64) *int64 {
	if ts == nil || *ts == latestTimestamp {
		return nil
	}
	return ts
}

// cellTS is the timestamp a column of a put or delete names: its own if it
// has one (LATEST_TIMESTAMP included), else the operation's.
func cellTS(own, op *int64) *int64 {
	if own != nil {
		return explicitTS(own)
	}
	return explicitTS(op)
}

func msToMicros(ms int64) int64 {
	if ms > math.MaxInt64/1000 {
		return math.MaxInt64
	}
	if ms < 0 {
		return 0
	}
	return ms * 1000
}

func microsToMs(us int64) int64 { return us / 1000 }

// rangeMsToMicros converts [min, max) milliseconds to Shale's [start, end)
// microseconds (end 0: unbounded).
func rangeMsToMicros(minMs, maxMs int64) (int64, int64, error) {
	if minMs < 0 || maxMs < 0 || maxMs < minMs {
		return 0, 0, illegalf("invalid time range [%d, %d)", minMs, maxMs)
	}
	start := msToMicros(minMs)
	end := int64(0)
	if maxMs <= math.MaxInt64/1000 {
		end = maxMs * 1000
	}
	return start, end, nil
}

// exactMsToMicros is the microsecond range of one millisecond.
func exactMsToMicros(ms int64) (int64, int64, error) {
	if ms < 0 {
		return 0, 0, illegalf("invalid timestamp %d", ms)
	}
	if ms >= math.MaxInt64/1000 {
		return msToMicros(ms), 0, nil
	}
	return ms * 1000, (ms + 1) * 1000, nil
}

// errIllegal marks a bad request (reported as TIOError or TIllegalArgument
// by the method's declared exceptions).
type errIllegal struct{ msg string }

func (e *errIllegal) Error() string { return e.msg }

func illegalf(format string, args ...any) error {
	return &errIllegal{msg: fmt.Sprintf(format, args...)}
}

func unsupportedf(format string, args ...any) error {
	return &errIllegal{msg: "not supported by Shale: " + fmt.Sprintf(format, args...)}
}

// ioError converts any error to the TIOError HBase clients expect.
func ioError(err error) error {
	if err == nil {
		return nil
	}
	var te *hbase.TIOError
	if errors.As(err, &te) {
		return te
	}
	var ia *hbase.TIllegalArgument
	if errors.As(err, &ia) {
		return ia
	}
	msg := err.Error()
	switch {
	case errors.Is(err, kvclient.ErrTableNotFound):
		msg = "TableNotFoundException: " + msg
	case errors.Is(err, kvclient.ErrTableExists):
		msg = "TableExistsException: " + msg
	case errors.Is(err, kvclient.ErrInvalidArgument):
		msg = "IllegalArgumentException: " + msg
	case errors.Is(err, kvclient.ErrQuotaExceeded):
		// HBase's name for a quota's refusal, with its wait interval.
		wait, _ := kvclient.QuotaRetryAfter(err)
		msg = fmt.Sprintf("RpcThrottlingException: wait %v: %s", wait, msg)
	case errors.Is(err, kvclient.ErrDiskFull):
		// Hadoop's name for it; nothing was written, retry later.
		msg = "DiskOutOfSpaceException: " + msg
	case errors.Is(err, kvclient.ErrServerBusy):
		// HBase's name for an overloaded region, which its clients back
		// off from and retry; the gateway's kvclient already waited out
		// the stores' retry-after hints until the call's deadline.
		msg = fmt.Sprintf("RegionTooBusyException: %s (retry after %v)", msg, max(kvclient.RetryAfter(err), 10*time.Millisecond))
	}
	return &hbase.TIOError{Message: &msg}
}

func illegalArg(err error) error {
	msg := err.Error()
	return &hbase.TIllegalArgument{Message: &msg}
}

// tableName maps an HBase table name ("t", "default:t" or "ns:t") to
// Shale's (namespace.go).
func tableName(b []byte) (string, error) {
	s := string(b)
	if s == "" {
		return "", illegalf("empty table name")
	}
	ns, q, ok := strings.Cut(s, ":")
	if !ok {
		ns, q = builtinNamespace, s
	}
	if q == "" {
		return "", illegalf("empty table name %q", b)
	}
	return shaleName(ns, q)
}

func tTableName(t *hbase.TTableName) (string, error) {
	if t == nil {
		return "", illegalf("missing table name")
	}
	return shaleName(string(t.Ns), string(t.Qualifier))
}

func toTDescriptor(ti *kvclient.TableInfo, ns nsSet) *hbase.TTableDescriptor {
	d := &hbase.TTableDescriptor{TableName: ns.tTableName(ti.Name)}
	for _, f := range ti.Families {
		cf := &hbase.TColumnFamilyDescriptor{Name: []byte(f.Name)}
		mv := int32(math.MaxInt32)
		if f.MaxVersions > 0 && f.MaxVersions < math.MaxInt32 {
			mv = int32(f.MaxVersions)
		}
		cf.MaxVersions = &mv
		ttl := int32(math.MaxInt32) // HBase's HConstants.FOREVER
		if f.MaxAge > 0 && f.MaxAge/time.Second < math.MaxInt32 {
			ttl = int32(max(1, f.MaxAge/time.Second))
		}
		cf.TimeToLive = &ttl
		d.Columns = append(d.Columns, cf)
	}
	return d
}

func fromTDescriptor(d *hbase.TTableDescriptor) (string, []kvclient.Family, error) {
	if d == nil {
		return "", nil, illegalf("missing table descriptor")
	}
	name, err := tTableName(d.TableName)
	if err != nil {
		return "", nil, err
	}
	var fams []kvclient.Family
	for _, c := range d.Columns {
		if c == nil {
			continue
		}
		f := kvclient.Family{Name: string(c.Name)}
		if c.MaxVersions != nil && *c.MaxVersions > 0 && *c.MaxVersions != math.MaxInt32 {
			f.MaxVersions = uint32(*c.MaxVersions)
		}
		if c.TimeToLive != nil && *c.TimeToLive > 0 && *c.TimeToLive != math.MaxInt32 {
			f.MaxAge = time.Duration(*c.TimeToLive) * time.Second
		}
		fams = append(fams, f)
	}
	return name, fams, nil
}

func toTResult(r *kvclient.Row) *hbase.TResult_ {
	out := &hbase.TResult_{ColumnValues: []*hbase.TColumnValue{}}
	if r == nil || len(r.Cells) == 0 {
		return out
	}
	out.Row = r.Key
	typ := int8(cellTypePut)
	for _, c := range r.Cells {
		ts := microsToMs(c.Timestamp)
		out.ColumnValues = append(out.ColumnValues, &hbase.TColumnValue{
			Family: []byte(c.Family), Qualifier: c.Qualifier, Value: c.Value, Timestamp: &ts, Type: &typ,
		})
	}
	return out
}

// readOpts converts the read part of a TGet/TScan.
func readOpts(cols []*hbase.TColumn, ts *int64, tr *hbase.TTimeRange, maxVersions int32) ([]kvclient.ReadOption, readShape, error) {
	var opts []kvclient.ReadOption
	var rd readShape
	var fams []string
	var qcols []kvclient.Column
	for _, c := range cols {
		if c == nil || len(c.Family) == 0 {
			return nil, rd, illegalf("column without a family")
		}
		if c.Qualifier == nil {
			fams = append(fams, string(c.Family))
		} else {
			qcols = append(qcols, kvclient.Column{Family: string(c.Family), Qualifier: c.Qualifier})
		}
	}
	rd.Families, rd.Columns, rd.TimeBounded = fams, qcols, ts != nil || tr != nil
	if len(fams) > 0 {
		opts = append(opts, kvclient.Families(fams...))
	}
	if len(qcols) > 0 {
		opts = append(opts, kvclient.Columns(qcols...))
	}
	switch {
	case ts != nil:
		if *ts == latestTimestamp {
			// As HBase's TimeRange.at, which refuses it.
			return nil, rd, illegalf("invalid timestamp %d (LATEST_TIMESTAMP) to read at; leave it unset to read the newest versions", *ts)
		}
		start, end, err := exactMsToMicros(*ts)
		if err != nil {
			return nil, rd, err
		}
		opts = append(opts, kvclient.TimeRange(start, end))
	case tr != nil:
		start, end, err := rangeMsToMicros(tr.MinStamp, tr.MaxStamp)
		if err != nil {
			return nil, rd, err
		}
		opts = append(opts, kvclient.TimeRange(start, end))
	}
	if maxVersions < 0 {
		return nil, rd, illegalf("maxVersions %d must not be negative", maxVersions)
	}
	if maxVersions > 1 {
		opts = append(opts, kvclient.MaxVersions(uint32(maxVersions)))
	}
	return opts, rd, nil
}

// getReadOpts converts a TGet: its read options (with what its filter
// pushes down) and its filter (nil: none), which the caller applies to
// the row read.
func getReadOpts(g *hbase.TGet) ([]kvclient.ReadOption, *filterlang.Filter, error) {
	if g == nil {
		return nil, nil, illegalf("missing TGet")
	}
	if len(g.Row) == 0 {
		return nil, nil, illegalf("TGet: empty row key")
	}
	f, err := parseFilter(g.FilterString, g.FilterBytes)
	if err != nil {
		return nil, nil, err
	}
	mv := int32(1)
	if g.MaxVersions != nil {
		mv = *g.MaxVersions
	}
	opts, rd, err := readOpts(g.Columns, g.Timestamp, g.TimeRange, mv)
	if err != nil {
		return nil, nil, err
	}
	_, push := pushReadOpts(f, rd)
	return append(opts, push...), f, nil
}

// putMutations converts a TPut.
func putMutations(p *hbase.TPut) ([]kvclient.Mutation, error) {
	if p == nil {
		return nil, illegalf("missing TPut")
	}
	if len(p.Row) == 0 {
		return nil, illegalf("TPut: empty row key")
	}
	if len(p.ColumnValues) == 0 {
		return nil, illegalf("TPut for row %q has no column values", p.Row)
	}
	muts := make([]kvclient.Mutation, 0, len(p.ColumnValues))
	for _, cv := range p.ColumnValues {
		if cv == nil || len(cv.Family) == 0 {
			return nil, illegalf("TPut: column value without a family")
		}
		tp := cellTS(cv.Timestamp, p.Timestamp)
		if tp == nil {
			muts = append(muts, kvclient.SetCell(string(cv.Family), cv.Qualifier, cv.Value))
			continue
		}
		ts := *tp
		if ts < 0 {
			return nil, illegalf("TPut: negative timestamp %d", ts)
		}
		us := msToMicros(ts)
		if us == 0 {
			// Shale reads 0 as "commit timestamp"; the earliest explicit
			// time it can store is 1µs.
			us = 1
		}
		muts = append(muts, kvclient.SetCellAt(string(cv.Family), cv.Qualifier, cv.Value, us))
	}
	return muts, nil
}

// deleteNeedsNewest reports the columns of a TDelete that delete "the
// newest version" (DELETE_COLUMN without a timestamp); those need a read.
func deleteNeedsNewest(d *hbase.TDelete) []kvclient.Column {
	if d.DeleteType != hbase.TDeleteType_DELETE_COLUMN {
		return nil
	}
	var out []kvclient.Column
	for _, c := range d.Columns {
		if c != nil && c.Qualifier != nil && cellTS(c.Timestamp, d.Timestamp) == nil {
			out = append(out, kvclient.Column{Family: string(c.Family), Qualifier: c.Qualifier})
		}
	}
	return out
}

// deleteMutations converts a TDelete. newest gives the timestamp (µs) of
// the newest version of the columns deleteNeedsNewest named (absent: no
// such version, nothing to delete).
func deleteMutations(d *hbase.TDelete, newest func(family string, qualifier []byte) (int64, bool)) ([]kvclient.Mutation, error) {
	if d == nil {
		return nil, illegalf("missing TDelete")
	}
	if len(d.Row) == 0 {
		return nil, illegalf("TDelete: empty row key")
	}
	if len(d.Columns) == 0 {
		if explicitTS(d.Timestamp) != nil {
			return nil, unsupportedf("deleting a whole row up to a timestamp")
		}
		return []kvclient.Mutation{kvclient.DeleteRow()}, nil
	}
	var muts []kvclient.Mutation
	for _, c := range d.Columns {
		if c == nil || len(c.Family) == 0 {
			return nil, illegalf("TDelete: column without a family")
		}
		fam := string(c.Family)
		ts := cellTS(c.Timestamp, d.Timestamp)
		if c.Qualifier == nil {
			if d.DeleteType == hbase.TDeleteType_DELETE_FAMILY_VERSION {
				return nil, unsupportedf("DELETE_FAMILY_VERSION")
			}
			if ts != nil {
				return nil, unsupportedf("deleting a column family up to a timestamp")
			}
			muts = append(muts, kvclient.DeleteFamily(fam))
			continue
		}
		switch d.DeleteType {
		case hbase.TDeleteType_DELETE_COLUMNS:
			if ts == nil {
				muts = append(muts, kvclient.DeleteColumn(fam, c.Qualifier))
			} else {
				if *ts < 0 {
					return nil, illegalf("TDelete: negative timestamp %d", *ts)
				}
				_, end, _ := exactMsToMicros(*ts)
				muts = append(muts, kvclient.DeleteColumnRange(fam, c.Qualifier, 0, end))
			}
		case hbase.TDeleteType_DELETE_COLUMN:
			if ts == nil {
				us, ok := newest(fam, c.Qualifier)
				if !ok {
					continue
				}
				muts = append(muts, kvclient.DeleteColumnRange(fam, c.Qualifier, us, us+1))
			} else {
				start, end, err := exactMsToMicros(*ts)
				if err != nil {
					return nil, err
				}
				muts = append(muts, kvclient.DeleteColumnRange(fam, c.Qualifier, start, end))
			}
		case hbase.TDeleteType_DELETE_FAMILY, hbase.TDeleteType_DELETE_FAMILY_VERSION:
			return nil, illegalf("TDelete: delete type %v with a column qualifier", d.DeleteType)
		default:
			return nil, illegalf("TDelete: unknown delete type %d", d.DeleteType)
		}
	}
	return muts, nil
}

// condition converts HBase's check (expected value on the left of the
// operator) to a Shale Condition (stored value on the left).
func condition(family, qualifier []byte, op hbase.TCompareOperator, value []byte) (kvclient.Condition, error) {
	if len(family) == 0 {
		return kvclient.Condition{}, illegalf("check: empty family")
	}
	c := kvclient.Condition{Family: string(family), Qualifier: qualifier, Value: value}
	if len(value) == 0 {
		switch op {
		case hbase.TCompareOperator_NOT_EQUAL:
			c.Op = kvclient.Exists
		case hbase.TCompareOperator_NO_OP:
			return c, unsupportedf("compare operator NO_OP")
		default:
			c.Op = kvclient.NotExists
		}
		c.Value = nil
		return c, nil
	}
	switch op {
	case hbase.TCompareOperator_EQUAL:
		c.Op = kvclient.Equal
	case hbase.TCompareOperator_NOT_EQUAL:
		c.Op = kvclient.NotEqual
	case hbase.TCompareOperator_LESS: // expected < stored
		c.Op = kvclient.Greater
	case hbase.TCompareOperator_LESS_OR_EQUAL:
		c.Op = kvclient.GreaterOrEqual
	case hbase.TCompareOperator_GREATER:
		c.Op = kvclient.Less
	case hbase.TCompareOperator_GREATER_OR_EQUAL:
		c.Op = kvclient.LessOrEqual
	default:
		return c, unsupportedf("compare operator %v", op)
	}
	return c, nil
}

// after returns the smallest key greater than k.
func after(k []byte) []byte {
	return append(bytes.Clone(k), 0)
}
