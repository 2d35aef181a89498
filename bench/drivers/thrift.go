package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/shaledb/shale/bench/ycsb"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/proto/hbase"
)

// Thrift is the driver for Shale's HBase Thrift2 gateway. A Thrift
// connection carries one call at a time, so every session has its own
// connection (as every YCSB thread has its own HBase client).
type Thrift struct {
	addr            string
	framed, compact bool
	timeout         time.Duration
	table, family   []byte
	tls             *security.Reloader // nil: plaintext
}

var _ ycsb.Driver = (*Thrift)(nil)

// OpenThrift checks the gateway at cfg.Thrift and creates the workload's
// table (pre-split) when missing. Properties thrift.framed and
// thrift.compact select the framed transport and the compact protocol
// (both false by default, as HBase's Thrift2 server); thrift.timeout is
// the socket timeout (default 10s).
func OpenThrift(ctx context.Context, cfg Config) (*Thrift, error) {
	if cfg.Thrift == "" {
		return nil, errors.New("target thrift needs --thrift HOST:PORT (the gateway)")
	}
	family, tablets, err := tableSettings(cfg.Props)
	if err != nil {
		return nil, err
	}
	t := &Thrift{addr: cfg.Thrift, table: []byte(cfg.Workload.Table), family: []byte(family), tls: cfg.TLS}
	if t.framed, err = cfg.Props.Bool("thrift.framed", false); err != nil {
		return nil, err
	}
	if t.compact, err = cfg.Props.Bool("thrift.compact", false); err != nil {
		return nil, err
	}
	if t.timeout, err = opTimeout(cfg.Props, "thrift.timeout"); err != nil {
		return nil, err
	}
	s, err := t.dial()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	tn := &hbase.TTableName{Qualifier: t.table}
	exists, err := s.c.TableExists(ctx, tn)
	if err != nil {
		return nil, fmt.Errorf("thrift gateway %s: tableExists: %w", t.addr, err)
	}
	if !exists {
		one := int32(1)
		desc := &hbase.TTableDescriptor{TableName: tn, Columns: []*hbase.TColumnFamilyDescriptor{{Name: t.family, MaxVersions: &one}}}
		if err := s.c.CreateTable(ctx, desc, SplitRows(tablets)); err != nil {
			// Another client may have created it meanwhile.
			if ok, err2 := s.c.TableExists(ctx, tn); err2 != nil || !ok {
				return nil, fmt.Errorf("thrift gateway %s: create table %s: %w", t.addr, t.table, err)
			}
		}
	}
	return t, nil
}

type thriftDB struct {
	t     *Thrift
	trans thrift.TTransport
	c     *hbase.THBaseServiceClient
	// broken is set after a transport error: the connection may hold half
	// a reply, so the next operation reconnects.
	broken bool
}

// check notes a transport error so the next operation reconnects.
func (d *thriftDB) check(err error) error {
	var te thrift.TTransportException
	if errors.As(err, &te) {
		d.broken = true
	}
	return err
}

// ready reconnects after a transport error.
func (d *thriftDB) ready() error {
	if !d.broken {
		return nil
	}
	n, err := d.t.dial()
	if err != nil {
		return err
	}
	d.trans.Close()
	d.trans, d.c, d.broken = n.trans, n.c, false
	return nil
}

func (t *Thrift) dial() (*thriftDB, error) {
	cfg := &thrift.TConfiguration{ConnectTimeout: t.timeout, SocketTimeout: t.timeout}
	var trans thrift.TTransport = thrift.NewTSocketConf(t.addr, cfg)
	if t.tls != nil {
		host, _, err := net.SplitHostPort(t.addr)
		if err != nil {
			return nil, fmt.Errorf("thrift gateway address %q: %w", t.addr, err)
		}
		cfg.TLSConfig = t.tls.ClientTLS(host)
		trans = thrift.NewTSSLSocketConf(t.addr, cfg)
	}
	if t.framed {
		trans = thrift.NewTFramedTransportConf(trans, cfg)
	} else {
		trans = thrift.NewTBufferedTransport(trans, 64*1024)
	}
	if err := trans.Open(); err != nil {
		return nil, fmt.Errorf("connect to thrift gateway %s: %w", t.addr, err)
	}
	var pf thrift.TProtocolFactory = thrift.NewTBinaryProtocolFactoryConf(cfg)
	if t.compact {
		pf = thrift.NewTCompactProtocolFactoryConf(cfg)
	}
	return &thriftDB{t: t, trans: trans, c: hbase.NewTHBaseServiceClientFactory(trans, pf)}, nil
}

