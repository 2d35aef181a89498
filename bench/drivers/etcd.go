package drivers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/shaledb/shale/bench/ycsb"
)

// Etcd is the driver for etcd, the baseline. One client (one gRPC
// connection balancing over the endpoints) is shared by every session,
// as etcd's own benchmark tool does by default.
type Etcd struct {
	c          *clientv3.Client
	fieldCount int
	timeout    time.Duration
	// windowed scans read growing windows of the key space rather than
	// one range to the end of the table (see Scan); cut and streak are
	// the window size learned across sessions.
	windowed bool
	cut      atomic.Int32
	streak   atomic.Int32
}

var _ ycsb.Driver = (*Etcd)(nil)

// OpenEtcd connects to cfg.Etcd and checks that the cluster answers.
// Property etcd.timeout bounds each operation (default 10s).
func OpenEtcd(ctx context.Context, cfg Config) (*Etcd, error) {
	if len(cfg.Etcd) == 0 {
		return nil, errors.New("target etcd needs --etcd-endpoints HOST:PORT,...")
	}
	timeout, err := opTimeout(cfg.Props, "etcd.timeout")
	if err != nil {
		return nil, err
	}
	windowed, err := cfg.Props.Bool("etcd.scanwindow", true)
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Etcd,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", cfg.Etcd, err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := c.Get(pctx, "ycsb-probe"); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %v does not answer: %w", cfg.Etcd, err)
	}
	e := &Etcd{c: c, fieldCount: len(cfg.Workload.FieldNames), timeout: timeout, windowed: windowed}
	e.cut.Store(1)
	return e, nil
}

// Session returns a session over the shared client.
func (e *Etcd) Session(context.Context) (ycsb.DB, error) { return etcdDB{e}, nil }

// Close closes the client.
func (e *Etcd) Close() error { return e.c.Close() }

type etcdDB struct{ e *Etcd }

func rowPrefix(table, key string) string { return table + "/" + key + "/" }

// splitKey splits "<table>/<key>/<field>" into key and field.
func splitKey(table, k string) (string, string, bool) {
	rest, ok := strings.CutPrefix(k, table+"/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

func (d etcdDB) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.e.timeout)
}

func (d etcdDB) read(ctx context.Context, table, key string, fields []string) (ycsb.Record, int64, error) {
	var resp *clientv3.GetResponse
	var err error
	if len(fields) == 1 {
		resp, err = d.e.c.Get(ctx, rowPrefix(table, key)+fields[0])
	} else {
		resp, err = d.e.c.Get(ctx, rowPrefix(table, key), clientv3.WithPrefix())
	}
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, ycsb.ErrNotFound
	}
	rec := make(ycsb.Record, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		_, f, ok := splitKey(table, string(kv.Key))
		if ok {
			rec = append(rec, ycsb.Field{Name: f, Value: kv.Value})
		}
	}
	return onlyFields(rec, fields), resp.Header.Revision, nil
}

func (d etcdDB) Read(ctx context.Context, table, key string, fields []string) (ycsb.Record, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	rec, _, err := d.read(ctx, table, key, fields)
	return rec, err
}

