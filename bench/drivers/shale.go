package drivers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/bench/ycsb"
	"github.com/shaledb/shale/kvclient"
)

// Shale is the driver for Shale's Go client. One client (and so one gRPC
// connection per store) is shared by every session, as an application
// would share it.
type Shale struct {
	c      *kvclient.Client
	t      *kvclient.Table
	family string
	// staleness > 0: reads and scans read as of that long ago from any
	// replica (shale.readstaleness).
	staleness time.Duration
	// metrics holds the client's own metrics (ClientStats).
	metrics *prometheus.Registry
}

var _ ycsb.Driver = (*Shale)(nil)

// createTimeout bounds creating the table and waiting for its tablets.
const createTimeout = 2 * time.Minute

// OpenShale connects to the placement driver at cfg.PD and opens the
// workload's table, creating it (pre-split) when missing.
func OpenShale(ctx context.Context, cfg Config) (*Shale, error) {
	if len(cfg.PD) == 0 {
		return nil, errors.New("target shale needs --pd HOST:PORT (the placement driver)")
	}
	family, tablets, err := tableSettings(cfg.Props)
	if err != nil {
		return nil, err
	}
	staleness, err := readStaleness(cfg.Props)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	c, err := kvclient.Open(ctx, kvclient.Options{PD: cfg.PD, TLS: cfg.TLS, Registry: reg})
	if err != nil {
		return nil, fmt.Errorf("connect to placement driver %v: %w", cfg.PD, err)
	}
	t, err := ensureShaleTable(ctx, c, cfg.Workload.Table, family, tablets)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Shale{c: c, t: t, family: family, staleness: staleness, metrics: reg}, nil
}

// ClientStats sums up what the client did besides answering: its
// retries by the action the error called for, and its routing cache
// misses (kvclient's metrics, docs/metrics.md). A latency tail that comes
// with retries was spent on routing (leaders moving, tablets splitting),
// not in the stores' queues.
func (s *Shale) ClientStats() string {
	families, err := s.metrics.Gather()
	if err != nil {
		return "metrics unavailable: " + err.Error()
	}
	var retries []string
	var misses float64
	for _, f := range families {
		switch f.GetName() {
		case "shale_kvclient_retries_total":
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						retries = append(retries, fmt.Sprintf("%s=%.0f", l.GetValue(), m.GetCounter().GetValue()))
					}
				}
			}
		case "shale_kvclient_route_cache_misses_total":
			for _, m := range f.GetMetric() {
				misses += m.GetCounter().GetValue()
			}
		}
	}
	slices.Sort(retries)
	return fmt.Sprintf("retries %s, route cache misses %.0f", strings.Join(retries, " "), misses)
}

