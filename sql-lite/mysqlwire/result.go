package mysqlwire

import (
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	sqllite "github.com/shaledb/shale/sql-lite"
)

// Collation IDs sent with columns: text is utf8mb4 (utf8mb4_general_ci,
// known to MySQL and MariaDB clients), bytes and numbers are binary.
const (
	collUTF8MB4 = 45
	collBinary  = 63
)

// column is how one result column is sent.
type column struct {
	typ   uint8 // mysql.MYSQL_TYPE_*
	kind  sqllite.Kind
	field *mysql.Field
}

// columnFor picks the MySQL type of a column from its declared type, or
// for a computed column from the kinds of its values.
func columnFor(name string, decl sqllite.Type, rows [][]sqllite.Datum, i int) column {
	kind, uniform := decl.Kind, decl.Kind != sqllite.KindNull
	if uniform {
		for _, r := range rows {
			if k := r[i].Kind; k != sqllite.KindNull && k != kind {
				uniform = false // not what the column declares: go by the values
				break
			}
		}
	}
	if !uniform {
		decl = sqllite.Type{}
		kind = valuesKind(rows, i)
	}
	f := &mysql.Field{Name: []byte(name), OrgName: []byte(name), Charset: collBinary, Flag: mysql.BINARY_FLAG}
	c := column{kind: kind, field: f}
	switch kind {
	case sqllite.KindInt:
		c.typ, f.ColumnLength = mysql.MYSQL_TYPE_LONGLONG, 20
		switch decl.Name {
		case "INT":
			c.typ, f.ColumnLength = mysql.MYSQL_TYPE_LONG, 11
		case "SMALLINT":
			c.typ, f.ColumnLength = mysql.MYSQL_TYPE_SHORT, 6
		case "TINYINT":
			c.typ, f.ColumnLength = mysql.MYSQL_TYPE_TINY, 4
		}
		f.Flag |= mysql.NUM_FLAG
	case sqllite.KindBool:
		c.typ, f.ColumnLength = mysql.MYSQL_TYPE_TINY, 1
		f.Flag |= mysql.NUM_FLAG
	case sqllite.KindFloat:
		c.typ, f.ColumnLength, f.Decimal = mysql.MYSQL_TYPE_DOUBLE, 22, 31
		f.Flag |= mysql.NUM_FLAG
	case sqllite.KindDecimal:
		c.typ = mysql.MYSQL_TYPE_NEWDECIMAL
		prec, scale := decl.Prec, decl.Scale
		if decl.Kind != sqllite.KindDecimal {
			prec, scale = 65, valuesScale(rows, i)
		}
		f.ColumnLength, f.Decimal = uint32(prec+2), uint8(scale)
		f.Flag |= mysql.NUM_FLAG
	case sqllite.KindTime:
		c.typ, f.ColumnLength, f.Decimal = mysql.MYSQL_TYPE_DATETIME, 26, 6
		if decl.Name == "TIMESTAMP" {
			c.typ = mysql.MYSQL_TYPE_TIMESTAMP
		}
	case sqllite.KindBytes:
		c.typ, f.ColumnLength = mysql.MYSQL_TYPE_VAR_STRING, uint32(max(decl.Len, 255))
		if decl.Name == "BLOB" {
			c.typ, f.ColumnLength = mysql.MYSQL_TYPE_BLOB, 65535
		}
	case sqllite.KindNull:
		// No value and no declared type (an all-NULL computed column).
		c.typ, f.Charset, f.Flag = mysql.MYSQL_TYPE_NULL, collBinary, mysql.BINARY_FLAG
	default: // strings, and computed columns of mixed kinds (sent as text)
		c.kind = sqllite.KindString
		c.typ, f.Charset, f.Flag = mysql.MYSQL_TYPE_VAR_STRING, collUTF8MB4, 0
		f.ColumnLength = uint32(max(decl.Len, 64) * 4)
		if decl.Name == "TEXT" {
			c.typ, f.ColumnLength = mysql.MYSQL_TYPE_BLOB, 65535*4
		}
	}
	f.Type = c.typ
	return c
}

// valuesKind is the kind that represents every non-NULL value of column
// i: their common kind, DECIMAL or DOUBLE for mixed numbers, else text.
func valuesKind(rows [][]sqllite.Datum, i int) sqllite.Kind {
	seen := map[sqllite.Kind]bool{}
	for _, r := range rows {
		if k := r[i].Kind; k != sqllite.KindNull {
			seen[k] = true
		}
	}
	switch {
	case len(seen) == 0:
		return sqllite.KindNull
	case len(seen) == 1:
		for k := range seen {
			return k
		}
	case len(seen) == 2 && seen[sqllite.KindInt] && seen[sqllite.KindDecimal]:
		return sqllite.KindDecimal
	case !seen[sqllite.KindString] && !seen[sqllite.KindBytes] && !seen[sqllite.KindTime]:
		return sqllite.KindFloat
	}
	return sqllite.KindString
}

