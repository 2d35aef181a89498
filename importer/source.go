package importer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format is an input file format.
type Format int

const (
	// CSV is RFC 4180 comma-separated values (the delimiter may be changed).
	CSV Format = iota
	// TSV is CSV with a tab delimiter.
	TSV
	// JSONL is one JSON object per line; keys are column names.
	JSONL
)

// ParseFormat accepts "csv", "tsv" and "jsonl".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "csv", "":
		return CSV, nil
	case "tsv":
		return TSV, nil
	case "jsonl", "ndjson", "json":
		return JSONL, nil
	}
	return 0, fmt.Errorf("importer: unknown format %q (want csv, tsv or jsonl)", s)
}

func (f Format) String() string {
	return [...]string{"csv", "tsv", "jsonl"}[f]
}

// SourceOptions say how to read input files.
type SourceOptions struct {
	Format Format
	// Header: the first CSV/TSV record names the columns.
	Header bool
	// Columns names the columns (overrides a header; required for JSONL
	// only to restrict which keys are read).
	Columns []string
	// Delimiter of CSV (default ',') and TSV (default '\t').
	Delimiter rune
	// Null, when set, is the field text that means NULL (no cell).
	Null *string
}

// Value is one field of a record.
type Value struct {
	Bytes []byte
	Null  bool
}

// Record is one parsed input row.
type Record struct {
	File   string
	Line   int
	Values []Value
	// pos returns the line and column where field i starts.
	pos func(i int) (line, col int)
}

// Pos returns the line and 1-based column where field i starts.
func (r *Record) Pos(i int) (int, int) {
	if r.pos == nil || i < 0 {
		return r.Line, 1
	}
	return r.pos(i)
}

// InputError is a malformed input row: it names file, line and column.
type InputError struct {
	File         string
	Line, Column int
	Err          error
	// Raw is the offending input, when known (for the reject file).
	Raw string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// FieldError is an encoder's complaint about one field of a record.
type FieldError struct {
	Field int // index into Record.Values
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }

// countingReader counts bytes read, for progress.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// readSource parses one input stream and calls bind once with the column
// names, then row for every record. A malformed record goes to bad; if bad
// returns an error, reading stops with it.
func readSource(name string, r io.Reader, o SourceOptions, bind func(cols []string) error, row func(*Record) error, bad func(*InputError) error) error {
	if o.Format == JSONL {
		return readJSONL(name, r, o, bind, row, bad)
	}
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.Comma = ','
	if o.Format == TSV {
		cr.Comma = '\t'
	}
	if o.Delimiter != 0 {
		cr.Comma = o.Delimiter
	}
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cols := o.Columns
	if o.Header {
		hdr, err := cr.Read()
		if err == io.EOF {
			return bind(cols)
		}
		if err != nil {
			return csvError(name, err)
		}
		if cols == nil {
			cols = append([]string(nil), hdr...)
		}
	}
	bound := false
	rec := &Record{File: name}
	rec.pos = func(i int) (int, int) { return cr.FieldPos(i) }
	for {
		fields, err := cr.Read()
		if err == io.EOF {
			if !bound {
				return bind(cols)
			}
			return nil
		}
		if err != nil {
			ie := csvError(name, err)
			var ie2 *InputError
			if errors.As(ie, &ie2) {
				if err := bad(ie2); err != nil {
					return err
				}
				continue
			}
			return ie
		}
		if !bound {
			if cols == nil { // no header, no names: columns are 1, 2, ...
				for i := range fields {
					cols = append(cols, strconv.Itoa(i+1))
				}
			}
			if err := bind(cols); err != nil {
				return err
			}
			bound = true
		}
		line, _ := cr.FieldPos(0)
		if len(fields) != len(cols) {
			l, c := cr.FieldPos(min(len(fields), len(cols)) - 1)
			if err := bad(&InputError{File: name, Line: l, Column: c, Err: fmt.Errorf("record has %d fields; want %d (%s)", len(fields), len(cols), strings.Join(cols, ",")), Raw: joinFields(fields, cr.Comma)}); err != nil {
				return err
			}
			continue
		}
		rec.Line = line
		rec.Values = rec.Values[:0]
		for _, f := range fields {
			v := Value{Bytes: []byte(f)}
			if o.Null != nil && f == *o.Null {
				v = Value{Null: true}
			}
			rec.Values = append(rec.Values, v)
		}
		if err := row(rec); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				l, c := cr.FieldPos(fe.Field)
				if err := bad(&InputError{File: name, Line: l, Column: c, Err: fmt.Errorf("column %s: %w", cols[fe.Field], fe.Err), Raw: joinFields(fields, cr.Comma)}); err != nil {
					return err
				}
				continue
			}
			return err
		}
	}
}

