package sqllite

import (
	"errors"
	"fmt"

	"github.com/shaledb/shale/kvclient"
)

// Code classifies a SQL error.
type Code int

// Error codes. Each has a sentinel below for errors.Is.
const (
	CodeParse Code = iota + 1
	CodeUnknownTable
	CodeUnknownColumn
	CodeTableExists
	CodeType
	CodeNotSupported
	CodeDuplicateKey
	CodeConflict
	CodeConstraint
	CodeTransaction
	CodeResource
	CodeStorage
	CodeInternal
	// CodePermission: the session's user lacks a grant (internal/authz).
	CodePermission
)

var codeNames = map[Code]string{
	CodeParse: "parse error", CodeUnknownTable: "unknown table", CodeUnknownColumn: "unknown column",
	CodeTableExists: "table exists", CodeType: "type error", CodeNotSupported: "not supported",
	CodeDuplicateKey: "duplicate key", CodeConflict: "conflict", CodeConstraint: "constraint violation",
	CodeTransaction: "transaction error", CodeResource: "resource limit", CodeStorage: "storage error",
	CodePermission: "permission denied",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", int(c))
}

// Error is every error the SQL layer returns for a statement: a Code
// (matched by errors.Is against the Err* sentinels), a human message, and
// for parse errors the 1-based Line and Column.
type Error struct {
	Code      Code
	Msg       string
	Line, Col int
	Cause     error
}

func (e *Error) Error() string {
	if e.Code == CodeNotSupported {
		return "not supported: " + e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s at line %d column %d: %s", e.Code, e.Line, e.Col, e.Msg)
	}
	return e.Code.String() + ": " + e.Msg
}

// Is matches the sentinel of the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Unwrap returns the cause (a kvclient error for storage failures).
func (e *Error) Unwrap() error { return e.Cause }

// Sentinels for errors.Is(err, sqllite.ErrType) and so on.
var (
	ErrParse         = &Error{Code: CodeParse}
	ErrUnknownTable  = &Error{Code: CodeUnknownTable}
	ErrUnknownColumn = &Error{Code: CodeUnknownColumn}
	ErrTableExists   = &Error{Code: CodeTableExists}
	ErrType          = &Error{Code: CodeType}
	ErrNotSupported  = &Error{Code: CodeNotSupported}
	ErrDuplicateKey  = &Error{Code: CodeDuplicateKey}
	ErrConflict      = &Error{Code: CodeConflict}
	ErrConstraint    = &Error{Code: CodeConstraint}
	ErrTransaction   = &Error{Code: CodeTransaction}
	ErrResource      = &Error{Code: CodeResource}
	ErrStorage       = &Error{Code: CodeStorage}
	ErrInternal      = &Error{Code: CodeInternal}
	ErrPermission    = &Error{Code: CodePermission}
)

func errf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

func notSupported(format string, args ...any) *Error { return errf(CodeNotSupported, format, args...) }
func typeErr(format string, args ...any) *Error      { return errf(CodeType, format, args...) }

// storageErr wraps a kvclient error, keeping SQL errors as they are.
func storageErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, kvclient.ErrTableNotFound) {
		return &Error{Code: CodeUnknownTable, Msg: what + ": " + err.Error(), Cause: err}
	}
	return &Error{Code: CodeStorage, Msg: what + ": " + err.Error(), Cause: err}
}
