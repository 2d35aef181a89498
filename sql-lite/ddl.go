package sqllite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/types"

	"github.com/shaledb/shale/kvclient"
)

// columnType maps a parsed column type onto a SQL type.
func columnType(col string, ft *types.FieldType) (Type, error) {
	if mysql.HasUnsignedFlag(ft.GetFlag()) {
		return Type{}, notSupported("UNSIGNED (column %s)", col)
	}
	flen := ft.GetFlen()
	binary := ft.GetCharset() == "binary"
	switch ft.GetType() {
	case mysql.TypeLonglong:
		return Type{Kind: KindInt, Name: "BIGINT"}, nil
	case mysql.TypeLong, mysql.TypeInt24:
		return Type{Kind: KindInt, Name: "INT"}, nil
	case mysql.TypeShort:
		return Type{Kind: KindInt, Name: "SMALLINT"}, nil
	case mysql.TypeTiny:
		if flen == 1 {
			return Type{Kind: KindBool, Name: "BOOLEAN"}, nil
		}
		return Type{Kind: KindInt, Name: "TINYINT"}, nil
	case mysql.TypeDouble:
		return Type{Kind: KindFloat, Name: "DOUBLE"}, nil
	case mysql.TypeFloat:
		return Type{Kind: KindFloat, Name: "FLOAT"}, nil
	case mysql.TypeNewDecimal:
		p, sc := flen, ft.GetDecimal()
		if p <= 0 {
			p = 10
		}
		if sc < 0 {
			sc = 0
		}
		if p > 18 || sc > p {
			return Type{}, notSupported("DECIMAL(%d,%d) (column %s): precision is at most 18 (values are stored as scaled 64-bit integers)", p, sc, col)
		}
		return Type{Kind: KindDecimal, Name: "DECIMAL", Prec: p, Scale: sc}, nil
	case mysql.TypeVarchar, mysql.TypeVarString:
		if flen < 0 {
			flen = 0
		}
		if binary {
			return Type{Kind: KindBytes, Name: "VARBINARY", Len: flen}, nil
		}
		return Type{Kind: KindString, Name: "VARCHAR", Len: flen}, nil
	case mysql.TypeString:
		if flen < 0 {
			flen = 1
		}
		if binary {
			return Type{Kind: KindBytes, Name: "BINARY", Len: flen}, nil
		}
		return Type{Kind: KindString, Name: "CHAR", Len: flen}, nil
	case mysql.TypeBlob, mysql.TypeTinyBlob, mysql.TypeMediumBlob, mysql.TypeLongBlob:
		if binary {
			return Type{Kind: KindBytes, Name: "BLOB"}, nil
		}
		return Type{Kind: KindString, Name: "TEXT"}, nil
	case mysql.TypeTimestamp:
		return Type{Kind: KindTime, Name: "TIMESTAMP"}, nil
	case mysql.TypeDatetime:
		return Type{Kind: KindTime, Name: "DATETIME"}, nil
	}
	return Type{}, notSupported("column type %s (column %s)", strings.ToUpper(types.TypeToStr(ft.GetType(), ft.GetCharset())), col)
}

var tableNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)

