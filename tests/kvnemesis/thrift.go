package kvnemesis

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
)

// latestTimestamp is HBase's HConstants.LATEST_TIMESTAMP: "now".
const latestTimestamp = math.MaxInt64

// errThriftUnknown marks a failed Thrift write: its outcome is unknown.
var errThriftUnknown = fmt.Errorf("thrift call failed: %w", kvclient.ErrAmbiguous)

// thriftWorker issues HBase Thrift2 calls through the gateway. A Thrift
// error does not tell whether a write applied, so every failed write is
// unknown.
type thriftWorker struct {
	*worker
	table []byte
	addr  string
	trans thrift.TTransport
	cl    *hbase.THBaseServiceClient
}

func (w *thriftWorker) connect() error {
	if w.cl != nil {
		return nil
	}
	cfg := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: opTimeout}
	trans := thrift.NewTBufferedTransport(thrift.NewTSocketConf(w.addr, cfg), 8192)
	if err := trans.Open(); err != nil {
		return err
	}
	pf := thrift.NewTBinaryProtocolFactoryConf(cfg)
	w.trans = trans
	w.cl = hbase.NewTHBaseServiceClient(thrift.NewTStandardClient(pf.GetProtocol(trans), pf.GetProtocol(trans)))
	return nil
}

// reset drops the connection after an error: a timed-out call may leave
// its reply in the stream.
func (w *thriftWorker) reset() {
	if w.trans != nil {
		w.trans.Close()
	}
	w.trans, w.cl = nil, nil
}

func (w *thriftWorker) close() { w.reset() }

func (w *thriftWorker) step(ctx context.Context) {
	if err := w.connect(); err != nil {
		w.h.count("thrift-connect-error")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var err error
	switch r := w.rng.IntN(100); {
	case r < 25:
		err = w.get(ctx)
	case r < 50:
		err = w.put(ctx)
	case r < 70:
		err = w.putMultiple(ctx)
	case r < 85:
		err = w.checkAndPut(ctx)
	default:
		err = w.deleteSingle(ctx)
	}
	if err != nil {
		w.reset()
	}
}

// tput draws a put of 1-3 cells of colA..colC: server timestamp (none, or
// LATEST_TIMESTAMP, which HBase reads as now) or an old one.
func (w *thriftWorker) tput(row string) (*hbase.TPut, []mutation) {
	p := &hbase.TPut{Row: []byte(row)}
	var ms []mutation
	for range 1 + w.rng.IntN(3) {
		m := mutation{Kind: mutSet, Col: pick(w.rng, []string{colA, colB, colC}), Val: w.value()}
		f, q := splitCol(m.Col)
		cv := &hbase.TColumnValue{Family: []byte(f), Qualifier: q, Value: []byte(m.Val)}
		switch w.rng.IntN(4) {
		case 0:
			ts := int64(latestTimestamp)
			cv.Timestamp = &ts
		case 1:
			m.TS = pick(w.rng, oldTimestamps)
			ms := m.TS / 1000
			cv.Timestamp = &ms
		}
		p.ColumnValues = append(p.ColumnValues, cv)
		ms = append(ms, m)
	}
	return p, ms
}

func (w *thriftWorker) get(ctx context.Context) error {
	in := input{Row: w.row(), Kind: opRead, Versions: 1 + w.rng.IntN(3), Desc: "thrift get"}
	g := &hbase.TGet{Row: []byte(in.Row)}
	v := int32(in.Versions)
	g.MaxVersions = &v
	if w.rng.IntN(2) == 0 {
		in.Cols = []string{pick(w.rng, []string{colA, colB, colC})}
		f, q := splitCol(in.Cols[0])
		g.Columns = []*hbase.TColumn{{Family: []byte(f), Qualifier: q}}
	}
	call := w.h.now()
	res, err := w.cl.Get(ctx, w.table, g)
	ret := w.h.now()
	w.h.count("thrift get")
	if err != nil {
		return err
	}
	got := map[string][]string{}
	for _, cv := range res.GetColumnValues() {
		col := string(cv.Family) + ":" + string(cv.Qualifier)
		got[col] = append(got[col], string(cv.Value))
	}
	w.h.add(w.id, in, output{Read: got}, call, ret)
	return nil
}

func (w *thriftWorker) put(ctx context.Context) error {
	in := input{Row: w.row(), Kind: opWrite, Desc: "thrift put"}
	p, ms := w.tput(in.Row)
	in.Groups = [][]mutation{ms}
	call := w.h.now()
	err := w.cl.Put(ctx, w.table, p)
	ret := w.h.now()
	w.h.count("thrift put")
	w.h.add(w.id, in, output{Unknown: err != nil}, call, ret)
	return err
}

// putMultiple sends 2-5 puts, often several for one row (HBase applies
// each, in order).
func (w *thriftWorker) putMultiple(ctx context.Context) error {
	n := 2 + w.rng.IntN(4)
	rows := make([]string, n)
	groups := make([][]mutation, n)
	var puts []*hbase.TPut
	for i := range n {
		rows[i] = w.row()
		if i > 0 && w.rng.IntN(2) == 0 {
			rows[i] = rows[w.rng.IntN(i)]
		}
		var p *hbase.TPut
		p, groups[i] = w.tput(rows[i])
		puts = append(puts, p)
	}
	call := w.h.now()
	err := w.cl.PutMultiple(ctx, w.table, puts)
	ret := w.h.now()
	w.h.count("thrift putMultiple")
	errs := make([]error, n)
	for i := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("%w: %v", errThriftUnknown, err)
		}
	}
	w.recordBatch(rows, groups, errs, call, ret, "thrift putMultiple")
	return err
}

