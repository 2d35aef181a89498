package sqllite

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shaledb/shale/kvclient"
)

// txnState is an open BEGIN: it reads at one timestamp (its snapshot) and
// may write one row of one table. The row is read (at the snapshot) when
// first touched; writes are buffered and applied at COMMIT by one
// check-and-mutate on the row's version cell, which fails if the row
// changed after the snapshot (snapshot isolation, first committer wins).
// A READ ONLY transaction writes nothing.
type txnState struct {
	ts       int64
	readOnly bool

	t       *table
	key     []byte
	touched bool

	baseExists  bool
	baseVersion uint64

	exists  bool
	vals    []Datum
	version uint64
	dirty   bool
}

func (s *Session) begin(st *ast.BeginStmt) (*Result, error) {
	if s.txn != nil {
		return nil, errf(CodeTransaction, "a transaction is already open; COMMIT or ROLLBACK it first")
	}
	if st.Mode != "" {
		return nil, notSupported("BEGIN options (PESSIMISTIC/OPTIMISTIC)")
	}
	if st.AsOf != nil && !st.ReadOnly {
		return nil, errf(CodeTransaction, "AS OF TIMESTAMP needs a READ ONLY transaction (START TRANSACTION READ ONLY AS OF TIMESTAMP ...)")
	}
	tx := &txnState{ts: s.client.Now(), readOnly: st.ReadOnly}
	if st.AsOf != nil {
		ts, err := evalAsOf(st.AsOf.TsExpr)
		if err != nil {
			return nil, err
		}
		if ts > tx.ts {
			return nil, errf(CodeType, "AS OF TIMESTAMP %s is in the future", exprText(st.AsOf.TsExpr))
		}
		tx.ts = ts
	}
	s.txn = tx
	return &Result{Message: "BEGIN"}, nil
}

func (s *Session) rollback(st *ast.RollbackStmt) (*Result, error) {
	if st.SavepointName != "" {
		return nil, notSupported("savepoints")
	}
	if s.txn == nil {
		return &Result{Message: "no transaction open"}, nil
	}
	s.txn = nil
	return &Result{Message: "ROLLBACK"}, nil
}

func (s *Session) commit(ctx context.Context) (*Result, error) {
	tx := s.txn
	if tx == nil {
		return &Result{Message: "no transaction open"}, nil
	}
	s.txn = nil
	if !tx.touched || !tx.dirty || (!tx.baseExists && !tx.exists) {
		return &Result{Message: "COMMIT"}, nil
	}
	if cur, err := s.lookup(ctx, tx.t.name); err != nil || cur.info.ID != tx.t.info.ID || cur.info.Version != tx.t.info.Version {
		return nil, errf(CodeConflict, "transaction conflict: table %s changed (schema change or drop) since this transaction read it; the transaction was rolled back", tx.t.name)
	}
	var vals []Datum
	if tx.exists {
		vals = tx.vals
	}
	ok, err := s.writeRow(ctx, tx.t, tx.key, writeCond{exists: tx.baseExists, version: tx.baseVersion}, vals)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errf(CodeConflict, "transaction conflict: the row was changed by someone else since this transaction read it; the transaction was rolled back, retry it")
	}
	return &Result{Message: "COMMIT"}, nil
}

// txnTouch reads the transaction's row on first use and rejects a second
// row.
func (s *Session) txnTouch(ctx context.Context, t *table, key []byte) error {
	tx := s.txn
	if tx.touched {
		if tx.t.info.ID != t.info.ID || !bytes.Equal(tx.key, key) {
			return errf(CodeTransaction, "this transaction already touches one row of table %s; a transaction may touch only one row of one table (COMMIT or ROLLBACK first)", tx.t.name)
		}
		return nil
	}
	if tx.readOnly {
		return errf(CodeTransaction, "cannot write in a READ ONLY transaction")
	}
	r, err := t.kv.Get(ctx, key, kvclient.Families(family), kvclient.AsOf(tx.ts))
	if errors.Is(err, kvclient.ErrReadTooOld) {
		// A delete committed after the snapshot: whatever it removed, the
		// row may have changed since, as at COMMIT.
		return errf(CodeConflict, "transaction conflict: rows of table %s were deleted after this transaction's snapshot; ROLLBACK and retry it", t.name)
	}
	if err != nil {
		return storageErr(err, "read "+t.name)
	}
	vals, ver, ok, err := t.decodeRow(r)
	if err != nil {
		return err
	}
	*tx = txnState{ts: tx.ts, t: t, key: key, touched: true, baseExists: ok, baseVersion: ver, exists: ok, vals: vals, version: ver}
	return nil
}

