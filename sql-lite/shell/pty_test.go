package shell_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
)

// terminal drives a real `shale sql` process on a pseudo-terminal: it
// collects the output, answers readline's cursor position queries as a
// terminal would, and waits for expected output with a timeout.
type terminal struct {
	t    *testing.T
	pty  *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []byte
	mark int           // expect searches from here
	more chan struct{} // closed and replaced when output arrives
	done chan struct{} // closed when the pty reader stops
	exit chan error
}

const expectTimeout = 60 * time.Second

// startTerminal runs `shale args...` on a new pseudo-terminal.
func startTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(proctest.Binary(t), args...)
	cmd.Env = append(os.Environ(), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, pty: f, cmd: cmd, more: make(chan struct{}), done: make(chan struct{}), exit: make(chan error, 1)}
	go func() { term.exit <- cmd.Wait() }()
	go term.read()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		f.Close()
		<-term.done
		if t.Failed() {
			t.Logf("terminal output:\n%s", term.output())
		}
	})
	return term
}

func (term *terminal) read() {
	defer close(term.done)
	buf := make([]byte, 4096)
	answered := 0
	for {
		n, err := term.pty.Read(buf)
		term.mu.Lock()
		term.out = append(term.out, buf[:n]...)
		// Readline asks where the cursor is (DSR) before each prompt and
		// waits for the answer.
		for q := bytes.Count(term.out, []byte("\x1b[6n")); answered < q; answered++ {
			_, _ = term.pty.Write([]byte("\x1b[1;1R"))
		}
		close(term.more)
		term.more = make(chan struct{})
		term.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return string(term.out)
}

// expect waits until s appears in the output after the previous match and
// moves past it.
func (term *terminal) expect(s string) {
	term.t.Helper()
	deadline := time.After(expectTimeout)
	for {
		term.mu.Lock()
		i := bytes.Index(term.out[term.mark:], []byte(s))
		more := term.more
		if i >= 0 {
			term.mark += i + len(s)
			term.mu.Unlock()
			return
		}
		rest := string(term.out[term.mark:])
		term.mu.Unlock()
		select {
		case <-more:
		case <-term.done:
			term.t.Fatalf("the shell's output ended before %q; since the last match:\n%q", s, rest)
		case <-deadline:
			term.t.Fatalf("no %q within %s; since the last match:\n%q", s, expectTimeout, rest)
		}
	}
}

// expectNot fails if s appears between the previous match and the current
// end of the output.
func (term *terminal) expectNot(s string) {
	term.t.Helper()
	term.mu.Lock()
	defer term.mu.Unlock()
	if bytes.Contains(term.out[term.mark:], []byte(s)) {
		term.t.Fatalf("unexpected %q in:\n%q", s, term.out[term.mark:])
	}
}

func (term *terminal) send(s string) {
	term.t.Helper()
	if _, err := term.pty.Write([]byte(s)); err != nil {
		term.t.Fatal(err)
	}
}

// waitCooked waits until the terminal leaves raw mode: readline has handed
// the line over and the shell is running the statement, so Ctrl-C is a
// SIGINT now, not a key.
func (term *terminal) waitCooked() {
	term.t.Helper()
	testutils.SucceedsSoon(term.t, func() error {
		tio, err := unix.IoctlGetTermios(int(term.pty.Fd()), unix.TCGETS)
		if err != nil {
			term.t.Fatal(err)
		}
		if tio.Lflag&unix.ISIG == 0 {
			return errors.New("the terminal is still in raw mode")
		}
		return nil
	})
}

// wait waits for the process to exit and returns its exit code.
func (term *terminal) wait() int {
	term.t.Helper()
	select {
	case err := <-term.exit:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			term.t.Fatal(err)
		}
		return 0
	case <-time.After(expectTimeout):
		term.t.Fatalf("the shell did not exit within %s", expectTimeout)
		return -1
	}
}

func ptyArgs(pd []string, history string) []string {
	return []string{"sql", "--log-level", "warn", "--pd", strings.Join(pd, ","), "--history", history}
}
