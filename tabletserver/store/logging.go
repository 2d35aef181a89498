package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shaledb/shale/proto/metapb"
)

// raftLogger adapts slog to raft.Logger. Raft's info chatter goes to debug.
// Before raft panics it logs the replica's history (history, if set), so
// that the cause of a broken invariant can be read from the log.
type raftLogger struct {
	l       *slog.Logger
	history func() string
}

func (r raftLogger) Debug(v ...any)              { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(f string, v ...any)   { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { r.Panic(v...) }
func (r raftLogger) Fatalf(f string, v ...any)   { r.Panicf(f, v...) }
func (r raftLogger) Panic(v ...any)              { r.panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { r.panic(fmt.Sprintf(f, v...)) }

// panic keeps raft.Logger's contract: raft calls Panic only on a broken
// invariant of its log and expects it not to return.
func (r raftLogger) panic(s string) {
	if r.history != nil {
		r.l.Error(s, "history", r.history())
	} else {
		r.l.Error(s)
	}
	panic(s)
}

// pebbleLogger adapts slog to pebble.Logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(f string, v ...any) {
	p.l.Debug(fmt.Sprintf(f, v...), "component", "pebble")
}
func (p pebbleLogger) Errorf(f string, v ...any) {
	p.l.Error(fmt.Sprintf(f, v...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(f string, v ...any) {
	s := fmt.Sprintf(f, v...)
	p.l.Log(context.Background(), slog.LevelError, s, "component", "pebble")
	// Pebble calls Fatalf on any commit error, a full disk's included:
	// keep the error, so that the raft worker (runIteration) or
	// guardEngine can fail the store rather than the process
	// (diskspace.go). From one of pebble's own background goroutines
	// nothing recovers it and the process stops, as pebble would have
	// stopped it (docs/limits.md).
	for _, a := range v {
		if err, ok := a.(error); ok && isStorageError(err) {
			panic(storageFailure{what: s, err: err})
		}
	}
	panic(s)
}

func keyString(k []byte) string { return fmt.Sprintf("%x", k) }

func replicasString(d *metapb.TabletDescriptor) string {
	var b strings.Builder
	for i, r := range d.Replicas {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d@s%d:%s", r.ReplicaId, r.StoreId, r.Role)
	}
	return b.String()
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
