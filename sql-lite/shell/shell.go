package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ergochat/readline"

	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/kvclient"
	sqllite "github.com/shaledb/shale/sql-lite"
)

// ErrStatementFailed is returned by Main and RunScript when a statement
// failed; the shell has already printed why, so the caller only needs to
// exit non-zero.
var ErrStatementFailed = errors.New("a statement failed")

// Execer runs SQL; *sqllite.Session implements it.
type Execer interface {
	Exec(ctx context.Context, sql string) ([]*sqllite.Result, error)
	WordSource
}

// Options configure Main.
type Options struct {
	// PD is the placement driver's client addresses.
	PD []string
	// Files are scripts to run, in order (-f); "-" is standard input.
	Files []string
	// Execute is SQL to run after Files (-e).
	Execute string
	// Format of the results; "" is table.
	Format Format
	// Continue runs a script to its end after a failed statement; the exit
	// status is still non-zero.
	Continue bool
	// Timing prints each statement's time in scripts too (the interactive
	// shell always does).
	Timing bool
	// Demo loads the sample tables (customers, orders) first.
	Demo bool
	// HistoryFile keeps the interactive history; "" keeps none.
	HistoryFile string
	// ConnectTimeout bounds connecting to the cluster; 0 is 10s.
	ConnectTimeout time.Duration
	// TLS is the client certificate to connect with (nil: plaintext).
	TLS *security.Reloader
	// Stdin, Stdout, Stderr default to the process's. The shell is
	// interactive only when Stdin is a terminal (an *os.File).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// EnsureDefaults returns a copy of o with the process's standard streams,
// the table format and a 10s connect timeout where o leaves them unset. The
// format is lower-cased, as ParseFormat accepts it.
func (o Options) EnsureDefaults() Options {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	o.Format = Format(strings.ToLower(string(o.Format)))
	if o.Format == "" {
		o.Format = FormatTable
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	return o
}

// Validate rejects an unknown output format and a missing cluster
// address.
func (o Options) Validate() error {
	if o.Format != "" {
		if _, err := ParseFormat(string(o.Format)); err != nil {
			return err
		}
	}
	if len(o.PD) == 0 {
		return errors.New("no placement driver address (--pd)")
	}
	return nil
}

// DefaultHistoryFile is ~/.shale_sql_history, or "" without a home.
func DefaultHistoryFile() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".shale_sql_history")
}

// Main connects to the cluster and runs the shell: the scripts of Files and
// Execute when there are any, else the interactive shell when standard
// input is a terminal, else standard input as a script.
func Main(ctx context.Context, o Options) error {
	o = o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	client, err := kvclient.Open(cctx, kvclient.Options{PD: o.PD, TLS: o.TLS})
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to the placement driver at %s: %w", strings.Join(o.PD, ","), err)
	}
	defer client.Close()
	sess, err := sqllite.Open(ctx, client)
	if err != nil {
		return err
	}
	defer sess.Close()

	sh := &Shell{db: sess, out: o.Stdout, errOut: o.Stderr, format: o.Format, timing: o.Timing, cont: o.Continue}
	if o.Demo {
		if err := LoadDemo(ctx, sess, o.Stderr); err != nil {
			return err
		}
	}
	if len(o.Files) > 0 || o.Execute != "" {
		failed := false
		for _, f := range o.Files {
			var src []byte
			var err error
			if f == "-" {
				src, err = io.ReadAll(o.Stdin)
			} else {
				src, err = os.ReadFile(f)
			}
			if err != nil {
				return err
			}
			if err := sh.RunScript(ctx, f, string(src)); err != nil {
				if !o.Continue || !errors.Is(err, ErrStatementFailed) {
					return err
				}
				failed = true
			}
		}
		if o.Execute != "" {
			if err := sh.RunScript(ctx, "", o.Execute); err != nil {
				return err
			}
		}
		if failed {
			return ErrStatementFailed
		}
		return nil
	}
	if f, ok := o.Stdin.(*os.File); ok && isTerminal(f) {
		sh.timing = true
		return sh.Interactive(ctx, f, o.HistoryFile)
	}
	src, err := io.ReadAll(o.Stdin)
	if err != nil {
		return err
	}
	return sh.RunScript(ctx, "", string(src))
}

// Shell runs statements and prints their results.
type Shell struct {
	db     Execer
	out    io.Writer
	errOut io.Writer
	format Format
	timing bool
	cont   bool
}

// RunScript runs the statements of src (name is for error messages; "" for
// -e). It stops at the first failing statement, printing the error with the
// statement's line, and returns ErrStatementFailed, unless cont is set: then
// it runs every statement and returns ErrStatementFailed at the end if any
// failed.
func (s *Shell) RunScript(ctx context.Context, name, src string) error {
	failed := false
	for _, st := range splitScript(src) {
		err := s.run(ctx, st.Text)
		if err == nil {
			continue
		}
		where := fmt.Sprintf("line %d", st.Line)
		if name != "" {
			where = fmt.Sprintf("%s:%d", name, st.Line)
		}
		fmt.Fprintf(s.errOut, "ERROR at %s: %s\n", where, errText(ctx, err))
		if ctx.Err() != nil || !s.cont {
			return ErrStatementFailed
		}
		failed = true
	}
	if failed {
		return ErrStatementFailed
	}
	return nil
}

