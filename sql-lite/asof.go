package sqllite

import (
	"context"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/shaledb/shale/kvclient"
)

// Reads at one timestamp (docs/sql.md, "Consistent reads").
//
// Every SELECT reads all its tablets at one timestamp (Session.readTS):
// the client's present (kvclient.Client.Now, which includes this
// session's writes), the transaction's snapshot inside BEGIN ... COMMIT,
// or the past named by AS OF TIMESTAMP. Joins and scans over many tablets
// therefore see one consistent state while writes go on.

// maxTooOldRetries bounds how often a SELECT at an implicit timestamp is
// rerun later after a tablet refused its timestamp (ReadTooOld: a delete
// committed meanwhile at a later timestamp removed versions it needed).
const maxTooOldRetries = 3

// selectTimestamp picks a SELECT's read timestamp; explicit: the user or
// the transaction chose it, so a read it is too old for fails instead of
// moving on.
func (s *Session) selectTimestamp(st *ast.SelectStmt) (ts int64, explicit bool, err error) {
	asOf, err := statementAsOf(st)
	if err != nil {
		return 0, false, err
	}
	switch {
	case asOf != 0 && s.txn != nil:
		return 0, false, errf(CodeTransaction, "AS OF TIMESTAMP cannot be used inside a transaction (it reads at its own snapshot); use START TRANSACTION READ ONLY AS OF TIMESTAMP ...")
	case asOf != 0:
		if asOf > s.client.Now() {
			return 0, false, errf(CodeType, "AS OF TIMESTAMP %s is in the future", time.UnixMicro(asOf).UTC().Format("2006-01-02 15:04:05.999999"))
		}
		return asOf, true, nil
	case s.txn != nil:
		return s.txn.ts, true, nil
	}
	return s.client.Now(), false, nil
}

// asOfCollector finds the AS OF clauses of a statement's tables.
type asOfCollector struct {
	clauses []*ast.AsOfClause
	tables  int
}

func (v *asOfCollector) Enter(n ast.Node) (ast.Node, bool) {
	if x, ok := n.(*ast.TableName); ok {
		v.tables++
		if x.AsOf != nil {
			v.clauses = append(v.clauses, x.AsOf)
		}
	}
	return n, false
}

