package mysqlwire

import (
	"errors"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/shaledb/shale/kvclient"
	sqllite "github.com/shaledb/shale/sql-lite"
)

// myErr is a MySQL error code with its SQLSTATE.
type myErr struct {
	code  uint16
	state string
}

// byCode maps sql-lite's error classes to MySQL's closest error.
// CodeConstraint, CodeType and CodeStorage are refined by message in
// toMySQL.
var byCode = map[sqllite.Code]myErr{
	sqllite.CodeParse:         {mysql.ER_PARSE_ERROR, "42000"},                     // 1064
	sqllite.CodeUnknownTable:  {mysql.ER_NO_SUCH_TABLE, "42S02"},                   // 1146
	sqllite.CodeUnknownColumn: {mysql.ER_BAD_FIELD_ERROR, "42S22"},                 // 1054
	sqllite.CodeTableExists:   {mysql.ER_TABLE_EXISTS_ERROR, "42S01"},              // 1050
	sqllite.CodeType:          {mysql.ER_TRUNCATED_WRONG_VALUE_FOR_FIELD, "HY000"}, // 1366
	sqllite.CodeNotSupported:  {mysql.ER_NOT_SUPPORTED_YET, "42000"},               // 1235
	sqllite.CodeDuplicateKey:  {mysql.ER_DUP_ENTRY, "23000"},                       // 1062
	// A write conflict is a serialization failure: drivers and ORMs retry
	// the transaction on 1213/40001.
	sqllite.CodeConflict:    {mysql.ER_LOCK_DEADLOCK, "40001"},                      // 1213
	sqllite.CodeConstraint:  {mysql.ER_UNKNOWN_ERROR, "HY000"},                      // refined
	sqllite.CodeTransaction: {mysql.ER_CANT_DO_THIS_DURING_AN_TRANSACTION, "25000"}, // 1179
	sqllite.CodeResource:    {mysql.ER_OUT_OF_RESOURCES, "HY000"},                   // 1041
	sqllite.CodeStorage:     {mysql.ER_UNKNOWN_ERROR, "HY000"},                      // 1105
	sqllite.CodeInternal:    {mysql.ER_UNKNOWN_ERROR, "HY000"},                      // 1105
	sqllite.CodePermission:  {mysql.ER_TABLEACCESS_DENIED_ERROR, "42000"},           // 1142
}

// byMessage refines errors whose class covers several MySQL errors; the
// first phrase found in the message wins.
var byMessage = map[sqllite.Code][]struct {
	phrase string
	err    myErr
}{
	sqllite.CodeConstraint: {
		{"has no default", myErr{mysql.ER_NO_DEFAULT_FOR_FIELD, "HY000"}},         // 1364
		{"must not be null", myErr{mysql.ER_BAD_NULL_ERROR, "23000"}},             // 1048
		{"already exists", myErr{mysql.ER_DUP_FIELDNAME, "42S21"}},                // 1060
		{"defined twice", myErr{mysql.ER_DUP_FIELDNAME, "42S21"}},                 // 1060
		{"listed twice", myErr{mysql.ER_FIELD_SPECIFIED_TWICE, "42000"}},          // 1110
		{"multiple primary keys", myErr{mysql.ER_MULTIPLE_PRI_KEY, "42000"}},      // 1068
		{"needs a primary key", myErr{mysql.ER_REQUIRES_PRIMARY_KEY, "42000"}},    // 1173
		{"table name", myErr{mysql.ER_WRONG_TABLE_NAME, "42000"}},                 // 1103
		{"values but", myErr{mysql.ER_WRONG_VALUE_COUNT_ON_ROW, "21S01"}},         // 1136
		{"target columns but", myErr{mysql.ER_WRONG_VALUE_COUNT_ON_ROW, "21S01"}}, // 1136
	},
	sqllite.CodeType: {
		{"out of range", myErr{mysql.ER_WARN_DATA_OUT_OF_RANGE, "22003"}}, // 1264
		{"too long", myErr{mysql.ER_DATA_TOO_LONG, "22001"}},              // 1406
	},
	sqllite.CodeStorage: {
		{"canceled", myErr{mysql.ER_QUERY_INTERRUPTED, "70100"}}, // 1317
	},
}

// toMySQL turns an error of the SQL layer (or of this package) into the
// MySQL error a client sees.
func toMySQL(err error) *mysql.MyError {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	if errors.Is(err, kvclient.ErrDiskFull) {
		// MySQL's own "disk full" (1021, HY000): nothing was written.
		return &mysql.MyError{Code: mysql.ER_DISK_FULL, State: "HY000", Message: err.Error()}
	}
	var se *sqllite.Error
	if !errors.As(err, &se) {
		return &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: err.Error()}
	}
	m, ok := byCode[se.Code]
	if !ok {
		m = myErr{mysql.ER_UNKNOWN_ERROR, "HY000"}
	}
	low := strings.ToLower(se.Msg)
	for _, r := range byMessage[se.Code] {
		if strings.Contains(low, r.phrase) {
			m = r.err
			break
		}
	}
	return &mysql.MyError{Code: m.code, State: m.state, Message: se.Error()}
}

// newErr is an error of this package with its MySQL code and SQLSTATE.
func newErr(code uint16, state, msg string) *mysql.MyError {
	return &mysql.MyError{Code: code, State: state, Message: msg}
}
