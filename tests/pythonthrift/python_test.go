package pythonthrift

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
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
	idl := filepath.Join(here, "..", "..", "proto", "hbase.thrift")
	gen := t.TempDir()
	if out, err := exec.Command("thrift", "--gen", "py", "-out", gen, idl).CombinedOutput(); err != nil {
		t.Fatalf("generating the Python client: %v\n%s", err, out)
	}

	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	gw, err := thriftgw.Listen(thriftgw.Options{Client: kv, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve()
	defer gw.Close()
	host, port, _ := strings.Cut(gw.Addr().String(), ":")

	cmd := exec.CommandContext(ctx, python, filepath.Join(here, "client.py"), gen, host, port)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("python client failed: %v\n%s", err, out)
	}
}
