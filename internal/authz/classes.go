package authz

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class is what kind of operation an RPC, route or statement is, and so
// who may perform it.
type Class int

const (
	// Unclassified is the zero value: refused to everyone (fail closed).
	Unclassified Class = iota
	// Public needs no identity at all (health checks).
	Public
	// Authenticated needs any identity: routing metadata (which tablet
	// holds a key, table schemas, PD members), monitoring.
	Authenticated
	// DataRead reads the rows of the table(s) the request names.
	DataRead
	// DataWrite changes the rows of the table(s) the request names.
	DataWrite
	// TableAdmin changes a table's definition (ALTER TABLE).
	TableAdmin
	// ClusterAdmin is cluster administration: create and drop tables,
	// split, merge, move, drain, configuration, operators, users and
	// grants, debug and profiling routes.
	ClusterAdmin
	// Internal is node-to-node and node-to-PD traffic: nodes only.
	Internal
)

var classNames = [...]string{"unclassified", "public", "authenticated", "data read", "data write", "table admin", "cluster admin", "internal"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return fmt.Sprintf("class(%d)", int(c))
	}
	return classNames[c]
}

// needsTarget reports whether the class is decided per table.
func (c Class) needsTarget() bool { return c == DataRead || c == DataWrite || c == TableAdmin }

// PerTable reports whether the class is decided per table (so a check
// needs the table the call names).
func (c Class) PerTable() bool { return c.needsTarget() }

// Rule classifies one RPC, route or statement. For the per-table classes,
// Targets names what the request touches.
type Rule struct {
	Class   Class
	Targets TargetFunc
}

// TargetFunc extracts the tables (and, on the raw key/value table, the
// keys) a request touches. r resolves names and tablets for requests that
// do not carry a table ID.
type TargetFunc func(req any, r Resolver) ([]Target, error)

// Resolver maps what a request names to table IDs. found false: no such
// table or tablet here. An error (say, "not the PD leader") is returned
// to the caller as it is.
type Resolver interface {
	// TableID resolves a table name.
	TableID(name string) (id uint64, found bool, err error)
	// TabletTables lists the tables a tablet's key range overlaps.
	TabletTables(tabletID uint64) (ids []uint64, found bool, err error)
}

// Span is a key of the raw key/value table (End nil) or a range
// [Start, End) of its keys (End empty but non-nil: to the end).
type Span struct {
	Start, End []byte
}

// Target is one table a request touches. Spans, when set, restrict it to
// keys of the raw key/value table (where key-prefix grants apply); nil
// means the whole table.
type Target struct {
	TableID uint64
	Spans   []Span
}

// RawTableID is the built-in raw key/value table of `shale kv`, the one
// table on which key-prefix grants apply.
const RawTableID = 1

// errBadRequest reports a request whose targets cannot be determined.
func errBadRequest(format string, args ...any) error {
	return status.Errorf(codes.PermissionDenied, "authorization: "+format, args...)
}

// Denied is the PermissionDenied answer naming the identity and what it
// lacks.
func denied(id Identity, format string, args ...any) error {
	return status.Errorf(codes.PermissionDenied, "%s is not allowed to %s", id, fmt.Sprintf(format, args...))
}
