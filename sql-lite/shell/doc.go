// Package shell is the interactive SQL shell of sql-lite (`shale sql`,
// `shale playground --sql`): line editing and persistent history through
// github.com/ergochat/readline, statements that span lines until a `;`
// outside quotes and comments, tab completion of keywords, table and column
// names, aligned tables (or CSV, TSV, JSON lines) with row counts and
// timing, scripts from -e and -f, and a demo dataset.
//
// The shell only splits input into statements (a lexical scan for the `;`
// delimiter, as the mysql client does); parsing and running them is the
// engine's (package sqllite). Ctrl-C cancels the running statement's
// context and clears a half-typed statement; Ctrl-D exits.
package shell