// columnDef builds a column from its definition; pk reports a PRIMARY KEY
// column option.
func columnDef(d *ast.ColumnDef, id uint64) (ColumnDef, bool, error) {
	name := d.Name.Name.O
	t, err := columnType(name, d.Tp)
	if err != nil {
		return ColumnDef{}, false, err
	}
	col := ColumnDef{ID: id, Name: name, Type: t}
	pk := false
	for _, o := range d.Options {
		switch o.Tp {
		case ast.ColumnOptionPrimaryKey:
			pk = true
		case ast.ColumnOptionNotNull:
			col.NotNull = true
		case ast.ColumnOptionNull:
			col.NotNull = false
		case ast.ColumnOptionDefaultValue:
			if fc, ok := o.Expr.(*ast.FuncCallExpr); ok && (fc.FnName.L == "current_timestamp" || fc.FnName.L == "now" || fc.FnName.L == "utc_timestamp") && len(fc.Args) == 0 {
				if t.Kind != KindTime {
					return col, false, typeErr("DEFAULT CURRENT_TIMESTAMP needs a TIMESTAMP or DATETIME column (column %s is %s)", name, t)
				}
				col.DefaultNow = true
				continue
			}
			v, ok := constValue(o.Expr)
			if !ok {
				return col, false, notSupported("non-constant DEFAULT (column %s)", name)
			}
			if v.IsNull() {
				col.Default = nil
				continue
			}
			c, err := convert(v, t, name)
			if err != nil {
				return col, false, err
			}
			str := c.String()
			col.Default = &str
		case ast.ColumnOptionComment:
		case ast.ColumnOptionAutoIncrement:
			return col, false, notSupported("AUTO_INCREMENT (column %s)", name)
		case ast.ColumnOptionUniqKey:
			return col, false, notSupported("UNIQUE (secondary indexes; column %s)", name)
		default:
			return col, false, notSupported("column option %s (column %s)", columnOptionName(o), name)
		}
	}
	if col.Default != nil && col.NotNull {
		// fine
	}
	return col, pk, nil
}

func columnOptionName(o *ast.ColumnOption) string {
	var sb strings.Builder
	_ = sb
	return strings.ToUpper(exprTextOpt(o))
}

func exprTextOpt(o *ast.ColumnOption) string {
	s := exprText(o)
	if s == "?" {
		return fmt.Sprintf("#%d", o.Tp)
	}
	return s
}

// defaultValue returns a column's default as a value of its type.
func (c ColumnDef) defaultValue() Datum {
	if c.DefaultNow {
		return timeDatum(time.Now())
	}
	if c.Default == nil {
		return nullDatum
	}
	v, err := convert(strDatum(*c.Default), c.Type, c.Name)
	if err != nil {
		return nullDatum
	}
	return v
}

var splitRE = regexp.MustCompile(`(?is)^\s*split\s+at\s+(.*)$`)