func valuesScale(rows [][]sqllite.Datum, i int) int {
	s := 0
	for _, r := range rows {
		if r[i].Kind == sqllite.KindDecimal {
			s = max(s, r[i].Scale)
		}
	}
	return s
}

// toResult encodes a sql-lite result for the client (binary: the row
// format of COM_STMT_EXECUTE).
func toResult(r *sqllite.Result, binaryRows bool) *mysql.Result {
	if r.Columns == nil {
		return &mysql.Result{AffectedRows: uint64(max(r.RowsAffected, 0))}
	}
	cols := make([]column, len(r.Columns))
	rs := mysql.NewResultset(len(cols))
	for i, name := range r.Columns {
		var decl sqllite.Type
		if i < len(r.Types) {
			decl = r.Types[i]
		}
		cols[i] = columnFor(name, decl, r.Rows, i)
		rs.Fields[i] = cols[i].field
	}
	rs.RowDatas = make([]mysql.RowData, 0, len(r.Rows))
	for _, row := range r.Rows {
		if binaryRows {
			rs.RowDatas = append(rs.RowDatas, binaryRow(cols, row))
		} else {
			rs.RowDatas = append(rs.RowDatas, textRow(cols, row))
		}
	}
	return mysql.NewResult(rs)
}

func textRow(cols []column, row []sqllite.Datum) []byte {
	var b []byte
	for i, d := range row {
		if d.IsNull() {
			b = append(b, 0xfb)
			continue
		}
		b = append(b, mysql.PutLengthEncodedString(textValue(cols[i], d))...)
	}
	return b
}

// textValue renders d as MySQL's text protocol shows a value of the
// column's type.
func textValue(c column, d sqllite.Datum) []byte {
	switch c.kind {
	case sqllite.KindBool:
		if d.Value.(bool) {
			return []byte("1")
		}
		return []byte("0")
	case sqllite.KindFloat:
		return []byte(floatText(asFloat(d)))
	case sqllite.KindDecimal:
		return []byte(decimalText(d, int(c.field.Decimal)))
	case sqllite.KindBytes:
		return d.Value.([]byte)
	case sqllite.KindString:
		if d.Kind == sqllite.KindBool { // mixed-kind column
			return textValue(column{kind: sqllite.KindBool}, d)
		}
	}
	return []byte(d.String())
}

func floatText(f float64) string {
	if a := math.Abs(f); a == 0 || (a >= 1e-6 && a < 1e15) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func asFloat(d sqllite.Datum) float64 {
	switch v := d.Value.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	case *big.Rat:
		f, _ := v.Float64()
		return f
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

func decimalText(d sqllite.Datum, scale int) string {
	switch v := d.Value.(type) {
	case *big.Rat:
		return v.FloatString(scale)
	case int64:
		return new(big.Rat).SetInt64(v).FloatString(scale)
	}
	return d.String()
}

// binaryRow encodes a row of the binary protocol: a 0x00 header, the NULL
// bitmap (offset 2), then each non-NULL value in its type's encoding.
func binaryRow(cols []column, row []sqllite.Datum) []byte {
	nullMap := make([]byte, (len(cols)+7+2)/8)
	b := []byte{0}
	for i, d := range row {
		if d.IsNull() {
			nullMap[(i+2)/8] |= 1 << ((i + 2) % 8)
		}
	}
	b = append(b, nullMap...)
	for i, d := range row {
		if d.IsNull() {
			continue
		}
		c := cols[i]
		switch c.typ {
		case mysql.MYSQL_TYPE_LONGLONG:
			b = binary.LittleEndian.AppendUint64(b, uint64(d.Value.(int64)))
		case mysql.MYSQL_TYPE_LONG:
			b = binary.LittleEndian.AppendUint32(b, uint32(d.Value.(int64)))
		case mysql.MYSQL_TYPE_SHORT:
			b = binary.LittleEndian.AppendUint16(b, uint16(d.Value.(int64)))
		case mysql.MYSQL_TYPE_TINY:
			if c.kind == sqllite.KindBool {
				b = append(b, textValue(c, d)[0]-'0')
			} else {
				b = append(b, byte(d.Value.(int64)))
			}
		case mysql.MYSQL_TYPE_DOUBLE:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(asFloat(d)))
		case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP:
			b = appendBinaryTime(b, d.Value.(time.Time))
		default:
			b = append(b, mysql.PutLengthEncodedString(textValue(c, d))...)
		}
	}
	return b
}

func appendBinaryTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = append(b, 11)
	b = binary.LittleEndian.AppendUint16(b, uint16(t.Year()))
	b = append(b, byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()))
	return binary.LittleEndian.AppendUint32(b, uint32(t.Nanosecond()/1000))
}
