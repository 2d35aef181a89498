package importer

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shaledb/shale/internal/limits"
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
	// Delimiter of CSV (default ',') and TSV (default '\t'); JSONL has
	// none.
	Delimiter rune
	// Null, when set, is the field text that means NULL (no cell).
	Null *string
}

// EnsureDefaults returns a copy of o with the format's delimiter filled in.
func (o SourceOptions) EnsureDefaults() SourceOptions {
	if o.Delimiter == 0 {
		o.Delimiter = defaultDelimiter(o.Format)
	}
	return o
}

// Validate rejects an unknown format and a delimiter CSV cannot use.
func (o SourceOptions) Validate() error {
	if o.Format < CSV || o.Format > JSONL {
		return fmt.Errorf("importer: unknown format %d (want CSV, TSV or JSONL)", int(o.Format))
	}
	if o.Format == JSONL || o.Delimiter == 0 {
		return nil
	}
	if !validDelimiter(o.Delimiter) {
		return fmt.Errorf("importer: --delimiter %q cannot separate fields (not a quote, CR, LF or invalid character)", o.Delimiter)
	}
	return nil
}

// defaultDelimiter is CSV's ',' and TSV's tab; JSONL has none (0).
func defaultDelimiter(f Format) rune {
	switch f {
	case CSV:
		return ','
	case TSV:
		return '\t'
	}
	return 0
}

// validDelimiter is encoding/csv's rule for Reader.Comma.
func validDelimiter(r rune) bool {
	return r != 0 && r != '"' && r != '\r' && r != '\n' && utf8.ValidRune(r) && r != utf8.RuneError
}

// ParseDelimiter parses a --delimiter value: one character, or `\t` or
// "tab" for a tab.
func ParseDelimiter(s string) (rune, error) {
	d := s
	if d == `\t` || d == "tab" {
		d = "\t"
	}
	r, n := utf8.DecodeRuneInString(d)
	if n == 0 || n != len(d) || r == utf8.RuneError {
		return 0, fmt.Errorf("--delimiter must be one character, got %q", s)
	}
	if !validDelimiter(r) {
		return 0, fmt.Errorf("--delimiter %q cannot separate fields (not a quote, CR, LF or invalid character)", s)
	}
	return r, nil
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

// cutBatchBytes is the size from which the cutter ends a batch at the next
// record boundary. Tests shrink it to put boundaries everywhere.
var cutBatchBytes = 1 << 20

// maxRecordBytes bounds one input record, so that an unterminated quote
// (which makes the rest of the file one field) or a file without newlines
// fails at the record's start instead of reading it all into memory. A
// record is one row: its cells are at most one row's mutation, and quoting
// can double their bytes. Tests shrink it.
var maxRecordBytes = 2 * limits.MaxMutationBytes

// batch is a run of whole records of one input, as the cutter cut it.
type batch struct {
	data []byte
	// line is the number of data's first line in the input.
	line int
	// first: data starts the input (and holds the header, if any).
	first bool
}

// cutter reads an input and cuts it into batches of whole records, so the
// batches can be parsed independently (and in parallel) with exactly the
// records, line numbers and errors of parsing the input in one piece.
type cutter struct {
	r      io.Reader
	name   string // the input's name, for errors
	format Format
	comma  []byte
	// pending holds the bytes read past the last cut.
	pending []byte
	line    int
	eof     bool
	first   bool
	// read, if set, is told how many bytes each read returned (progress).
	read func(n int)
}

func newCutter(r io.Reader, o SourceOptions) *cutter {
	return &cutter{r: r, format: o.Format, comma: []byte(string(csvComma(o))), line: 1, first: true}
}

func csvComma(o SourceOptions) rune {
	if o.Delimiter != 0 {
		return o.Delimiter
	}
	return cmp.Or(defaultDelimiter(o.Format), ',')
}

// next returns the next batch, in buf's memory if it is large enough, or
// nil at the end of the input.
func (c *cutter) next(buf []byte) (*batch, error) {
	data := append(buf[:0], c.pending...)
	scan := 0 // a record starts here; records before it end before want
	want := max(cutBatchBytes, 1)
	cut := -1
	for cut < 0 {
		// Scan the whole records that are in data for the first end at
		// or past want.
		for scan < len(data) {
			end := c.recordEnd(data, scan)
			if end < 0 {
				break
			}
			scan = end
			if end >= want {
				cut = end
				break
			}
		}
		if cut >= 0 {
			break
		}
		if !c.eof && len(data)-scan > maxRecordBytes {
			return nil, c.tooLong(data, scan)
		}
		if c.eof {
			cut = len(data) // the last record may lack its newline
			break
		}
		// Read up to want, then in steps (the record that crosses want
		// is usually short); grow by half at least, so a record larger
		// than a batch costs amortized linear time.
		step := max(want-len(data), min(64<<10, want))
		if cap(data)-len(data) < step {
			data = slices.Grow(data, max(step, len(data)/2))
		}
		n, err := c.r.Read(data[len(data) : len(data)+step])
		data = data[:len(data)+n]
		if c.read != nil && n > 0 {
			c.read(n)
		}
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			return nil, err
		}
	}
	if cut == 0 {
		return nil, nil
	}
	c.pending = append(c.pending[:0], data[cut:]...)
	b := &batch{data: data[:cut], line: c.line, first: c.first}
	c.line += bytes.Count(b.data, []byte{'\n'})
	c.first = false
	return b, nil
}