func (s *Session) createTable(ctx context.Context, st *ast.CreateTableStmt) (*Result, error) {
	if st.ReferTable != nil || st.Select != nil {
		return nil, notSupported("CREATE TABLE ... LIKE / AS SELECT")
	}
	if st.Table.Schema.L != "" {
		return nil, notSupported("schema-qualified table names")
	}
	name := st.Table.Name.L
	if !tableNameRE.MatchString(name) {
		return nil, errf(CodeConstraint, "table name %q is invalid: use letters, digits and '_', starting with a letter or '_', at most 64 characters", st.Table.Name.O)
	}
	var sch tableSchema
	seen := map[string]bool{}
	var pkNames []string
	for i, d := range st.Cols {
		col, pk, err := columnDef(d, uint64(i+1))
		if err != nil {
			return nil, err
		}
		if seen[strings.ToLower(col.Name)] {
			return nil, errf(CodeConstraint, "column %s is defined twice", col.Name)
		}
		seen[strings.ToLower(col.Name)] = true
		if pk {
			pkNames = append(pkNames, col.Name)
		}
		sch.Columns = append(sch.Columns, col)
	}
	for _, c := range st.Constraints {
		switch c.Tp {
		case ast.ConstraintPrimaryKey:
			if len(pkNames) > 0 {
				return nil, errf(CodeConstraint, "multiple primary keys defined")
			}
			for _, k := range c.Keys {
				if k.Column == nil {
					return nil, notSupported("expression primary keys")
				}
				if k.Length > 0 {
					return nil, notSupported("prefix primary keys")
				}
				pkNames = append(pkNames, k.Column.Name.O)
			}
		case ast.ConstraintForeignKey:
			return nil, notSupported("FOREIGN KEY")
		case ast.ConstraintCheck:
			return nil, notSupported("CHECK constraints")
		default:
			return nil, notSupported("secondary indexes and UNIQUE constraints (KEY/INDEX/UNIQUE)")
		}
	}
	if len(pkNames) == 0 {
		return nil, errf(CodeConstraint, "table %s needs a PRIMARY KEY: its columns are the row key", name)
	}
	if len(pkNames) > 1 && len(pkNames) != len(uniq(pkNames)) {
		return nil, errf(CodeConstraint, "primary key lists a column twice")
	}
	for _, pn := range pkNames {
		found := false
		for i := range sch.Columns {
			if strings.EqualFold(sch.Columns[i].Name, pn) {
				sch.Columns[i].NotNull = true
				sch.PK = append(sch.PK, sch.Columns[i].ID)
				found = true
			}
		}
		if !found {
			return nil, errf(CodeUnknownColumn, "primary key column %s is not defined", pn)
		}
	}
	sch.NextID = uint64(len(sch.Columns) + 1)
	var splits [][]byte
	for _, o := range st.Options {
		switch o.Tp {
		case ast.TableOptionComment:
			m := splitRE.FindStringSubmatch(o.StrValue)
			if m == nil {
				return nil, notSupported("table COMMENT other than 'SPLIT AT (v, ...), ...' (pre-split row keys)")
			}
			var err error
			if splits, sch.Splits, err = s.parseSplits(m[1], &sch); err != nil {
				return nil, err
			}
		case ast.TableOptionEngine, ast.TableOptionCharset, ast.TableOptionCollate:
		default:
			return nil, notSupported("table option %s", exprText(o))
		}
	}
	if st.Partition != nil {
		return nil, notSupported("PARTITION BY (tables are split into tablets by key automatically; pre-split with SPLIT BETWEEN or COMMENT 'SPLIT AT ...')")
	}
	if st.TemporaryKeyword != ast.TemporaryNone {
		return nil, notSupported("temporary tables")
	}
	for _, so := range st.SplitIndex {
		if !so.TableLevel && !so.PrimaryKey {
			return nil, notSupported("SPLIT INDEX (secondary indexes)")
		}
		if len(splits) > 0 {
			return nil, errf(CodeConstraint, "give pre-split keys once (SPLIT BETWEEN or COMMENT 'SPLIT AT ...')")
		}
		var err error
		if splits, sch.Splits, err = s.splitBetween(so.SplitOpt, &sch); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(&sch)
	if err != nil {
		return nil, err
	}
	_, err = s.client.CreateTableWithSQLSchema(ctx, name, []kvclient.Family{{Name: family, MaxVersions: 1}}, raw, splits...)
	if err != nil {
		if errors.Is(err, kvclient.ErrTableExists) {
			if st.IfNotExists {
				return &Result{Message: fmt.Sprintf("table %s already exists (skipped)", name)}, nil
			}
			return nil, errf(CodeTableExists, "table %s already exists", name)
		}
		return nil, storageErr(err, "create table "+name)
	}
	s.cache.drop(name)
	return &Result{Message: fmt.Sprintf("table %s created", name)}, nil
}

func uniq(ss []string) []string {
	m := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !m[strings.ToLower(s)] {
			m[strings.ToLower(s)] = true
			out = append(out, s)
		}
	}
	return out
}

// parseSplits parses "(v, ...), (v, ...)" split tuples (prefixes of the
// primary key) into row keys.
func (s *Session) parseSplits(text string, sch *tableSchema) ([][]byte, []string, error) {
	stmts, err := s.parse("INSERT INTO x VALUES " + text)
	if err != nil || len(stmts) != 1 {
		return nil, nil, errf(CodeParse, "SPLIT AT expects tuples of key values like (10), (20): %v", err)
	}
	ins := stmts[0].(*ast.InsertStmt)
	var keys [][]byte
	var texts []string
	for _, tuple := range ins.Lists {
		if len(tuple) > len(sch.PK) {
			return nil, nil, errf(CodeConstraint, "SPLIT AT tuple has %d values but the primary key has %d columns", len(tuple), len(sch.PK))
		}
		var k []byte
		var parts []string
		for i, e := range tuple {
			v, ok := constValue(e)
			if !ok || v.IsNull() {
				return nil, nil, errf(CodeConstraint, "SPLIT AT values must be non-NULL constants")
			}
			var col ColumnDef
			for _, c := range sch.Columns {
				if c.ID == sch.PK[i] {
					col = c
				}
			}
			cv, err := convert(v, col.Type, col.Name)
			if err != nil {
				return nil, nil, err
			}
			k = encodeValue(k, cv, col.Type, true)
			parts = append(parts, quoteVal(cv))
		}
		keys = append(keys, k)
		texts = append(texts, "("+strings.Join(parts, ", ")+")")
	}
	return keys, texts, nil
}