func ensureShaleTable(ctx context.Context, c *kvclient.Client, name, family string, tablets int) (*kvclient.Table, error) {
	t, err := c.Table(ctx, name)
	if errors.Is(err, kvclient.ErrTableNotFound) {
		// The placement driver splits a new table's tablets one after the
		// other (about one a second), longer than a request's default
		// timeout: give creation its own deadline.
		cctx, cancel := context.WithTimeout(ctx, createTimeout)
		_, cerr := c.CreateTable(cctx, name, []kvclient.Family{{Name: family, MaxVersions: 1}}, SplitRows(tablets)...)
		cancel()
		t, err = c.Table(ctx, name)
		if err != nil && cerr != nil && !errors.Is(cerr, kvclient.ErrTableExists) {
			return nil, fmt.Errorf("create table %s: %w", name, cerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	if !slices.ContainsFunc(t.Info().Families, func(f kvclient.Family) bool { return f.Name == family }) {
		return nil, fmt.Errorf("table %s exists without column family %q (set -p columnfamily=NAME)", name, family)
	}
	return t, nil
}

// Session returns a session over the shared client.
func (s *Shale) Session(context.Context) (ycsb.DB, error) { return shaleDB{s}, nil }

// Close closes the client.
func (s *Shale) Close() error { return s.c.Close() }

type shaleDB struct{ s *Shale }

func (d shaleDB) readOptions(fields []string) []kvclient.ReadOption {
	if fields == nil {
		return []kvclient.ReadOption{kvclient.Families(d.s.family)}
	}
	cols := make([]kvclient.Column, len(fields))
	for i, f := range fields {
		cols[i] = kvclient.Column{Family: d.s.family, Qualifier: []byte(f)}
	}
	return []kvclient.ReadOption{kvclient.Columns(cols...)}
}

func (d shaleDB) record(row *kvclient.Row) ycsb.Record {
	rec := make(ycsb.Record, 0, len(row.Cells))
	for _, c := range row.Cells {
		if c.Family == d.s.family {
			rec = append(rec, ycsb.Field{Name: string(c.Qualifier), Value: c.Value})
		}
	}
	return rec
}

func (d shaleDB) mutations(values ycsb.Record) []kvclient.Mutation {
	muts := make([]kvclient.Mutation, len(values))
	for i, f := range values {
		muts[i] = kvclient.SetCell(d.s.family, []byte(f.Name), f.Value)
	}
	return muts
}

// staleOptions adds a stale follower read to opts when configured.
func (d shaleDB) staleOptions(opts []kvclient.ReadOption) []kvclient.ReadOption {
	if d.s.staleness <= 0 {
		return opts
	}
	return append(opts, kvclient.AsOf(d.s.c.StaleTimestamp(d.s.staleness)), kvclient.FollowerRead())
}

func (d shaleDB) Read(ctx context.Context, _, key string, fields []string) (ycsb.Record, error) {
	row, err := d.s.t.Get(ctx, []byte(key), d.staleOptions(d.readOptions(fields))...)
	if err != nil {
		return nil, err
	}
	if row == nil || len(row.Cells) == 0 {
		return nil, ycsb.ErrNotFound
	}
	return d.record(row), nil
}

func (d shaleDB) Scan(ctx context.Context, _, startKey string, count int, fields []string) ([]ycsb.Record, error) {
	sc := d.s.t.Scan(ctx, kvclient.ScanOptions{Start: []byte(startKey), Limit: count, PageRows: count, Read: d.staleOptions(d.readOptions(fields))})
	defer sc.Close()
	out := make([]ycsb.Record, 0, count)
	for sc.Next() {
		row := sc.Row()
		out = append(out, append(d.record(row), ycsb.Field{Name: ycsb.KeyField, Value: row.Key}))
	}
	return out, sc.Err()
}

func (d shaleDB) Update(ctx context.Context, _, key string, values ycsb.Record) error {
	_, err := d.s.t.MutateRow(ctx, []byte(key), d.mutations(values)...)
	return err
}

func (d shaleDB) Insert(ctx context.Context, _, key string, values ycsb.Record) error {
	_, err := d.s.t.MutateRow(ctx, []byte(key), d.mutations(values)...)
	return err
}

// ReadModifyWrite reads the record and writes values with
// CheckAndMutateRow conditioned on the first written column being
// unchanged, retrying when another writer changed it in between.
func (d shaleDB) ReadModifyWrite(ctx context.Context, _, key string, fields []string, values ycsb.Record) (ycsb.Record, error) {
	if len(values) == 0 {
		return d.Read(ctx, "", key, fields)
	}
	check := values[0].Name
	readFields := fields
	if fields != nil && !slices.Contains(fields, check) {
		readFields = append(slices.Clip(fields), check)
	}
	muts := d.mutations(values)
	for attempt := 0; attempt < maxRMWAttempts; attempt++ {
		row, err := d.s.t.Get(ctx, []byte(key), d.readOptions(readFields)...)
		if err != nil {
			return nil, err
		}
		if row == nil || len(row.Cells) == 0 {
			return nil, ycsb.ErrNotFound
		}
		cond := kvclient.Condition{Family: d.s.family, Qualifier: []byte(check), Op: kvclient.NotExists}
		if v, ok := row.Value(d.s.family, []byte(check)); ok {
			cond.Op, cond.Value = kvclient.Equal, v
		}
		ok, err := d.s.t.CheckAndMutateRow(ctx, []byte(key), cond, muts, nil)
		if err != nil {
			return nil, err
		}
		if ok {
			return onlyFields(d.record(row), fields), nil
		}
	}
	return nil, errRMWConflict{key}
}

func (shaleDB) Close() error { return nil }