// Scan reads count records from startKey with range reads limited to
// count*fieldcount keys.
//
// etcd (3.4, and up to 3.6 for the total count it returns) walks its
// in-memory index over the whole requested range even when a limit stops
// the result early (etcd-io/etcd#11057), so one range from the start key
// to the end of the table costs as much as the rest of the table: with
// 10^5 records a short scan takes seconds. With etcd.scanwindow=true (the
// default) the driver does what an etcd user would: it reads the range in
// windows that share ever shorter prefixes with the start key (the first
// ending where keys stop sharing all but the last `cut` characters of
// "<table>/<key>/", each next one one character shorter), until it has
// enough keys or reaches the table's end. The prefix length that sufficed
// is remembered, so most scans take one window, a few two.
func (d etcdDB) Scan(ctx context.Context, table, startKey string, count int, fields []string) ([]ycsb.Record, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	want := count * d.e.fieldCount
	start := rowPrefix(table, startKey)
	tableEnd := clientv3.GetPrefixRangeEnd(table + "/")
	minLen := len(table) + 2 // keep at least one character of the key
	var kvs []*mvccpb.KeyValue
	from := start
	cut := int(d.e.cut.Load())
	windows, atEnd := 0, false
	for {
		end := tableEnd
		if d.e.windowed && len(start)-cut >= minLen {
			end = clientv3.GetPrefixRangeEnd(start[:len(start)-cut])
		}
		resp, err := d.e.c.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(int64(want-len(kvs))))
		if err != nil {
			return nil, err
		}
		windows++
		kvs = append(kvs, resp.Kvs...)
		atEnd = end == tableEnd
		if len(kvs) >= want || atEnd {
			break
		}
		from = end
		cut++
	}
	if d.e.windowed && !atEnd {
		// Widen for the next scans when this one needed more windows;
		// narrow again after a run of scans that one window satisfied. A
		// scan that ran into the table's end (it started near it: few keys
		// to walk) teaches nothing.
		if windows > 1 {
			d.e.cut.Store(int32(cut))
			d.e.streak.Store(0)
		} else if d.e.streak.Add(1) >= 16 && cut > 1 {
			d.e.cut.CompareAndSwap(int32(cut), int32(cut-1))
			d.e.streak.Store(0)
		}
	}
	out := make([]ycsb.Record, 0, count)
	var rec ycsb.Record
	cur := ""
	flush := func() {
		if cur != "" && len(out) < count {
			out = append(out, append(onlyFields(rec, fields), ycsb.Field{Name: ycsb.KeyField, Value: []byte(cur)}))
		}
		rec = nil
	}
	for _, kv := range kvs {
		k, f, ok := splitKey(table, string(kv.Key))
		if !ok {
			continue
		}
		if k != cur {
			flush()
			cur = k
		}
		rec = append(rec, ycsb.Field{Name: f, Value: kv.Value})
	}
	flush()
	return out, nil
}

func (d etcdDB) puts(table, key string, values ycsb.Record) []clientv3.Op {
	ops := make([]clientv3.Op, len(values))
	for i, f := range values {
		ops[i] = clientv3.OpPut(rowPrefix(table, key)+f.Name, string(f.Value))
	}
	return ops
}

func (d etcdDB) Update(ctx context.Context, table, key string, values ycsb.Record) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if len(values) == 1 {
		_, err := d.e.c.Put(ctx, rowPrefix(table, key)+values[0].Name, string(values[0].Value))
		return err
	}
	_, err := d.e.c.Txn(ctx).Then(d.puts(table, key, values)...).Commit()
	return err
}

func (d etcdDB) Insert(ctx context.Context, table, key string, values ycsb.Record) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	_, err := d.e.c.Txn(ctx).Then(d.puts(table, key, values)...).Commit()
	return err
}

// ReadModifyWrite reads the whole record, then writes in a Txn that
// succeeds only if no key of the record was modified after the read's
// revision and no written key was created meanwhile; on conflict it
// reads again.
func (d etcdDB) ReadModifyWrite(ctx context.Context, table, key string, fields []string, values ycsb.Record) (ycsb.Record, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	puts := d.puts(table, key, values)
	for attempt := 0; attempt < maxRMWAttempts; attempt++ {
		resp, err := d.e.c.Get(ctx, rowPrefix(table, key), clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
		if len(resp.Kvs) == 0 {
			return nil, ycsb.ErrNotFound
		}
		rev := resp.Header.Revision
		rec := make(ycsb.Record, 0, len(resp.Kvs))
		cmps := make([]clientv3.Cmp, 0, len(resp.Kvs)+len(values))
		for _, kv := range resp.Kvs {
			if _, f, ok := splitKey(table, string(kv.Key)); ok {
				rec = append(rec, ycsb.Field{Name: f, Value: kv.Value})
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "<", rev+1))
		}
		for _, f := range values {
			if _, ok := rec.Get(f.Name); !ok {
				cmps = append(cmps, clientv3.Compare(clientv3.Version(rowPrefix(table, key)+f.Name), "=", 0))
			}
		}
		tr, err := d.e.c.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return nil, err
		}
		if tr.Succeeded {
			return onlyFields(rec, fields), nil
		}
	}
	return nil, errRMWConflict{key}
}

func (etcdDB) Close() error { return nil }