// splitBetween turns SPLIT [PRIMARY KEY] BETWEEN (lo) AND (hi) REGIONS n
// into n-1 evenly spaced split keys on the first key column (an integer
// kind), or SPLIT BY (v), ... into those keys.
func (s *Session) splitBetween(o *ast.SplitOption, sch *tableSchema) ([][]byte, []string, error) {
	var first ColumnDef
	for _, c := range sch.Columns {
		if c.ID == sch.PK[0] {
			first = c
		}
	}
	var tuples [][]Datum
	if len(o.ValueLists) > 0 {
		for _, l := range o.ValueLists {
			var tuple []Datum
			for _, e := range l {
				v, ok := constValue(e)
				if !ok {
					return nil, nil, errf(CodeConstraint, "SPLIT BY values must be constants")
				}
				tuple = append(tuple, v)
			}
			tuples = append(tuples, tuple)
		}
	} else {
		if len(o.Lower) != 1 || len(o.Upper) != 1 {
			return nil, nil, notSupported("SPLIT BETWEEN with more than one value per bound (give the first key column's range)")
		}
		if first.Type.Kind != KindInt {
			return nil, nil, notSupported("SPLIT BETWEEN on a %s key (use COMMENT 'SPLIT AT (v), ...')", first.Type)
		}
		lv, ok1 := constValue(o.Lower[0])
		hv, ok2 := constValue(o.Upper[0])
		if !ok1 || !ok2 {
			return nil, nil, errf(CodeConstraint, "SPLIT BETWEEN bounds must be constants")
		}
		lo, err := convert(lv, first.Type, first.Name)
		if err != nil {
			return nil, nil, err
		}
		hi, err := convert(hv, first.Type, first.Name)
		if err != nil {
			return nil, nil, err
		}
		l, h := lo.Value.(int64), hi.Value.(int64)
		if o.Num < 1 || o.Num > 1000 || h <= l {
			return nil, nil, errf(CodeConstraint, "SPLIT BETWEEN needs lower < upper and 1 to 1000 REGIONS")
		}
		step := new(big.Int).Sub(big.NewInt(h), big.NewInt(l))
		for k := int64(1); k < o.Num; k++ {
			v := new(big.Int).Mul(step, big.NewInt(k))
			v.Quo(v, big.NewInt(o.Num))
			v.Add(v, big.NewInt(l))
			tuples = append(tuples, []Datum{intDatum(v.Int64())})
		}
	}
	var keys [][]byte
	var texts []string
	seen := map[string]bool{}
	for _, tuple := range tuples {
		k, text, err := splitKey(tuple, sch)
		if err != nil {
			return nil, nil, err
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
			texts = append(texts, text)
		}
	}
	return keys, texts, nil
}

// splitKey encodes a tuple of leading key values as a split row key.
func splitKey(tuple []Datum, sch *tableSchema) ([]byte, string, error) {
	if len(tuple) > len(sch.PK) {
		return nil, "", errf(CodeConstraint, "split tuple has %d values but the primary key has %d columns", len(tuple), len(sch.PK))
	}
	var k []byte
	var parts []string
	for i, v := range tuple {
		if v.IsNull() {
			return nil, "", errf(CodeConstraint, "split values must not be NULL")
		}
		var col ColumnDef
		for _, c := range sch.Columns {
			if c.ID == sch.PK[i] {
				col = c
			}
		}
		cv, err := convert(v, col.Type, col.Name)
		if err != nil {
			return nil, "", err
		}
		k = encodeValue(k, cv, col.Type, true)
		parts = append(parts, sqlLiteral(cv))
	}
	return k, "(" + strings.Join(parts, ", ") + ")", nil
}