// txnRead serves a read inside a transaction: it must name one row by its
// full primary key.
func (s *Session) txnRead(ctx context.Context, a *access, h rowHandler) error {
	if a.points == nil || len(a.points) > 1 {
		return errf(CodeTransaction, "inside a transaction every statement must name one row by its full primary key (WHERE %s = ...); this one reads %s of table %s", pkList(a.t), a.keyDesc, a.t.name)
	}
	if len(a.points) == 0 {
		return nil
	}
	if err := s.txnTouch(ctx, a.t, a.points[0]); err != nil {
		return err
	}
	tx := s.txn
	if !tx.exists {
		return nil
	}
	_, err := h(append([]Datum(nil), tx.vals...), tx.key, tx.version)
	return err
}

func pkList(t *table) string {
	var b []byte
	for i, ci := range t.pk {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, t.cols[ci].Name...)
	}
	return string(b)
}

// writeCond is what a single-row write expects to find: the row absent, or
// present with this version.
type writeCond struct {
	exists  bool
	version uint64
}

// writeRow atomically replaces (vals) or deletes (nil) one row if it is in
// the expected state, and reports whether it was. Inside a transaction the
// write is buffered.
func (s *Session) writeRow(ctx context.Context, t *table, key []byte, cond writeCond, vals []Datum) (bool, error) {
	if tx := s.txn; tx != nil {
		if err := s.txnTouch(ctx, t, key); err != nil {
			return false, err
		}
		if tx.exists != cond.exists || (cond.exists && tx.version != cond.version) {
			return false, nil
		}
		tx.dirty = true
		if vals == nil {
			tx.exists, tx.vals = false, nil
		} else {
			tx.exists, tx.vals = true, append([]Datum(nil), vals...)
		}
		tx.version = newVersion(t.schema.NextID)
		return true, nil
	}
	c := kvclient.Condition{Family: family, Qualifier: versionQual, Op: kvclient.NotExists}
	if cond.exists {
		c.Op, c.Value = kvclient.Equal, versionBytes(cond.version)
	}
	var muts []kvclient.Mutation
	nv := newVersion(t.schema.NextID)
	if vals == nil {
		muts = []kvclient.Mutation{kvclient.DeleteRow()}
	} else {
		for ci, col := range t.cols {
			if t.isPK[ci] {
				continue
			}
			if vals[ci].IsNull() {
				if cond.exists {
					muts = append(muts, kvclient.DeleteColumn(family, t.quals[ci]))
				}
				continue
			}
			muts = append(muts, kvclient.SetCell(family, t.quals[ci], encodeValue(nil, vals[ci], col.Type, false)))
		}
		muts = append(muts, kvclient.SetCell(family, versionQual, versionBytes(nv)))
	}
	ok, err := t.kv.CheckAndMutateRow(ctx, key, c, muts, nil)
	if err != nil && errors.Is(err, kvclient.ErrAmbiguous) {
		// The fresh version token tells whether the write applied.
		r, gerr := t.kv.Get(ctx, key, kvclient.Columns(kvclient.Column{Family: family, Qualifier: versionQual}))
		if gerr == nil {
			_, ver, exists, derr := t.decodeRow(r)
			if derr == nil {
				if vals != nil && exists && ver == nv {
					return true, nil
				}
				if vals == nil && !exists {
					return true, nil
				}
				if exists == cond.exists && (!exists || ver == cond.version) {
					return false, nil // untouched: the write did not apply
				}
			}
		}
	}
	if err != nil {
		return false, storageErr(err, "write "+t.name)
	}
	return ok, nil
}

// epochBits of a row's version hold the schema's NextID when the row was
// written: columns with a larger or equal ID were added later, so the row
// reads their backfill default (ALTER TABLE ADD COLUMN ... DEFAULT without
// a rewrite). The other 40 bits are random, so a version is never reused
// by a later write of the row (no ABA on check-and-mutate).
const epochBits = 24

func newVersion(epoch uint64) uint64 {
	for {
		if v := rand.Uint64()<<epochBits | epoch&(1<<epochBits-1); v>>epochBits != 0 {
			return v
		}
	}
}

// getRow reads one row by key (all columns).
func (s *Session) getRow(ctx context.Context, t *table, key []byte) ([]Datum, uint64, bool, error) {
	if tx := s.txn; tx != nil {
		if err := s.txnTouch(ctx, t, key); err != nil {
			return nil, 0, false, err
		}
		if !tx.exists {
			return nil, 0, false, nil
		}
		return append([]Datum(nil), tx.vals...), tx.version, true, nil
	}
	r, err := t.kv.Get(ctx, key, kvclient.Families(family))
	if err != nil {
		return nil, 0, false, storageErr(err, "read "+t.name)
	}
	return t.decodeRow(r)
}
