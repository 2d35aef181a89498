package sqllite

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/shaledb/shale/internal/retry"
)

// maxRetries bounds the read-modify-write retries of one row.
const maxRetries = 10000

// newConflictBackoff paces one row's read-modify-write retries after
// conflicts (internal/retry's backoff: 100µs growing to 5ms, jittered).
func newConflictBackoff() *retry.Exponential {
	return retry.NewExponential(100*time.Microsecond, 5*time.Millisecond)
}

// retryPause waits before attempt: not at all for the first few (a
// conflict is usually resolved at once), then the backoff's next delay.
func retryPause(ctx context.Context, bo *retry.Exponential, attempt int) {
	if attempt > 3 {
		_ = bo.Wait(ctx, 0) // the caller checks ctx
	}
}

// rowLocks serialize read-modify-writes of the same row by sessions of
// this process, so that local contenders queue instead of spending raft
// rounds on check-and-mutates that are bound to fail. Atomicity does not
// depend on them: the version check does that, across processes too.
var rowLocks [256]sync.Mutex

func rowLock(t *table, key []byte) *sync.Mutex {
	h := fnv.New32a()
	h.Write(key)
	return &rowLocks[(h.Sum32()^uint32(t.info.ID))%uint32(len(rowLocks))]
}

// lockRow takes the row's local lock unless a transaction buffers the
// writes, and reports whether it had to wait (the row read before may be
// stale).
func (s *Session) lockRow(t *table, key []byte) (unlock func(), waited bool) {
	if s.txn != nil {
		return func() {}, false
	}
	mu := rowLock(t, key)
	if !mu.TryLock() {
		mu.Lock()
		waited = true
	}
	return mu.Unlock, waited
}

// singleTable resolves the one table of a DML statement.
func (s *Session) singleTable(ctx context.Context, refs *ast.TableRefsClause, what string) (*table, string, error) {
	if refs == nil {
		return nil, "", notSupported("%s without a table", what)
	}
	items, err := flattenFrom(refs.TableRefs)
	if err != nil {
		return nil, "", err
	}
	if len(items) != 1 {
		return nil, "", notSupported("multi-table %s", what)
	}
	t, err := s.lookup(ctx, items[0].name.Name.L)
	if err != nil {
		return nil, "", err
	}
	alias := t.name
	if items[0].ts.AsName.L != "" {
		alias = items[0].ts.AsName.L
	}
	return t, alias, nil
}

