package shell

import "strings"

// statement is one complete statement of a script: its text without the
// terminating `;`, and the 1-based line where its first token is.
type statement struct {
	Text string
	Line int
}

// splitStatements cuts src at every `;` that is outside quotes ('…', "…",
// `…`) and comments (-- and # to the end of the line, /* … */). It returns
// the complete statements (empty ones, such as `;;` or a comment alone, are
// dropped) and the text after the last delimiter. blank reports whether
// that remainder holds nothing but whitespace and finished comments, i.e.
// whether an interactive shell has no statement in progress.
func splitStatements(src string) (stmts []statement, rest string, blank bool) {
	const (
		normal = iota
		single
		double
		backtick
		lineComment
		blockComment
	)
	state := normal
	start := 0     // start of the current statement in src
	line := 1      // line of src[i]
	firstLine := 0 // line of the current statement's first token; 0: none yet
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch state {
		case normal:
			switch {
			case c == ';':
				if firstLine != 0 {
					stmts = append(stmts, statement{Text: strings.TrimSpace(src[start:i]), Line: firstLine})
				}
				start, firstLine = i+1, 0
			case c == '\'' || c == '"' || c == '`':
				if firstLine == 0 {
					firstLine = line
				}
				state = map[byte]int{'\'': single, '"': double, '`': backtick}[c]
			case c == '#':
				state = lineComment
			case c == '-' && i+1 < len(src) && src[i+1] == '-' && (i+2 == len(src) || isSpace(src[i+2])):
				state = lineComment
				i++
			case c == '/' && i+1 < len(src) && src[i+1] == '*':
				state = blockComment
				i++
			case isSpace(c):
			default:
				if firstLine == 0 {
					firstLine = line
				}
			}
		case single, double, backtick:
			quote := map[int]byte{single: '\'', double: '"', backtick: '`'}[state]
			switch {
			case c == '\\' && state != backtick && i+1 < len(src):
				// MySQL's backslash escapes; the escaped byte cannot end
				// the string.
				if src[i+1] == '\n' {
					line++
				}
				i++
			case c == quote && i+1 < len(src) && src[i+1] == quote:
				i++ // doubled quote
			case c == quote:
				state = normal
			}
		case lineComment:
			if c == '\n' {
				state = normal
			}
		case blockComment:
			if c == '*' && i+1 < len(src) && src[i+1] == '/' {
				state = normal
				i++
			}
		}
		if c == '\n' {
			line++
		}
	}
	rest = src[start:]
	blank = firstLine == 0 && (state == normal || state == lineComment)
	return stmts, rest, blank
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// splitScript cuts a whole script into statements; the text after the
// last `;` is a statement too (a script needs no final delimiter), even an
// unterminated one, so that the engine reports what is wrong with it.
func splitScript(src string) []statement {
	stmts, rest, blank := splitStatements(src)
	if !blank {
		line := strings.Count(src[:len(src)-len(rest)], "\n") + 1
		trimmed := strings.TrimLeft(rest, " \t\r\n")
		line += strings.Count(rest[:len(rest)-len(trimmed)], "\n")
		stmts = append(stmts, statement{Text: strings.TrimSpace(rest), Line: line})
	}
	return stmts
}
