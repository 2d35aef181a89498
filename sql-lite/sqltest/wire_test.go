package sqltest

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	sqllite "github.com/shaledb/shale/sql-lite"
	"github.com/shaledb/shale/sql-lite/mysqlwire"
)

// The differential test through the MySQL protocol: Shale's side runs in
// a mysqlwire server and is queried with go-sql-driver/mysql, so the
// answers also check the wire layer's column types and value encoding
// (results are converted back by the column types the server reports).
func TestDifferentialSQLiteWire(t *testing.T) {
	srv, err := mysqlwire.New(shared.client, mysqlwire.Config{User: "root"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", fmt.Sprintf("root:@tcp(%s)/%s", addr, mysqlwire.Database))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	runDifferential(t, "TestDifferentialSQLiteWire", wireExec{conn})
}

// wireExec runs statements on one MySQL connection and converts the
// answers into sql-lite results.
type wireExec struct{ c *sql.Conn }

func (w wireExec) Exec(ctx context.Context, q string) ([]*sqllite.Result, error) {
	if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "SELECT") {
		res, err := w.c.ExecContext(ctx, q)
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		return []*sqllite.Result{{RowsAffected: n}}, err
	}
	rows, err := w.c.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := &sqllite.Result{Rows: [][]sqllite.Datum{}}
	for _, ct := range cts {
		out.Columns = append(out.Columns, ct.Name())
	}
	raw := make([]any, len(cts))
	for i := range raw {
		raw[i] = new(sql.RawBytes)
	}
	for rows.Next() {
		if err := rows.Scan(raw...); err != nil {
			return nil, err
		}
		row := make([]sqllite.Datum, len(cts))
		for i, ct := range cts {
			b := *raw[i].(*sql.RawBytes)
			if row[i], err = wireDatum(ct.DatabaseTypeName(), b); err != nil {
				return nil, fmt.Errorf("column %s: %w", ct.Name(), err)
			}
		}
		out.Rows = append(out.Rows, row)
	}
	return []*sqllite.Result{out}, rows.Err()
}

// wireDatum reads a text-protocol value by its MySQL column type.
func wireDatum(typ string, b []byte) (sqllite.Datum, error) {
	if b == nil {
		return sqllite.Datum{}, nil
	}
	s := string(b)
	switch typ {
	case "BIGINT", "INT", "SMALLINT", "TINYINT":
		n, err := strconv.ParseInt(s, 10, 64)
		return sqllite.Datum{Kind: sqllite.KindInt, Value: n}, err
	case "DOUBLE", "FLOAT":
		f, err := strconv.ParseFloat(s, 64)
		return sqllite.Datum{Kind: sqllite.KindFloat, Value: f}, err
	case "DECIMAL":
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return sqllite.Datum{}, fmt.Errorf("bad DECIMAL %q", s)
		}
		return sqllite.Datum{Kind: sqllite.KindDecimal, Value: r}, nil
	case "VARCHAR", "CHAR", "TEXT":
		return sqllite.Datum{Kind: sqllite.KindString, Value: s}, nil
	}
	return sqllite.Datum{}, fmt.Errorf("unexpected column type %s (value %q)", typ, s)
}