func joinFields(fields []string, comma rune) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Comma = comma
	_ = w.Write(fields)
	w.Flush()
	return strings.TrimRight(b.String(), "\r\n")
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &InputError{File: name, Line: pe.Line, Column: pe.Column, Err: pe.Err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// readJSONL reads one object per line. Values may be strings, numbers
// (kept as written), booleans or null; nested values are errors.
func readJSONL(name string, r io.Reader, o SourceOptions, bind func([]string) error, row func(*Record) error, bad func(*InputError) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	cols := o.Columns
	var index map[string]int
	bound := false
	rec := &Record{File: name}
	var starts []int
	rec.pos = func(i int) (int, int) {
		if i < len(starts) && starts[i] > 0 {
			return rec.Line, starts[i]
		}
		return rec.Line, 1
	}
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", name, err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fail := func(col int, e error) error {
			return bad(&InputError{File: name, Line: lineNo, Column: col, Err: e, Raw: string(line)})
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			col := 1
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &se):
				col = int(se.Offset)
			case errors.As(err, &te):
				col = int(te.Offset)
				err = fmt.Errorf("want one JSON object per line")
			}
			if e := fail(max(col, 1), err); e != nil {
				return e
			}
			continue
		}
		if !bound {
			if cols == nil {
				for k := range obj {
					cols = append(cols, k)
				}
				sortStrings(cols)
			}
			index = map[string]int{}
			for i, c := range cols {
				index[c] = i
			}
			if err := bind(cols); err != nil {
				return err
			}
			bound = true
		}
		rec.Line = lineNo
		rec.Values = rec.Values[:0]
		starts = starts[:0]
		for range cols {
			rec.Values = append(rec.Values, Value{Null: true})
			starts = append(starts, 0)
		}
		var rowErr error
		for k, raw := range obj {
			i, ok := index[k]
			if !ok {
				continue
			}
			starts[i] = valueColumn(line, k)
			v, err := jsonValue(raw)
			if err != nil {
				rowErr = &FieldError{Field: i, Err: err}
				break
			}
			rec.Values[i] = v
		}
		if rowErr == nil {
			rowErr = row(rec)
		}
		if rowErr != nil {
			var fe *FieldError
			if errors.As(rowErr, &fe) {
				_, c := rec.Pos(fe.Field)
				if err := fail(c, fmt.Errorf("column %s: %w", cols[fe.Field], fe.Err)); err != nil {
					return err
				}
				continue
			}
			return rowErr
		}
	}
	if !bound {
		return bind(cols)
	}
	return nil
}

// valueColumn finds the 1-based column where key's value starts in line
// (best effort: the first occurrence of the quoted key).
func valueColumn(line []byte, key string) int {
	q, _ := json.Marshal(key)
	i := bytes.Index(line, q)
	if i < 0 {
		return 1
	}
	j := i + len(q)
	for j < len(line) && (line[j] == ' ' || line[j] == '\t' || line[j] == ':') {
		j++
	}
	return j + 1
}

func jsonValue(raw json.RawMessage) (Value, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return Value{Null: true}, nil
	}
	switch t[0] {
	case 'n':
		return Value{Null: true}, nil
	case '"':
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return Value{}, err
		}
		return Value{Bytes: []byte(s)}, nil
	case '{', '[':
		return Value{}, fmt.Errorf("nested JSON values are not supported")
	default: // number, true, false: as written
		return Value{Bytes: append([]byte(nil), t...)}, nil
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