// tooLong is the error for the record at data[scan:], which runs past
// maxRecordBytes: an unterminated quote where a quoted field is open, else
// a record too long. It names the record's (or the quote's) line and column.
func (c *cutter) tooLong(data []byte, scan int) error {
	at, msg := scan, fmt.Sprintf("record exceeds %d bytes without ending", maxRecordBytes)
	if c.format != JSONL {
		if _, open := csvRecordScan(data, scan, c.comma); open >= 0 {
			at = open
			msg = fmt.Sprintf("unterminated quote: the quoted field starting here runs past %d bytes", maxRecordBytes)
		}
	}
	line := c.line + bytes.Count(data[:at], []byte{'\n'})
	col := at - (bytes.LastIndexByte(data[:at], '\n') + 1) + 1
	return &InputError{File: c.name, Line: line, Column: col, Err: errors.New(msg)}
}

// recordEnd returns the index just past the newline that ends the record
// starting at data[pos] (or the empty lines before it), or -1 when data
// ends first.
func (c *cutter) recordEnd(data []byte, pos int) int {
	if c.format == JSONL {
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			return pos + i + 1
		}
		return -1
	}
	return csvRecordEnd(data, pos, c.comma)
}

// csvRecordEnd mirrors how encoding/csv (without LazyQuotes, comments or
// TrimLeadingSpace) finds the end of a record: it skips empty lines; a
// field that starts with a quote runs to the matching quote, across
// newlines ("" is a quote inside it); any other field runs to the next
// delimiter or the end of the line. A malformed field (a quote inside an
// unquoted field, or a closing quote followed by anything but a delimiter
// or the end of the line) ends the record at the end of its line, where
// csv resumes after reporting it. RFC 4180's rule (a newline ends a record
// when the quotes since its start are even) is the same on well-formed
// input; this one also agrees with csv on malformed input.
func csvRecordEnd(data []byte, pos int, comma []byte) int {
	end, _ := csvRecordScan(data, pos, comma)
	return end
}