func (w *thriftWorker) checkAndPut(ctx context.Context) error {
	in := input{Row: w.row(), Kind: opCheckAndMutate, Desc: "thrift checkAndPut"}
	p, ms := w.tput(in.Row)
	in.Groups = [][]mutation{ms}
	in.Cond = condition{Col: colA, Op: 1} // NOT_EXISTS
	var value []byte
	if w.rng.IntN(2) == 0 {
		in.Cond = condition{Col: colA, Op: 2, Value: fmt.Sprintf("v%d.%d", w.rng.IntN(6), w.rng.IntN(w.seq+1))}
		value = []byte(in.Cond.Value)
	}
	f, q := splitCol(colA)
	call := w.h.now()
	ok, err := w.cl.CheckAndPut(ctx, w.table, []byte(in.Row), []byte(f), q, value, p)
	ret := w.h.now()
	w.h.count("thrift checkAndPut")
	w.h.add(w.id, in, output{Unknown: err != nil, Matched: ok}, call, ret)
	return err
}

func (w *thriftWorker) deleteSingle(ctx context.Context) error {
	in := input{Row: w.row(), Kind: opWrite, Desc: "thrift deleteSingle"}
	d := &hbase.TDelete{Row: []byte(in.Row), DeleteType: hbase.TDeleteType_DELETE_COLUMNS}
	switch w.rng.IntN(3) {
	case 0:
		col := pick(w.rng, []string{colA, colB, colC})
		f, q := splitCol(col)
		d.Columns = []*hbase.TColumn{{Family: []byte(f), Qualifier: q}}
		in.Groups = [][]mutation{{{Kind: mutDeleteColumn, Col: col}}}
	case 1:
		fam := pick(w.rng, []string{famF, famG})
		d.DeleteType = hbase.TDeleteType_DELETE_FAMILY
		d.Columns = []*hbase.TColumn{{Family: []byte(fam)}}
		in.Groups = [][]mutation{{{Kind: mutDeleteFamily, Fam: fam}}}
	default:
		in.Groups = [][]mutation{{{Kind: mutDeleteRow}}}
	}
	call := w.h.now()
	err := w.cl.DeleteSingle(ctx, w.table, d)
	ret := w.h.now()
	w.h.count("thrift deleteSingle")
	w.h.add(w.id, in, output{Unknown: err != nil}, call, ret)
	return err
}