func (s *Session) dropTable(ctx context.Context, st *ast.DropTableStmt) (*Result, error) {
	if st.IsView {
		return nil, notSupported("views")
	}
	var dropped []string
	for _, tn := range st.Tables {
		name := tn.Name.L
		if _, err := s.lookup(ctx, name); err != nil {
			if errors.Is(err, ErrUnknownTable) && st.IfExists {
				continue
			}
			return nil, err
		}
		s.cache.drop(name)
		if err := s.client.DropTable(ctx, name); err != nil {
			if errors.Is(err, kvclient.ErrTableNotFound) && st.IfExists {
				continue
			}
			return nil, storageErr(err, "drop table "+name)
		}
		dropped = append(dropped, name)
	}
	if len(dropped) == 0 {
		return &Result{Message: "no table dropped"}, nil
	}
	return &Result{Message: "dropped " + strings.Join(dropped, ", ")}, nil
}

func (s *Session) alterTable(ctx context.Context, st *ast.AlterTableStmt) (*Result, error) {
	name := st.Table.Name.L
	s.cache.drop(name)
	t, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	sch := t.schema
	sch.Columns = append([]ColumnDef(nil), sch.Columns...)
	var msgs []string
	for _, spec := range st.Specs {
		switch spec.Tp {
		case ast.AlterTableAddColumns:
			if spec.Position != nil && spec.Position.Tp != ast.ColumnPositionNone {
				return nil, notSupported("ADD COLUMN ... FIRST/AFTER")
			}
			for _, d := range spec.NewColumns {
				col, pk, err := columnDef(d, sch.NextID)
				if err != nil {
					return nil, err
				}
				if pk {
					return nil, notSupported("adding a primary key column (the row key cannot change)")
				}
				if col.DefaultNow {
					return nil, notSupported("ADD COLUMN ... DEFAULT CURRENT_TIMESTAMP (existing rows would need a rewrite; add it without a default)")
				}
				if col.NotNull && col.Default == nil {
					return nil, errf(CodeConstraint, "ADD COLUMN %s NOT NULL needs a DEFAULT for the existing rows", col.Name)
				}
				if sch.NextID >= 1<<epochBits-1 {
					return nil, errf(CodeResource, "table %s has used up its %d column IDs", name, 1<<epochBits-1)
				}
				// Existing rows read the default without being rewritten.
				col.Backfill = col.Default != nil
				for _, c := range sch.Columns {
					if strings.EqualFold(c.Name, col.Name) {
						if spec.IfNotExists {
							goto next
						}
						return nil, errf(CodeConstraint, "column %s already exists", col.Name)
					}
				}
				sch.NextID++
				sch.Columns = append(sch.Columns, col)
				msgs = append(msgs, "added column "+col.Name)
			next:
			}
		case ast.AlterTableDropColumn:
			cn := spec.OldColumnName.Name.L
			idx := -1
			for i, c := range sch.Columns {
				if strings.ToLower(c.Name) == cn {
					idx = i
				}
			}
			if idx < 0 {
				if spec.IfExists {
					continue
				}
				return nil, errf(CodeUnknownColumn, "unknown column %s", spec.OldColumnName.Name.O)
			}
			for _, id := range sch.PK {
				if sch.Columns[idx].ID == id {
					return nil, notSupported("dropping a primary key column")
				}
			}
			msgs = append(msgs, "dropped column "+sch.Columns[idx].Name)
			sch.Columns = append(sch.Columns[:idx:idx], sch.Columns[idx+1:]...)
		default:
			return nil, notSupported("ALTER TABLE %s (only ADD COLUMN and DROP COLUMN)", exprText(spec))
		}
	}
	raw, err := json.Marshal(&sch)
	if err != nil {
		return nil, err
	}
	if _, err := s.client.SetSQLSchema(ctx, name, t.info.Version, raw); err != nil {
		if errors.Is(err, kvclient.ErrInvalidArgument) {
			return nil, errf(CodeConflict, "table %s changed concurrently; retry: %v", name, err)
		}
		return nil, storageErr(err, "alter table "+name)
	}
	s.cache.drop(name)
	return &Result{Message: strings.Join(msgs, "; ")}, nil
}