func (v *asOfCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// statementAsOf evaluates the statement's AS OF TIMESTAMP (0: none). All
// its tables must name the same timestamp.
func statementAsOf(st *ast.SelectStmt) (int64, error) {
	if st.From == nil {
		return 0, nil
	}
	var v asOfCollector
	st.From.TableRefs.Accept(&v)
	if len(v.clauses) > 0 && len(v.clauses) != v.tables {
		return 0, errf(CodeType, "every table of a statement must be read AS OF the same timestamp (name it on each)")
	}
	var ts int64
	for _, c := range v.clauses {
		t, err := evalAsOf(c.TsExpr)
		if err != nil {
			return 0, err
		}
		if ts != 0 && t != ts {
			return 0, errf(CodeType, "every table of a statement must be read AS OF the same timestamp")
		}
		ts = t
	}
	return ts, nil
}

// refuseAsOf refuses AS OF TIMESTAMP on a statement that writes: it
// would write the present from a view of the past.
func refuseAsOf(refs *ast.TableRefsClause) error {
	if refs == nil || refs.TableRefs == nil {
		return nil
	}
	var v asOfCollector
	refs.TableRefs.Accept(&v)
	if len(v.clauses) > 0 {
		return notSupported("AS OF TIMESTAMP on INSERT, UPDATE or DELETE")
	}
	return nil
}

// evalAsOf evaluates an AS OF TIMESTAMP expression to HLC microseconds: a
// TIMESTAMP ('YYYY-MM-DD hh:mm:ss[.ffffff]', UTC, or NOW()), optionally
// minus or plus an INTERVAL, or an integer (a Shale timestamp in
// microseconds, as commit timestamps are shown).
func evalAsOf(n ast.ExprNode) (int64, error) {
	if f, ok := n.(*ast.FuncCallExpr); ok && len(f.Args) == 3 {
		switch f.FnName.L {
		case "date_sub", "date_add", "subdate", "adddate":
			return evalInterval(f)
		}
	}
	e, err := (&compiler{sc: &scope{}}).compile(n)
	if err != nil {
		return 0, err
	}
	d, err := e.eval(nil)
	if err != nil {
		return 0, err
	}
	var ts int64
	switch d.Kind {
	case KindTime:
		ts = d.Value.(time.Time).UnixMicro()
	case KindString:
		t, err := parseTime(d.Value.(string))
		if err != nil {
			return 0, err
		}
		ts = t.UnixMicro()
	case KindInt:
		ts = d.Value.(int64)
	default:
		return 0, errf(CodeType, "AS OF TIMESTAMP needs a TIMESTAMP, a 'YYYY-MM-DD hh:mm:ss' string or an integer timestamp; got %s", exprText(n))
	}
	if ts <= 0 {
		return 0, errf(CodeType, "AS OF TIMESTAMP %s is not after 1970", exprText(n))
	}
	return ts, nil
}

// evalInterval evaluates t - INTERVAL n unit (and +).
func evalInterval(f *ast.FuncCallExpr) (int64, error) {
	base, err := evalAsOf(f.Args[0])
	if err != nil {
		return 0, err
	}
	unit, ok := f.Args[2].(*ast.TimeUnitExpr)
	if !ok {
		return 0, errf(CodeType, "AS OF TIMESTAMP: %s: expected an INTERVAL", exprText(f))
	}
	e, err := (&compiler{sc: &scope{}}).compile(f.Args[1])
	if err != nil {
		return 0, err
	}
	d, err := e.eval(nil)
	if err != nil {
		return 0, err
	}
	fl, ok := toFloat(d)
	if !ok {
		return 0, errf(CodeType, "AS OF TIMESTAMP: interval %s is not a number", exprText(f.Args[1]))
	}
	var per time.Duration
	switch unit.Unit.String() {
	case "MICROSECOND":
		per = time.Microsecond
	case "SECOND":
		per = time.Second
	case "MINUTE":
		per = time.Minute
	case "HOUR":
		per = time.Hour
	case "DAY":
		per = 24 * time.Hour
	default:
		return 0, notSupported("INTERVAL unit %s in AS OF TIMESTAMP (use MICROSECOND, SECOND, MINUTE, HOUR or DAY)", unit.Unit.String())
	}
	delta := int64(fl * float64(per.Microseconds()))
	if f.FnName.L == "date_sub" || f.FnName.L == "subdate" {
		delta = -delta
	}
	return base + delta, nil
}

// readOpts are an access's read options at the statement's timestamp.
func (s *Session) readOpts(a *access) []kvclient.ReadOption {
	opts := a.readOpts()
	if s.readTS != 0 {
		opts = append(opts, kvclient.AsOf(s.readTS))
	}
	return opts
}

// execSelect runs a SELECT at one timestamp (see the top of this file).
func (s *Session) execSelect(ctx context.Context, st *ast.SelectStmt) (*Result, error) {
	if s.readTS != 0 { // a rerun inside the statement: same timestamp
		return s.execSelectOnce(ctx, st)
	}
	ts, explicit, err := s.selectTimestamp(st)
	if err != nil {
		return nil, err
	}
	defer func() { s.readTS, s.readImplicit = 0, false }()
	for attempt := 0; ; attempt++ {
		s.readTS, s.readImplicit = ts, !explicit
		res, err := s.execSelectOnce(ctx, st)
		floor, tooOld := kvclient.ReadTooOldFloor(err)
		if !tooOld || explicit || attempt >= maxTooOldRetries {
			return res, readTooOldErr(err, tooOld, explicit)
		}
		ts = max(s.client.Now(), floor)
	}
}

// readTooOldErr explains a read below a tablet's history floor.
func readTooOldErr(err error, tooOld, explicit bool) error {
	if !tooOld {
		return err
	}
	msg := "the data as of this timestamp is no longer complete (a later delete or version GC removed versions it needs); read at a later timestamp"
	if !explicit {
		msg = "tablets kept refusing the statement's timestamp (deletes are committing under it); retry"
	}
	return &Error{Code: CodeStorage, Msg: msg + ": " + err.Error(), Cause: err}
}