// Session opens a connection to the gateway.
func (t *Thrift) Session(context.Context) (ycsb.DB, error) { return t.dial() }

// Close does nothing: sessions own their connections.
func (t *Thrift) Close() error { return nil }

func (d *thriftDB) columns(fields []string) []*hbase.TColumn {
	if fields == nil {
		return []*hbase.TColumn{{Family: d.t.family}}
	}
	cols := make([]*hbase.TColumn, len(fields))
	for i, f := range fields {
		cols[i] = &hbase.TColumn{Family: d.t.family, Qualifier: []byte(f)}
	}
	return cols
}

func (d *thriftDB) record(r *hbase.TResult_) ycsb.Record {
	rec := make(ycsb.Record, 0, len(r.ColumnValues))
	for _, c := range r.ColumnValues {
		rec = append(rec, ycsb.Field{Name: string(c.Qualifier), Value: c.Value})
	}
	return rec
}

func (d *thriftDB) put(key string, values ycsb.Record) *hbase.TPut {
	p := &hbase.TPut{Row: []byte(key), ColumnValues: make([]*hbase.TColumnValue, len(values))}
	for i, f := range values {
		p.ColumnValues[i] = &hbase.TColumnValue{Family: d.t.family, Qualifier: []byte(f.Name), Value: f.Value}
	}
	return p
}

func (d *thriftDB) Read(ctx context.Context, _, key string, fields []string) (ycsb.Record, error) {
	if err := d.ready(); err != nil {
		return nil, err
	}
	r, err := d.c.Get(ctx, d.t.table, &hbase.TGet{Row: []byte(key), Columns: d.columns(fields)})
	if err != nil {
		return nil, d.check(err)
	}
	if len(r.GetColumnValues()) == 0 {
		return nil, ycsb.ErrNotFound
	}
	return d.record(r), nil
}

func (d *thriftDB) Scan(ctx context.Context, _, startKey string, count int, fields []string) ([]ycsb.Record, error) {
	if err := d.ready(); err != nil {
		return nil, err
	}
	n := int32(count)
	rs, err := d.c.GetScannerResults(ctx, d.t.table, &hbase.TScan{StartRow: []byte(startKey), Columns: d.columns(fields), Caching: &n, MaxVersions: 1}, n)
	if err != nil {
		return nil, d.check(err)
	}
	out := make([]ycsb.Record, len(rs))
	for i, r := range rs {
		out[i] = append(d.record(r), ycsb.Field{Name: ycsb.KeyField, Value: r.Row})
	}
	return out, nil
}

func (d *thriftDB) Update(ctx context.Context, _, key string, values ycsb.Record) error {
	if err := d.ready(); err != nil {
		return err
	}
	return d.check(d.c.Put(ctx, d.t.table, d.put(key, values)))
}

func (d *thriftDB) Insert(ctx context.Context, _, key string, values ycsb.Record) error {
	return d.Update(ctx, "", key, values)
}

// ReadModifyWrite reads the record, then checkAndPut with the first
// written column's value as read (empty: must not exist), retrying when
// another writer changed it in between.
func (d *thriftDB) ReadModifyWrite(ctx context.Context, _, key string, fields []string, values ycsb.Record) (ycsb.Record, error) {
	if len(values) == 0 {
		return d.Read(ctx, "", key, fields)
	}
	check := values[0].Name
	readFields := fields
	if fields != nil && !slices.Contains(fields, check) {
		readFields = append(slices.Clip(fields), check)
	}
	put := d.put(key, values)
	for attempt := 0; attempt < maxRMWAttempts; attempt++ {
		rec, err := d.Read(ctx, "", key, readFields)
		if err != nil {
			return nil, err
		}
		expected, _ := rec.Get(check)
		ok, err := d.c.CheckAndPut(ctx, d.t.table, []byte(key), d.t.family, []byte(check), expected, put)
		if err != nil {
			return nil, d.check(err)
		}
		if ok {
			return onlyFields(rec, fields), nil
		}
	}
	return nil, errRMWConflict{key}
}

func (d *thriftDB) Close() error { return d.trans.Close() }