func (s *Session) show(ctx context.Context, st *ast.ShowStmt) (*Result, error) {
	switch st.Tp {
	case ast.ShowTables:
		names, err := s.TableNames(ctx)
		if err != nil {
			return nil, err
		}
		res := &Result{Columns: []string{"Tables"}, Rows: [][]Datum{}, Types: showTypes(st.Tp)}
		if st.Where != nil {
			return nil, notSupported("SHOW TABLES WHERE (use LIKE)")
		}
		for _, n := range names {
			if st.Pattern != nil {
				pv, ok := constValue(st.Pattern.Pattern)
				if !ok || pv.Kind != KindString {
					return nil, notSupported("SHOW TABLES LIKE with a non-string pattern")
				}
				if !likeMatch(n, pv.Value.(string), '\\') {
					continue
				}
			}
			res.Rows = append(res.Rows, []Datum{strDatum(n)})
		}
		return res, nil
	case ast.ShowColumns:
		t, err := s.lookup(ctx, st.Table.Name.L)
		if err != nil {
			return nil, err
		}
		res := &Result{Columns: []string{"Field", "Type", "Null", "Key", "Default"}, Rows: [][]Datum{}, Types: showTypes(st.Tp)}
		for i, c := range t.cols {
			null, key, def := "YES", "", nullDatum
			if c.NotNull {
				null = "NO"
			}
			if t.isPK[i] {
				key = "PRI"
			}
			if c.Default != nil {
				def = strDatum(*c.Default)
			}
			if c.DefaultNow {
				def = strDatum("CURRENT_TIMESTAMP")
			}
			res.Rows = append(res.Rows, []Datum{strDatum(c.Name), strDatum(c.Type.String()), strDatum(null), strDatum(key), def})
		}
		return res, nil
	case ast.ShowCreateTable:
		t, err := s.lookup(ctx, st.Table.Name.L)
		if err != nil {
			return nil, err
		}
		return &Result{Columns: []string{"Table", "Create Table"}, Types: showTypes(st.Tp), Rows: [][]Datum{{strDatum(t.name), strDatum(t.createSQL())}}}, nil
	}
	return nil, notSupported("this SHOW statement (SHOW TABLES, SHOW CREATE TABLE, DESCRIBE are supported)")
}

// createSQL renders the table as a CREATE TABLE statement.
func (t *table) createSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n", t.name)
	for _, c := range t.cols {
		fmt.Fprintf(&b, "  %s %s", c.Name, c.Type)
		if c.NotNull {
			b.WriteString(" NOT NULL")
		}
		if c.Default != nil {
			v := c.defaultValue()
			fmt.Fprintf(&b, " DEFAULT %s", sqlLiteral(v))
		}
		if c.DefaultNow {
			b.WriteString(" DEFAULT CURRENT_TIMESTAMP")
		}
		b.WriteString(",\n")
	}
	var pk []string
	for _, ci := range t.pk {
		pk = append(pk, t.cols[ci].Name)
	}
	fmt.Fprintf(&b, "  PRIMARY KEY (%s)\n)", strings.Join(pk, ", "))
	if len(t.schema.Splits) > 0 {
		fmt.Fprintf(&b, " COMMENT 'SPLIT AT %s'", strings.ReplaceAll(strings.Join(t.schema.Splits, ", "), "'", "''"))
	}
	return b.String()
}

// sqlLiteral renders a value as a SQL literal.
func sqlLiteral(v Datum) string {
	switch v.Kind {
	case KindNull:
		return "NULL"
	case KindString, KindTime:
		return "'" + strings.ReplaceAll(v.String(), "'", "''") + "'"
	case KindBytes:
		return fmt.Sprintf("x'%x'", v.Value.([]byte))
	case KindBool:
		return strings.ToUpper(v.String())
	}
	return v.String()
}
