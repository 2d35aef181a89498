package sqllite

import (
	"context"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	driver "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// Columns returns the names and types of the result columns the statement
// returns, without running it (nil for a statement that returns no rows).
// A SELECT is planned against the current catalog, so an unknown table or
// column is reported here, as MySQL reports it at prepare. Types are as
// Result.Types: a column's declared type, or for a computed column the
// type its values have (Type.Kind KindNull where that depends on the
// values, e.g. a parameter marker in the select list: its type is the
// bound value's).
func (st *Stmt) Columns(ctx context.Context) ([]string, []Type, error) {
	if !st.busy.CompareAndSwap(false, true) {
		return nil, nil, errf(CodeInternal, "prepared statement used by two goroutines at once (a Stmt, like its Session, is not safe for concurrent use)")
	}
	defer st.busy.Store(false)
	s := st.s
	target := st.stmt
	if x, ok := target.(*ast.ExplainStmt); ok {
		if sh, ok := x.Stmt.(*ast.ShowStmt); ok {
			target = sh
		} else {
			names, types := explainColumns()
			return names, types, nil
		}
	}
	switch x := target.(type) {
	case *ast.ShowStmt:
		names, types, err := showColumns(x.Tp)
		return names, types, err
	case *ast.SelectStmt:
		if err := s.checkAccess(ctx, st.stmt); err != nil {
			return nil, nil, err
		}
		return s.selectColumns(ctx, x, st.params)
	}
	return nil, nil, nil
}

// selectColumns plans sel with its parameters typed as unknown and bound
// to 0 (a value every place a marker may stand accepts: LIMIT ?, WHERE
// k = ?, a comparison with a column of any type) and returns the plan's
// output columns.
func (s *Session) selectColumns(ctx context.Context, sel *ast.SelectStmt, params []*driver.ValueExpr) ([]string, []Type, error) {
	s.unbound = map[*driver.ValueExpr]bool{}
	for _, p := range params {
		s.unbound[p] = true
	}
	defer func() {
		s.seen, s.fresh, s.unbound = nil, false, nil
		for _, p := range params {
			*p = *ast.NewValueExpr(nil, "", "").(*driver.ValueExpr)
		}
	}()
	for _, p := range params {
		*p = *ast.NewValueExpr(int64(0), "", "").(*driver.ValueExpr)
	}
	plan := func() (*selectPlan, error) {
		s.seen = map[string]*table{}
		return s.planSelect(ctx, sel, false)
	}
	p, err := plan()
	if err != nil {
		// An unknown table or column may come from a stale cache.
		s.fresh = true
		p, err = plan()
	}
	if err != nil {
		return nil, nil, err
	}
	return append([]string(nil), p.names...), append([]Type(nil), p.types...), nil
}

// Types of computed columns (Name set: SHOW's columns have none, see
// showColumns).
var (
	doubleType = Type{Kind: KindFloat, Name: "DOUBLE"}
	textType   = Type{Kind: KindString, Name: "VARCHAR"}
	boolType   = Type{Kind: KindBool, Name: "BOOLEAN"}
	timeType   = Type{Kind: KindTime, Name: "DATETIME"}
)

// showTextType is the type of SHOW's and EXPLAIN's text columns: no Name,
// which tells them from a SELECT's columns (the MySQL layer renames SHOW
// TABLES' column).
var showTextType = Type{Kind: KindString}

// showColumns are the columns SHOW returns (the same in show).
func showColumns(tp ast.ShowStmtType) ([]string, []Type, error) {
	var names []string
	switch tp {
	case ast.ShowTables:
		names = []string{"Tables"}
	case ast.ShowColumns:
		names = []string{"Field", "Type", "Null", "Key", "Default"}
	case ast.ShowCreateTable:
		names = []string{"Table", "Create Table"}
	default:
		return nil, nil, notSupported("this SHOW statement (SHOW TABLES, SHOW CREATE TABLE, DESCRIBE are supported)")
	}
	types := make([]Type, len(names))
	for i := range types {
		types[i] = showTextType
	}
	return names, types, nil
}

func explainColumns() ([]string, []Type) { return []string{"plan"}, []Type{showTextType} }

// exprType is the type of a select-list expression's values, when it
// does not depend on the values (zero Type otherwise). It follows what
// the evaluator produces (expr.go, builtins.go, agg.go).
func (s *Session) exprType(sc *scope, n ast.ExprNode) Type {
	switch x := n.(type) {
	case *ast.ParenthesesExpr:
		return s.exprType(sc, x.Expr)
	case *ast.ColumnNameExpr:
		if i, err := sc.resolve(x.Name); err == nil {
			return sc.colType(i)
		}
	case *driver.ValueExpr:
		if s.unbound[x] {
			return Type{} // a parameter: the bound value's type
		}
		return literalType(x)
	case *ast.BinaryOperationExpr:
		return s.binaryType(sc, x)
	case *ast.UnaryOperationExpr:
		switch x.Op {
		case opcode.Not, opcode.Not2:
			return boolType
		case opcode.Minus, opcode.Plus:
			if t := s.exprType(sc, x.V); t.Kind == KindInt || t.Kind == KindFloat {
				return numType(t)
			}
		}
	case *ast.IsNullExpr, *ast.IsTruthExpr, *ast.PatternInExpr, *ast.PatternLikeOrIlikeExpr, *ast.BetweenExpr:
		return boolType
	case *ast.AggregateFuncExpr:
		return s.aggType(sc, x)
	case *ast.FuncCallExpr:
		return s.callType(sc, x)
	case *ast.FuncCastExpr:
		return castType(x)
	case *ast.CaseExpr:
		var ts []Type
		for _, w := range x.WhenClauses {
			ts = append(ts, s.exprType(sc, w.Result))
		}
		if x.ElseClause != nil {
			ts = append(ts, s.exprType(sc, x.ElseClause))
		}
		return common(ts)
	}
	return Type{}
}

func literalType(x *driver.ValueExpr) Type {
	d, err := literal(x)
	if err != nil {
		return Type{}
	}
	switch d.Kind {
	case KindInt:
		return bigintType
	case KindFloat:
		return doubleType
	case KindString:
		return textType
	case KindBytes:
		return Type{Kind: KindBytes, Name: "VARBINARY"}
	case KindDecimal:
		return Type{Kind: KindDecimal, Name: "DECIMAL", Prec: 65, Scale: d.Scale}
	}
	return Type{}
}

// numType is the computed type of a value of numeric type t.
func numType(t Type) Type {
	if t.Kind == KindInt {
		return bigintType
	}
	return doubleType
}

func (s *Session) binaryType(sc *scope, x *ast.BinaryOperationExpr) Type {
	switch x.Op {
	case opcode.LogicAnd, opcode.LogicOr, opcode.LogicXor, opcode.EQ, opcode.NE, opcode.LT, opcode.LE,
		opcode.GT, opcode.GE, opcode.NullEQ:
		return boolType
	case opcode.Plus, opcode.Minus, opcode.Mul, opcode.Mod, opcode.IntDiv:
		l, r := s.exprType(sc, x.L), s.exprType(sc, x.R)
		switch {
		case x.Op == opcode.IntDiv && isNum(l) && isNum(r):
			return bigintType
		case l.Kind == KindInt && r.Kind == KindInt:
			return bigintType
		case (l.Kind == KindFloat && isNum(r)) || (r.Kind == KindFloat && isNum(l)):
			return doubleType
		}
	}
	return Type{}
}

func isNum(t Type) bool { return t.Kind == KindInt || t.Kind == KindFloat }

func (s *Session) aggType(sc *scope, x *ast.AggregateFuncExpr) Type {
	var arg Type
	if len(x.Args) == 1 {
		arg = s.exprType(sc, x.Args[0])
	}
	switch strings.ToLower(x.F) {
	case "count":
		return bigintType
	case "avg":
		if isNum(arg) {
			return doubleType
		}
	case "sum":
		if isNum(arg) {
			return numType(arg)
		}
	case "min", "max":
		return arg
	}
	return Type{}
}

func (s *Session) callType(sc *scope, x *ast.FuncCallExpr) Type {
	args := make([]Type, len(x.Args))
	for i, a := range x.Args {
		args[i] = s.exprType(sc, a)
	}
	switch x.FnName.L {
	case "lower", "lcase", "upper", "ucase", "trim", "ltrim", "rtrim", "substring", "substr", "replace",
		"reverse", "left", "right", "repeat", "concat":
		for _, a := range args {
			if a.Kind != KindString {
				return Type{} // bytes stay bytes; NULL arguments
			}
		}
		return textType
	case "hex":
		return textType
	case "length", "octet_length", "char_length", "character_length", "locate", "instr", "position":
		return bigintType
	case "abs":
		if len(args) == 1 && isNum(args[0]) {
			return numType(args[0])
		}
	case "coalesce", "ifnull", "nvl", "greatest", "least":
		return common(args)
	case "nullif":
		if len(args) > 0 {
			return common(args[:1])
		}
	case "if":
		if len(args) == 3 {
			return common(args[1:])
		}
	case "now", "current_timestamp", "utc_timestamp":
		return timeType
	}
	return Type{}
}

// common is the type of every one of ts when they agree (computed types
// only: a declared VARCHAR(8) and VARCHAR(9) do not).
func common(ts []Type) Type {
	if len(ts) == 0 {
		return Type{}
	}
	for _, t := range ts[1:] {
		if t != ts[0] {
			return Type{}
		}
	}
	return ts[0]
}

func castType(x *ast.FuncCastExpr) Type {
	t, err := castTarget(x)
	if err != nil {
		return Type{}
	}
	return t
}

// showTypes are the types of SHOW tp's columns (see showColumns).
func showTypes(tp ast.ShowStmtType) []Type {
	_, types, _ := showColumns(tp)
	return types
}
