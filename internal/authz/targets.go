package authz

import (
	"encoding/binary"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// The TargetFuncs of table.go: what table (and raw keys) a request names.

// rowTarget: a request for one row of one table.
func rowTarget(req any, _ Resolver) ([]Target, error) {
	m, ok := req.(interface {
		GetTableId() uint64
		GetRowKey() []byte
	})
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	return []Target{withSpans(m.GetTableId(), Span{Start: m.GetRowKey()})}, nil
}

func scanTarget(req any, _ Resolver) ([]Target, error) {
	m, ok := req.(*kvpb.ScanRequest)
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	end := m.EndRow
	if end == nil {
		end = []byte{} // to the end of the table
	}
	return []Target{withSpans(m.TableId, Span{Start: m.StartRow, End: end})}, nil
}

func batchTarget(req any, _ Resolver) ([]Target, error) {
	m, ok := req.(*kvpb.BatchMutateRequest)
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	spans := make([]Span, 0, len(m.Entries))
	for _, e := range m.Entries {
		spans = append(spans, Span{Start: e.RowKey})
	}
	return []Target{withSpans(m.TableId, spans...)}, nil
}

// withSpans keeps spans only on the raw table, where prefix grants apply.
func withSpans(tableID uint64, spans ...Span) Target {
	if tableID != RawTableID {
		return Target{TableID: tableID}
	}
	if spans == nil {
		spans = []Span{} // no keys: covered by any grant on the table
	}
	return Target{TableID: tableID, Spans: spans}
}

// tableTarget: a request for a whole table by ID.
func tableTarget(req any, _ Resolver) ([]Target, error) {
	m, ok := req.(interface{ GetTableId() uint64 })
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	return []Target{{TableID: m.GetTableId()}}, nil
}

// tabletTarget: a request naming a tablet: every table its range overlaps.
func tabletTarget(req any, r Resolver) ([]Target, error) {
	m, ok := req.(interface{ GetTabletId() uint64 })
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	if r == nil {
		return nil, errBadRequest("no tablet resolver on this server")
	}
	ids, ok, err := r.TabletTables(m.GetTabletId())
	if err != nil {
		return nil, err
	}
	if !ok || len(ids) == 0 {
		return nil, errBadRequest("tablet %d is not split at table boundaries yet (it spans more than %d tables); only a cluster admin may write to it", m.GetTabletId(), maxTabletTables)
	}
	out := make([]Target, 0, len(ids))
	for _, id := range ids {
		out = append(out, Target{TableID: id})
	}
	return out, nil
}

// tableNameTarget: a PD request naming a table.
func tableNameTarget(req any, r Resolver) ([]Target, error) {
	m, ok := req.(interface{ GetName() string })
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	if r == nil {
		return nil, errBadRequest("no table resolver on this server")
	}
	id, ok, err := r.TableID(m.GetName())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errBadRequest("table %q does not exist", m.GetName())
	}
	return []Target{{TableID: id}}, nil
}

// splitKeysTarget: encoded keys (internal/keys) start with their table ID.
func splitKeysTarget(req any, _ Resolver) ([]Target, error) {
	m, ok := req.(*pdpb.SplitTabletsRequest)
	if !ok {
		return nil, errBadRequest("unexpected request %T", req)
	}
	seen := map[uint64]bool{}
	var out []Target
	for _, k := range m.SplitKeys {
		if len(k) < 8 {
			return nil, errBadRequest("split key %x is shorter than a table prefix", k)
		}
		id := binary.BigEndian.Uint64(k)
		if !seen[id] {
			seen[id] = true
			out = append(out, Target{TableID: id})
		}
	}
	return out, nil
}