func (s *Session) execInsert(ctx context.Context, st *ast.InsertStmt) (*Result, error) {
	verb := "INSERT"
	if st.IsReplace {
		verb = "REPLACE"
	}
	t, alias, err := s.singleTable(ctx, st.Table, verb)
	if err != nil {
		return nil, err
	}
	if st.IsReplace && len(st.OnDuplicate) > 0 {
		return nil, notSupported("REPLACE with ON DUPLICATE KEY UPDATE")
	}
	// Target columns.
	var target []int
	if len(st.Columns) == 0 {
		for i := range t.cols {
			target = append(target, i)
		}
	} else {
		seen := map[int]bool{}
		for _, cn := range st.Columns {
			i, ok := t.col(cn.Name.O)
			if !ok {
				return nil, errf(CodeUnknownColumn, "unknown column %s in table %s", cn.Name.O, t.name)
			}
			if seen[i] {
				return nil, errf(CodeConstraint, "column %s is listed twice", cn.Name.O)
			}
			seen[i] = true
			target = append(target, i)
		}
	}
	// Source rows.
	var rows [][]Datum
	if st.Select != nil {
		sel, ok := st.Select.(*ast.SelectStmt)
		if !ok {
			return nil, notSupported("INSERT ... SELECT with UNION")
		}
		res, err := s.execSelect(ctx, sel)
		if err != nil {
			return nil, err
		}
		if len(res.Columns) != len(target) {
			return nil, errf(CodeConstraint, "INSERT has %d target columns but the SELECT returns %d", len(target), len(res.Columns))
		}
		rows = res.Rows
	} else {
		c := &compiler{sc: &scope{}}
		for ri, list := range st.Lists {
			if len(list) != len(target) {
				return nil, errf(CodeConstraint, "row %d has %d values but %d columns are listed", ri+1, len(list), len(target))
			}
			row := make([]Datum, len(list))
			for i, e := range list {
				if _, ok := e.(*ast.DefaultExpr); ok {
					row[i] = t.cols[target[i]].defaultValue()
					continue
				}
				ce, err := c.compile(e)
				if err != nil {
					return nil, err
				}
				if row[i], err = ce.eval(nil); err != nil {
					return nil, err
				}
			}
			rows = append(rows, row)
		}
	}
	// ON DUPLICATE KEY UPDATE assignments.
	type assign struct {
		ci int
		e  expr
	}
	var onDup []assign
	if len(st.OnDuplicate) > 0 {
		sc := &scope{cols: tableScope(t, alias)}
		c := &compiler{sc: sc, values: func(name string) (expr, error) {
			i, ok := t.col(name)
			if !ok {
				return nil, errf(CodeUnknownColumn, "unknown column %s in VALUES()", name)
			}
			return colRef{len(t.cols) + i}, nil
		}}
		for _, a := range st.OnDuplicate {
			ci, ok := t.col(a.Column.Name.O)
			if !ok {
				return nil, errf(CodeUnknownColumn, "unknown column %s in table %s", a.Column.Name.O, t.name)
			}
			if t.isPK[ci] {
				return nil, notSupported("updating primary key column %s", t.cols[ci].Name)
			}
			e, err := c.compile(a.Expr)
			if err != nil {
				return nil, err
			}
			onDup = append(onDup, assign{ci, e})
		}
	}
	// Prepare every row first: conversion and constraint errors fail the
	// statement before anything is written.
	type prepared struct {
		vals []Datum
		key  []byte
	}
	preps := make([]prepared, len(rows))
	for ri, src := range rows {
		vals := make([]Datum, len(t.cols))
		given := make([]bool, len(t.cols))
		for i, ci := range target {
			v, err := convert(src[i], t.cols[ci].Type, t.cols[ci].Name)
			if err != nil {
				return nil, rowErr(err, ri, len(rows), 0)
			}
			vals[ci], given[ci] = v, true
		}
		for ci := range t.cols {
			if !given[ci] {
				vals[ci] = t.cols[ci].defaultValue()
			}
			if vals[ci].IsNull() && t.cols[ci].NotNull {
				if !given[ci] {
					return nil, rowErr(errf(CodeConstraint, "column %s is NOT NULL and has no default; give it a value", t.cols[ci].Name), ri, len(rows), 0)
				}
				return nil, rowErr(errf(CodeConstraint, "column %s must not be NULL", t.cols[ci].Name), ri, len(rows), 0)
			}
		}
		key, err := t.encodeKey(t.pkVals(vals))
		if err != nil {
			return nil, rowErr(err, ri, len(rows), 0)
		}
		preps[ri] = prepared{vals, key}
	}
	// insertOne writes one row atomically and reports whether it counts.
	insertOne := func(vals []Datum, key []byte) (bool, error) {
		unlock, _ := s.lockRow(t, key)
		defer unlock()
		bo := newConflictBackoff()
		for attempt := 0; ; attempt++ {
			if attempt > maxRetries {
				return false, errf(CodeConflict, "row kept changing; gave up after %d attempts", maxRetries)
			}
			retryPause(ctx, bo, attempt)
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if st.IsReplace {
				_, ver, exists, err := s.getRow(ctx, t, key)
				if err != nil {
					return false, err
				}
				ok, err := s.writeRow(ctx, t, key, writeCond{exists, ver}, vals)
				if err != nil || ok {
					return ok, err
				}
				continue
			}
			ok, err := s.writeRow(ctx, t, key, writeCond{}, vals)
			if err != nil || ok {
				return ok, err
			}
			if len(onDup) == 0 {
				if st.IgnoreErr {
					return false, nil
				}
				return false, errf(CodeDuplicateKey, "duplicate primary key %s in table %s", keyText(t, vals), t.name)
			}
			// ON DUPLICATE KEY UPDATE: read-modify-write the existing row.
			old, ver, exists, err := s.getRow(ctx, t, key)
			if err != nil {
				return false, err
			}
			if !exists {
				continue // deleted meanwhile: insert again
			}
			nv := append([]Datum(nil), old...)
			env := append(append([]Datum(nil), old...), vals...) // old row, then VALUES()
			for _, a := range onDup {
				v, err := a.e.eval(env)
				if err != nil {
					return false, err
				}
				if v, err = convert(v, t.cols[a.ci].Type, t.cols[a.ci].Name); err != nil {
					return false, err
				}
				if v.IsNull() && t.cols[a.ci].NotNull {
					return false, errf(CodeConstraint, "column %s must not be NULL", t.cols[a.ci].Name)
				}
				nv[a.ci] = v
			}
			ok, err = s.writeRow(ctx, t, key, writeCond{true, ver}, nv)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	// Rows are independent: write them concurrently (rows with the same key
	// go to the same worker, in statement order).
	counted := make([]bool, len(preps))
	errs := make([]error, len(preps))
	workers := min(insertWorkers, len(preps))
	if s.txn != nil || len(preps) < 4 {
		workers = 1
	}
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, p := range preps {
				if workers > 1 && int(fnv32(p.key)%uint32(workers)) != w {
					continue
				}
				if failed.Load() {
					return
				}
				counted[i], errs[i] = insertOne(p.vals, p.key)
				if errs[i] != nil {
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	var affected int64
	for _, c := range counted {
		if c {
			affected++
		}
	}
	for i, err := range errs {
		if err != nil {
			return nil, rowErr(err, i, len(preps), affected)
		}
	}
	return &Result{RowsAffected: affected}, nil
}

// insertWorkers bounds the rows of one INSERT written concurrently.
const insertWorkers = 16

func fnv32(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

// rowErr says which row of a multi-row statement failed and how many
// rows were written before it (statements are not atomic across rows).
func rowErr(err error, ri, n int, affected int64) error {
	if n <= 1 {
		return err
	}
	if e, ok := err.(*Error); ok {
		c := *e
		c.Msg = fmt.Sprintf("%s (row %d of %d; rows are written independently: %d rows of this statement were written)", e.Msg, ri+1, n, affected)
		return &c
	}
	return err
}

func keyText(t *table, vals []Datum) string {
	var parts []string
	for _, ci := range t.pk {
		parts = append(parts, quoteVal(vals[ci]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// dmlPlan plans the row selection of an UPDATE or DELETE.
type dmlPlan struct {
	t     *table
	sc    *scope
	acc   *access
	where expr
	limit int
	desc  []string
}

func (s *Session) planDML(ctx context.Context, refs *ast.TableRefsClause, where ast.ExprNode, order *ast.OrderByClause, limit *ast.Limit, what string) (*dmlPlan, error) {
	t, alias, err := s.singleTable(ctx, refs, what)
	if err != nil {
		return nil, err
	}
	if order != nil {
		return nil, notSupported("%s ... ORDER BY", what)
	}
	p := &dmlPlan{t: t, sc: &scope{cols: tableScope(t, alias)}, limit: -1}
	p.acc = &access{t: t, alias: alias}
	for i := range t.cols {
		if !t.isPK[i] {
			p.acc.needed = append(p.acc.needed, i)
		}
	}
	conj := splitAnd(where)
	exact := chooseAccess(p.sc, p.acc, conj)
	pushed := map[int]bool{}
	if s.txn == nil {
		pushed = planPushdown(p.sc, p.acc, conj)
	}
	// desc is EXPLAIN's: formatting it is skipped otherwise.
	if s.explaining {
		p.desc = append(p.desc, fmt.Sprintf("%s %s: %s", what, describeTable(p.acc), p.acc.keyDesc))
		if p.acc.pushed != nil {
			p.desc = append(p.desc, "pushed down to tablet servers: "+strings.Join(p.acc.pushed.desc, " AND "))
		}
	}
	if where != nil {
		if hasAggregate(where) {
			return nil, notSupported("aggregates in WHERE")
		}
		if p.where, err = (&compiler{sc: p.sc}).compile(where); err != nil {
			return nil, err
		}
		var rest []string
		for i, e := range conj {
			if s.explaining && !exact[i] && !pushed[i] {
				rest = append(rest, exprText(e))
			}
		}
		if len(rest) > 0 {
			p.desc = append(p.desc, "filter (client): "+strings.Join(rest, " AND "))
		}
	}
	if limit != nil {
		if limit.Offset != nil {
			return nil, notSupported("%s ... LIMIT with OFFSET", what)
		}
		v, ok := constValue(limit.Count)
		if !ok || v.Kind != KindInt || v.Value.(int64) < 0 {
			return nil, notSupported("LIMIT that is not a non-negative integer literal")
		}
		p.limit = int(v.Value.(int64))
	}
	p.desc = append(p.desc, "each row written atomically by check-and-mutate on its version (rows are not atomic with each other)")
	return p, nil
}

// eachRow runs f on every row matching the plan, re-reading and
// re-checking a row whose write lost a race (f returns false). Rows are
// independent, so without a LIMIT or transaction they are processed by up
// to dmlWorkers goroutines while the scan streams on.
func (s *Session) eachRow(ctx context.Context, p *dmlPlan, f func(vals []Datum, key []byte, ver uint64) (bool, error)) (int64, error) {
	if p.limit == 0 {
		return 0, nil
	}
	var n atomic.Int64
	// one processes one row; it reports whether the row was written.
	one := func(ctx context.Context, vals []Datum, key []byte, ver uint64) (bool, error) {
		unlock, waited := s.lockRow(p.t, key)
		defer unlock()
		if waited {
			var exists bool
			var err error
			if vals, ver, exists, err = s.getRow(ctx, p.t, key); err != nil || !exists {
				return false, err
			}
		}
		bo := newConflictBackoff()
		for attempt := 0; ; attempt++ {
			if attempt > maxRetries {
				return false, errf(CodeConflict, "row %s kept changing; gave up after %d attempts", keyText(p.t, vals), maxRetries)
			}
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if p.where != nil {
				t, err := evalTruth(p.where, vals)
				if err != nil {
					return false, err
				}
				if t != tTrue {
					return false, nil
				}
			}
			ok, err := f(vals, key, ver)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
			retryPause(ctx, bo, attempt)
			var exists bool
			if vals, ver, exists, err = s.getRow(ctx, p.t, key); err != nil {
				return false, err
			}
			if !exists {
				return false, nil
			}
		}
	}
	withCount := func(err error) error {
		if e, ok := err.(*Error); ok && n.Load() > 0 {
			c := *e
			c.Msg = fmt.Sprintf("%s (rows are written independently: %d rows of this statement were written)", e.Msg, n.Load())
			return &c
		}
		return err
	}
	if p.limit > 0 || s.txn != nil {
		err := s.read(ctx, p.acc, func(vals []Datum, key []byte, ver uint64) (bool, error) {
			ok, err := one(ctx, vals, append([]byte(nil), key...), ver)
			if err != nil {
				return false, err
			}
			if ok && n.Add(1) >= int64(p.limit) && p.limit > 0 {
				return false, nil
			}
			return true, nil
		})
		return n.Load(), withCount(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		vals []Datum
		key  []byte
		ver  uint64
	}
	jobs := make(chan job, dmlWorkers)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < dmlWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				ok, err := one(wctx, j.vals, j.key, j.ver)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					continue
				}
				if ok {
					n.Add(1)
				}
			}
		}()
	}
	err := s.read(wctx, p.acc, func(vals []Datum, key []byte, ver uint64) (bool, error) {
		select {
		case jobs <- job{vals, append([]byte(nil), key...), ver}:
			return true, nil
		case <-wctx.Done():
			return false, nil
		}
	})
	close(jobs)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return n.Load(), withCount(firstErr)
	}
	if err != nil {
		return n.Load(), withCount(err)
	}
	if ctx.Err() != nil {
		return n.Load(), ctx.Err()
	}
	return n.Load(), nil
}

// dmlWorkers bounds the rows of one UPDATE or DELETE processed at once.
const dmlWorkers = 16

func (s *Session) execUpdate(ctx context.Context, st *ast.UpdateStmt) (*Result, error) {
	if st.MultipleTable {
		return nil, notSupported("multi-table UPDATE")
	}
	if st.With != nil {
		return nil, notSupported("WITH")
	}
	p, err := s.planDML(ctx, st.TableRefs, st.Where, st.Order, st.Limit, "UPDATE")
	if err != nil {
		return nil, err
	}
	t := p.t
	type assign struct {
		ci int
		e  expr
	}
	var as []assign
	c := &compiler{sc: p.sc}
	for _, a := range st.List {
		ci, ok := t.col(a.Column.Name.O)
		if !ok {
			return nil, errf(CodeUnknownColumn, "unknown column %s in table %s", a.Column.Name.O, t.name)
		}
		if t.isPK[ci] {
			return nil, notSupported("updating primary key column %s (DELETE and INSERT the row instead)", t.cols[ci].Name)
		}
		if _, ok := a.Expr.(*ast.DefaultExpr); ok {
			d := t.cols[ci].defaultValue()
			as = append(as, assign{ci, constExpr{d}})
			continue
		}
		e, err := c.compile(a.Expr)
		if err != nil {
			return nil, err
		}
		as = append(as, assign{ci, e})
	}
	n, err := s.eachRow(ctx, p, func(vals []Datum, key []byte, ver uint64) (bool, error) {
		nv := append([]Datum(nil), vals...)
		for _, a := range as {
			v, err := a.e.eval(vals) // every SET sees the old row (standard SQL)
			if err != nil {
				return false, err
			}
			if v, err = convert(v, t.cols[a.ci].Type, t.cols[a.ci].Name); err != nil {
				return false, err
			}
			if v.IsNull() && t.cols[a.ci].NotNull {
				return false, errf(CodeConstraint, "column %s must not be NULL", t.cols[a.ci].Name)
			}
			nv[a.ci] = v
		}
		return s.writeRow(ctx, t, key, writeCond{true, ver}, nv)
	})
	if err != nil {
		return nil, err
	}
	return &Result{RowsAffected: n}, nil
}

func (s *Session) execDelete(ctx context.Context, st *ast.DeleteStmt) (*Result, error) {
	if st.IsMultiTable {
		return nil, notSupported("multi-table DELETE")
	}
	p, err := s.planDML(ctx, st.TableRefs, st.Where, st.Order, st.Limit, "DELETE")
	if err != nil {
		return nil, err
	}
	n, err := s.eachRow(ctx, p, func(vals []Datum, key []byte, ver uint64) (bool, error) {
		return s.writeRow(ctx, p.t, key, writeCond{true, ver}, nil)
	})
	if err != nil {
		return nil, err
	}
	return &Result{RowsAffected: n}, nil
}

func (s *Session) explain(ctx context.Context, st ast.StmtNode) (*Result, error) {
	s.explaining = true
	defer func() { s.explaining = false }()
	var lines []string
	switch x := st.(type) {
	case *ast.SelectStmt:
		p, err := s.planSelect(ctx, x, false)
		if err != nil {
			return nil, err
		}
		lines = p.explain
	case *ast.UpdateStmt:
		p, err := s.planDML(ctx, x.TableRefs, x.Where, x.Order, x.Limit, "UPDATE")
		if err != nil {
			return nil, err
		}
		lines = p.desc
	case *ast.DeleteStmt:
		p, err := s.planDML(ctx, x.TableRefs, x.Where, x.Order, x.Limit, "DELETE")
		if err != nil {
			return nil, err
		}
		lines = p.desc
	case *ast.InsertStmt:
		lines = []string{"insert: each row by check-and-mutate (absent version cell), rows not atomic with each other"}
	default:
		return nil, notSupported("EXPLAIN of %s", stmtName(st))
	}
	names, types := explainColumns()
	res := &Result{Columns: names, Types: types, Rows: [][]Datum{}}
	for _, l := range lines {
		res.Rows = append(res.Rows, []Datum{strDatum(l)})
	}
	return res, nil
}
