package ycsb

import (
	"context"
	"errors"
)

// Field is one named value of a record (YCSB's field0..fieldN).
type Field struct {
	Name  string
	Value []byte
}

// Record is a row's fields, in no particular order.
type Record []Field

// Get returns the value of the named field.
func (r Record) Get(name string) ([]byte, bool) {
	for _, f := range r {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// ErrNotFound is returned by a DB read (or read-modify-write) of a record
// that does not exist; it counts as Return=NOT_FOUND.
var ErrNotFound = errors.New("ycsb: record not found")

// DB is one client thread's session with a store (YCSB's DB class). The
// runner gives each thread its own DB, so implementations need not be
// safe for concurrent use. Errors other than ErrNotFound count as
// Return=ERROR.
type DB interface {
	// Read reads the named fields of a record (all fields when fields is
	// nil).
	Read(ctx context.Context, table, key string, fields []string) (Record, error)
	// Scan reads up to count records in key order starting at startKey
	// (inclusive). Each record carries its key as the field KeyField.
	Scan(ctx context.Context, table, startKey string, count int, fields []string) ([]Record, error)
	// Update writes the given fields of a record, leaving others as they
	// are.
	Update(ctx context.Context, table, key string, values Record) error
	// Insert writes a new record, all its fields atomically.
	Insert(ctx context.Context, table, key string, values Record) error
	// ReadModifyWrite reads the named fields (all when nil) of a record and
	// writes values to it as one single-row transaction: the write is
	// applied only if the record did not change in between (retrying the
	// read otherwise). It returns what it read; ErrNotFound (writing
	// nothing) when the record does not exist.
	ReadModifyWrite(ctx context.Context, table, key string, fields []string, values Record) (Record, error)
	// Close ends the session.
	Close() error
}

// Driver opens sessions with one store. Drivers are set up (and create
// the table when missing) by their constructors in bench/drivers.
type Driver interface {
	// Session opens one client thread's DB.
	Session(ctx context.Context) (DB, error)
	// Close releases what the sessions shared.
	Close() error
}