// csvRecordScan is csvRecordEnd that also returns, when the record does not
// end in data because a quoted field is still open, the index of that
// field's opening quote (else -1).
func csvRecordScan(data []byte, pos int, comma []byte) (end, open int) {
	lineEnd := func(i int) int {
		if j := bytes.IndexByte(data[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return -1
	}
	// Empty lines before the record belong to it.
	for {
		switch {
		case pos < len(data) && data[pos] == '\n':
			pos++
			continue
		case pos+1 < len(data) && data[pos] == '\r' && data[pos+1] == '\n':
			pos += 2
			continue
		}
		break
	}
	// The common case: a line without quotes is one whole record.
	eol := lineEnd(pos)
	if eol < 0 {
		return -1, -1
	}
	if bytes.IndexByte(data[pos:eol], '"') < 0 {
		return eol, -1
	}
	i := pos
	for { // at the start of a field
		if i < len(data) && data[i] == '"' {
			open := i
			i++
			for {
				q := bytes.IndexByte(data[i:], '"')
				if q < 0 {
					return -1, open
				}
				i += q + 1
				rest := data[i:]
				switch {
				case len(rest) == 0 || (rest[0] == '\r' && len(rest) == 1):
					return -1, -1 // what follows decides
				case rest[0] == '"':
					i++
					continue
				case bytes.HasPrefix(rest, comma):
					i += len(comma)
				case rest[0] == '\n':
					return i + 1, -1
				case rest[0] == '\r' && rest[1] == '\n':
					return i + 2, -1
				default:
					return lineEnd(i), -1
				}
				break
			}
			continue
		}
		eol := lineEnd(i)
		line := data[i:]
		if eol >= 0 {
			line = data[i:eol]
		}
		field := line
		if c := bytes.Index(line, comma); c >= 0 {
			field = line[:c]
		}
		if bytes.IndexByte(field, '"') >= 0 || len(field) == len(line) {
			return eol, -1 // a bare quote, or the last field
		}
		i += len(field) + len(comma)
	}
}

// readSource parses one input stream and calls bind once with the column
// names, then row for every record. A malformed record goes to bad; if bad
// returns an error, reading stops with it.
func readSource(name string, r io.Reader, o SourceOptions, bind func(cols []string) error, row func(*Record) error, bad func(*InputError) error) error {
	c := newCutter(r, o)
	c.name = name
	p := &sourceParser{name: name, o: o, bind: bind, row: row, bad: bad}
	for {
		b, err := c.next(nil)
		if err != nil {
			return readError(name, err)
		}
		if b == nil {
			return p.finish()
		}
		if err := p.parse(b); err != nil {
			return err
		}
	}
}

// readError names the input in a read error (an InputError already does).
func readError(name string, err error) error {
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// sourceParser parses the batches of one input. The columns are fixed by
// the first good record (bind is called then); after that, copies made by
// fork parse further batches in any order, each with its own callbacks.
type sourceParser struct {
	name  string
	o     SourceOptions
	cols  []string
	index map[string]int // JSONL: column name to index
	bound bool
	bind  func(cols []string) error
	row   func(*Record) error
	bad   func(*InputError) error

	rec     Record
	scratch []byte
	starts  []int
}

// fork returns a parser of further batches of the same (bound) input.
func (p *sourceParser) fork(row func(*Record) error, bad func(*InputError) error) *sourceParser {
	return &sourceParser{name: p.name, o: p.o, cols: p.cols, index: p.index, bound: p.bound, bind: p.bind, row: row, bad: bad}
}

// finish ends the input: an input without a good record still binds.
func (p *sourceParser) finish() error {
	if !p.bound {
		p.bound = true
		return p.bind(p.cols)
	}
	return nil
}

func (p *sourceParser) parse(b *batch) error {
	if p.o.Format == JSONL {
		return p.parseJSONL(b)
	}
	return p.parseCSV(b)
}

func (p *sourceParser) parseCSV(b *batch) error {
	name, o := p.name, p.o
	cr := csv.NewReader(bytes.NewReader(b.data))
	cr.Comma = csvComma(o)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	shift := b.line - 1 // csv counts lines from 1 in the batch
	fieldPos := func(i int) (int, int) {
		l, c := cr.FieldPos(i)
		return l + shift, c
	}
	if b.first && o.Header {
		p.cols = o.Columns
		hdr, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(name, err, shift)
		}
		if p.cols == nil {
			p.cols = append([]string(nil), hdr...)
		}
	} else if b.first {
		p.cols = o.Columns
	}
	rec := &p.rec
	rec.File = name
	rec.pos = fieldPos
	for {
		fields, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			ie := csvError(name, err, shift)
			var ie2 *InputError
			if errors.As(ie, &ie2) {
				if err := p.bad(ie2); err != nil {
					return err
				}
				continue
			}
			return ie
		}
		cols := p.cols
		if !p.bound {
			if cols == nil { // no header, no names: columns are 1, 2, ...
				for i := range fields {
					cols = append(cols, strconv.Itoa(i+1))
				}
				p.cols = cols
			}
			p.bound = true
			if err := p.bind(cols); err != nil {
				return err
			}
		}
		line, _ := fieldPos(0)
		if len(fields) != len(cols) {
			l, c := fieldPos(min(len(fields), len(cols)) - 1)
			if err := p.bad(&InputError{File: name, Line: l, Column: c, Err: fmt.Errorf("record has %d fields; want %d (%s)", len(fields), len(cols), strings.Join(cols, ",")), Raw: joinFields(fields, cr.Comma)}); err != nil {
				return err
			}
			continue
		}
		rec.Line = line
		rec.Values = rec.Values[:0]
		// The fields' bytes go to one reused buffer (grown first, so the
		// slices into it stay put): no allocation per field.
		n := 0
		for _, f := range fields {
			n += len(f)
		}
		p.scratch = slices.Grow(p.scratch[:0], n)
		for _, f := range fields {
			if o.Null != nil && f == *o.Null {
				rec.Values = append(rec.Values, Value{Null: true})
				continue
			}
			off := len(p.scratch)
			p.scratch = append(p.scratch, f...)
			rec.Values = append(rec.Values, Value{Bytes: p.scratch[off:len(p.scratch):len(p.scratch)]})
		}
		if err := p.row(rec); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) {
				l, c := fieldPos(fe.Field)
				if err := p.bad(&InputError{File: name, Line: l, Column: c, Err: fmt.Errorf("column %s: %w", cols[fe.Field], fe.Err), Raw: joinFields(fields, cr.Comma)}); err != nil {
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

// csvError turns csv's error into an InputError, its lines moved down by
// shift (the batch's place in the input).
func csvError(name string, err error, shift int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &InputError{File: name, Line: pe.Line + shift, Column: pe.Column, Err: pe.Err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// parseJSONL reads one object per line. Values may be strings, numbers
// (kept as written), booleans or null; nested values are errors.
func (p *sourceParser) parseJSONL(b *batch) error {
	name := p.name
	if b.first {
		p.cols = p.o.Columns
	}
	rec := &p.rec
	rec.File = name
	rec.pos = func(i int) (int, int) {
		if i < len(p.starts) && p.starts[i] > 0 {
			return rec.Line, p.starts[i]
		}
		return rec.Line, 1
	}
	data := b.data
	for lineNo := b.line; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fail := func(col int, e error) error {
			return p.bad(&InputError{File: name, Line: lineNo, Column: col, Err: e, Raw: string(line)})
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
		if !p.bound {
			if p.cols == nil {
				for k := range obj {
					p.cols = append(p.cols, k)
				}
				sortStrings(p.cols)
			}
			p.index = map[string]int{}
			for i, c := range p.cols {
				p.index[c] = i
			}
			p.bound = true
			if err := p.bind(p.cols); err != nil {
				return err
			}
		}
		cols := p.cols
		rec.Line = lineNo
		rec.Values = rec.Values[:0]
		p.starts = p.starts[:0]
		for range cols {
			rec.Values = append(rec.Values, Value{Null: true})
			p.starts = append(p.starts, 0)
		}
		var rowErr error
		for k, raw := range obj {
			i, ok := p.index[k]
			if !ok {
				continue
			}
			p.starts[i] = valueColumn(line, k)
			v, err := jsonValue(raw)
			if err != nil {
				rowErr = &FieldError{Field: i, Err: err}
				break
			}
			rec.Values[i] = v
		}
		if rowErr == nil {
			rowErr = p.row(rec)
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
