package pythonthrift

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/proctest"
)

// python is Debian's interpreter, which sees Debian's python3-thrift.
const python = "/usr/bin/python3"

func TestPythonClient(t *testing.T) {
	if _, err := exec.LookPath("thrift"); err != nil {
		t.Fatal("the thrift compiler is missing: run scripts/install-tools.sh ci (make test does)")
	}
	if out, err := exec.Command(python, "-c", "import thrift").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import thrift (%v: %s): run scripts/install-tools.sh ci (make test does)", python, err, out)
	}
	_, file, _, _ := runtime.Caller(0)
	here := filepath.Dir(file)
	gen := generate(t, filepath.Join(here, "..", "..", "proto", "hbase.thrift"))
	gen1 := generate(t, filepath.Join(here, "..", "..", "proto", "hbase1.thrift"))

	// A real `shale playground` (PD, three tablet servers, the gateway).
	logPath := filepath.Join(t.TempDir(), "playground.log")
	p := proctest.Start(t, "playground", logPath, "playground", "--log-level", "warn")
	thriftAddr, thrift1Addr, pd := waitServing(t, p)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	run := func(script, gen, addr string) {
		t.Helper()
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, python, filepath.Join(here, script), gen, host, port).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Fatalf("python client %s failed: %v\n%s", script, err, out)
		}
	}
	run("client.py", gen, thriftAddr)
	// The happybase-shaped Thrift1 session.
	run("client1.py", gen1, thrift1Addr)
	// What `make run` promises: shale kv works against the playground, and
	// sees what the Python client wrote through the gateway (the raw API's
	// keys are rows of the "kv" table, family "v", empty qualifier).
	shale := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, proctest.Binary(t), append([]string{"kv", "--log-level", "warn", "--pd", pd}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("shale kv %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	shale("put", "hello", "world")
	if got := shale("get", "hello"); got != "world\n" {
		t.Fatalf("shale kv get hello = %q, want \"world\\n\"", got)
	}
	if got := shale("get", "from-python"); got != "hi\n" {
		t.Fatalf("shale kv get from-python = %q, want \"hi\\n\"", got)
	}
	if code := p.Signal(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("the playground exited with %d after SIGTERM:\n%s", code, proctest.Tail(logPath, 20))
	}
}

// generate compiles an IDL to Python with Debian's thrift compiler.
func generate(t *testing.T, idl string) string {
	t.Helper()
	gen := t.TempDir()
	if out, err := exec.Command("thrift", "--gen", "py", "-out", gen, idl).CombinedOutput(); err != nil {
		t.Fatalf("generating the Python client from %s: %v\n%s", idl, err, out)
	}
	return gen
}

// waitServing waits for the playground to print its endpoints and returns
// the Thrift2 and Thrift1 gateways' addresses and the PD list.
func waitServing(t *testing.T, p *proctest.Proc) (thrift, thrift1, pd string) {
	t.Helper()
	reThrift := regexp.MustCompile(`(?m)^thrift: (\S+)$`)
	reThrift1 := regexp.MustCompile(`(?m)^thrift1: (\S+)$`)
	rePD := regexp.MustCompile(`(?m)^pd: (\S+)$`)
	// The playground bounds its own startup; 10 minutes only catches a hang.
	out := p.WaitOutput(t, "Press Ctrl-C to stop.", 10*time.Minute)
	mt, mt1, mp := reThrift.FindStringSubmatch(out), reThrift1.FindStringSubmatch(out), rePD.FindStringSubmatch(out)
	if mt == nil || mt1 == nil || mp == nil {
		t.Fatalf("the playground printed no thrift:, thrift1: or pd: line:\n%s", out)
	}
	return mt[1], mt1[1], mp[1]
}