// run executes one statement and prints its results (those before a
// failure too).
func (s *Shell) run(ctx context.Context, sql string) error {
	start := time.Now()
	results, err := s.db.Exec(ctx, sql)
	elapsed := time.Duration(-1)
	if s.timing {
		elapsed = time.Since(start)
	}
	for _, r := range results {
		if r == nil {
			continue
		}
		if werr := writeResult(s.out, s.format, r, elapsed); werr != nil {
			return werr
		}
	}
	return err
}

// errText is a statement's error as the shell prints it.
func errText(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return "statement canceled"
	}
	return err.Error()
}

const (
	prompt             = "shale> "
	txnPrompt          = "shale*> " // inside BEGIN ... COMMIT
	continuationPrompt = "    -> "
)

// Interactive reads statements from the terminal until Ctrl-D, \q or exit.
// Ctrl-C while a statement runs cancels it; Ctrl-C while typing drops the
// statement in progress.
func (s *Shell) Interactive(ctx context.Context, in *os.File, historyFile string) error {
	var pending strings.Builder // lines of the statement in progress
	rl, err := readline.NewFromConfig(&readline.Config{
		Prompt:                 prompt,
		HistoryFile:            historyFile,
		HistoryLimit:           1000,
		DisableAutoSaveHistory: true,
		AutoComplete:           &completer{src: s.db, pending: pending.String},
		Stdin:                  in,
		Stdout:                 s.out,
		Stderr:                 s.errOut,
	})
	if err != nil {
		return err
	}
	defer rl.Close()

	// The terminal is in raw mode while readline reads, so Ctrl-C is a key
	// then; while a statement runs it is cooked, and Ctrl-C is a SIGINT
	// that cancels the statement. The caller's context may end on SIGINT
	// too (cmd/shale's does), so statements do not inherit its
	// cancellation; SIGTERM ends the shell.
	base := context.WithoutCancel(ctx)
	var (
		mu      sync.Mutex
		cancel  context.CancelFunc
		stopped bool
	)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				mu.Lock()
				if cancel != nil {
					cancel()
				}
				if sig == syscall.SIGTERM {
					stopped = true
					rl.Close()
				}
				mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	runStmt := func(f func(ctx context.Context) error) error {
		sctx, c := context.WithCancel(base)
		mu.Lock()
		cancel = c
		mu.Unlock()
		err := f(sctx)
		mu.Lock()
		cancel = nil
		mu.Unlock()
		if err != nil {
			if sctx.Err() != nil {
				fmt.Fprintln(s.errOut) // past the terminal's ^C echo
			}
			fmt.Fprintf(s.errOut, "ERROR: %s\n", errText(sctx, err))
		}
		c()
		return err
	}
	isStopped := func() bool { mu.Lock(); defer mu.Unlock(); return stopped }

	// A session that tells whether a BEGIN is open gets a prompt that
	// shows it (shale*>), and a word when the shell exits in one.
	txn, _ := s.db.(interface{ InTransaction() bool })
	inTxn := func() bool { return txn != nil && txn.InTransaction() }
	defer func() {
		if inTxn() {
			fmt.Fprintln(s.errOut, "The open transaction was rolled back.")
		}
	}()

	fmt.Fprintf(s.out, "Shale SQL shell. Statements end with ';'. Type 'help' for help, Ctrl-D to exit.\n")
	for !isStopped() {
		switch {
		case pending.Len() > 0:
			rl.SetPrompt(continuationPrompt)
		case inTxn():
			rl.SetPrompt(txnPrompt)
		default:
			rl.SetPrompt(prompt)
		}
		line, err := rl.ReadLine()
		if errors.Is(err, readline.ErrInterrupt) {
			pending.Reset() // Ctrl-C drops the statement being typed
			continue
		}
		if err != nil { // io.EOF: Ctrl-D
			if pending.Len() > 0 {
				fmt.Fprintln(s.out)
			}
			return nil
		}
		if pending.Len() == 0 {
			if cmd, ok := parseCommand(line); ok {
				_ = rl.SaveToHistory(strings.TrimSpace(line))
				if cmd.name == "quit" {
					return nil
				}
				runStmt(func(ctx context.Context) error { return s.command(ctx, cmd) })
				continue
			}
		}
		pending.WriteString(line)
		pending.WriteByte('\n')
		stmts, rest, blank := splitStatements(pending.String())
		if len(stmts) == 0 {
			if blank {
				pending.Reset()
			}
			continue
		}
		consumed := pending.String()[:pending.Len()-len(rest)]
		// One history entry per statement, on one line.
		_ = rl.SaveToHistory(strings.TrimSpace(strings.ReplaceAll(consumed, "\n", " ")))
		pending.Reset()
		if !blank {
			pending.WriteString(rest)
		}
		for _, st := range stmts {
			if runStmt(func(ctx context.Context) error { return s.run(ctx, st.Text) }) != nil {
				break // the statements after a failed one on the same line are dropped
			}
		}
	}
	return nil
}

// isTerminal reports whether f is a character device (a terminal, in
// practice; /dev/null too, on which the shell sees Ctrl-D at once).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
