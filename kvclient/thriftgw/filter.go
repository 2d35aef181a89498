package thriftgw

import (
	"bytes"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw/filterlang"
)

// The filter language (filterlang) on TGet/TScan.filterString and Thrift1
// scans: what the tablet servers can do is pushed down (filterlang's
// PushDown: the row range, a kvclient.RowFilter, a family), the gateway
// evaluates the whole filter on what comes back.

// parseFilter parses a request's filter string (nil: none).
func parseFilter(filterString, filterBytes []byte) (*filterlang.Filter, error) {
	if len(filterBytes) > 0 {
		return nil, unsupportedf("filterBytes (serialized Java filters); send the filter as filterString")
	}
	if len(filterString) == 0 {
		return nil, nil
	}
	f, err := filterlang.Parse(string(filterString))
	if err != nil {
		// The methods taking filters declare only TIOError (an undeclared
		// TIllegalArgument would reach HBase's clients as "unknown
		// result"), so the kind leads the message, as HBase's Java name.
		return nil, &errIllegal{msg: "IllegalArgumentException: " + err.Error()}
	}
	return f, nil
}

// readShape is a read's column selection and time bounds, for PushDown.
type readShape = filterlang.Read

// pushReadOpts returns the read options a filter's push-down adds to a
// read of shape rd.
func pushReadOpts(f *filterlang.Filter, rd readShape) (filterlang.PushDown, []kvclient.ReadOption) {
	if f == nil {
		return filterlang.PushDown{}, nil
	}
	p := f.PushDown(rd)
	var opts []kvclient.ReadOption
	if p.Filter != nil {
		opts = append(opts, kvclient.WithFilter(*p.Filter))
	}
	if p.Family != "" {
		opts = append(opts, kvclient.Families(p.Family))
	}
	return p, opts
}

// narrowScan intersects a scan's [Start, End) with a push-down's range;
// false if nothing is left.
func narrowScan(o *kvclient.ScanOptions, p filterlang.PushDown) bool {
	if p.Start != nil && (o.Start == nil || bytes.Compare(p.Start, o.Start) > 0) {
		o.Start = p.Start
	}
	if p.End != nil && (o.End == nil || bytes.Compare(p.End, o.End) < 0) {
		o.End = p.End
	}
	return o.End == nil || bytes.Compare(o.Start, o.End) < 0
}

// filterRow applies a filter to one row read by a get (nil filter: the
// row as read).
func filterRow(f *filterlang.Filter, r *kvclient.Row) *kvclient.Row {
	if f == nil || r == nil {
		return r
	}
	out, _ := f.NewScan(false).Row(r)
	return out
}
