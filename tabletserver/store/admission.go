package store

import (
	"context"

	"github.com/shaledb/shale/internal/admission"
)

// The store's admission controller (internal/admission, docs/qos.md):
// the node admits foreground requests through Admission(); background
// work (snapshots, ingest, export, consistency checks, GC) calls pace
// before each chunk, which yields to the foreground and follows the
// class's adaptive rate.

// Admission returns the store's admission controller.
func (s *Store) Admission() *admission.Controller { return s.admission }

// newAdmission builds the controller. The background ceilings are the
// store's byte-rate options unless Options.Admission names the class.
func (s *Store) newAdmission() (*admission.Controller, error) {
	set := s.opts.Admission
	classes := map[string]admission.ClassSettings{}
	for name, cs := range admission.DefaultClassSettings() {
		classes[name] = cs
	}
	ceiling := func(c admission.Class, v int64) {
		cs := classes[c.String()]
		cs.MaxBytesPerSec = v
		if v <= 0 {
			cs.MaxBytesPerSec = -1 // unlimited
		}
		classes[c.String()] = cs
	}
	ceiling(admission.Snapshot, s.opts.SnapshotBytesPerSec)
	ceiling(admission.Ingest, s.opts.IngestBytesPerSec)
	ceiling(admission.Consistency, s.opts.ConsistencyCheckBytesPerSec)
	export := s.opts.ExportBytesPerSec
	if export == 0 {
		export = 64 << 20
	}
	ceiling(admission.Export, export)
	for name, cs := range set.Classes {
		classes[name] = cs
	}
	set.Classes = classes
	return admission.New(admission.Options{Settings: set, Engine: s.engineStats, Registry: s.opts.Registry, SharedBy: s.opts.StoresInProcess})
}

// startAdmission runs the controller's adjustments on real time (they
// measure the process, not the store's possibly manual clock).
func (s *Store) startAdmission(ctx context.Context) error {
	return s.stopper.Every(ctx, "store.admission", s.admission.Interval(), func(context.Context) { s.admission.Tick() })
}

// engineStats samples Pebble's L0 for the write tokens, once per
// admission interval.
func (s *Store) engineStats() admission.EngineStats {
	m := s.db.Metrics()
	l0 := m.Levels[0]
	return admission.EngineStats{
		L0Sublevels:    int(l0.Sublevels),
		L0Files:        l0.TablesCount,
		L0Bytes:        l0.TablesSize,
		L0AddedBytes:   l0.TableBytesFlushed + l0.TableBytesIngested,
		CompactionDebt: m.Compact.EstimatedDebt,
	}
}

// pace admits n more bytes of background work of class c.
func (s *Store) pace(ctx context.Context, c admission.Class, n int) error {
	return s.admission.Pace(ctx, c, n)
}

// keyBytes sums the lengths of keys (GC's work).
func keyBytes(keys [][]byte) int {
	n := 0
	for _, k := range keys {
		n += len(k)
	}
	return n
}
