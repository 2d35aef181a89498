package mysqlwire

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sysbenchBin returns sysbench (the Debian package sysbench, which
// scripts/install-tools.sh ci installs). Its absence fails the test: it is
// the C client (libmysqlclient/libmariadb, server-side prepared
// statements) the protocol is checked against.
func sysbenchBin(t *testing.T) string {
	p, err := exec.LookPath("sysbench")
	if err != nil {
		t.Fatalf("the MySQL protocol tests need sysbench: run scripts/install-tools.sh ci (Debian package sysbench)")
	}
	return p
}

// runSysbench runs sysbench's OLTP workload lua against addr with
// sbtest1 (table size rows, no AUTO_INCREMENT, no secondary index: see
// docs/sql.md) and returns its output.
func runSysbench(t *testing.T, bin, addr, workload, command string, extra ...string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{workload, "--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port,
		"--mysql-user=root", "--mysql-password=", "--mysql-db=" + Database,
		"--tables=1", "--table-size=200", "--auto_inc=off", "--create_secondary=off"}, extra...)
	out, err := exec.CommandContext(ctx, bin, append(args, command)...).CombinedOutput()
	require.NoError(t, err, "sysbench %s %s:\n%s", workload, command, out)
	return string(out)
}

// sysbenchCount reads one counter of sysbench's report ("read:  1234").
func sysbenchCount(t *testing.T, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `:\s+(\d+)`).FindStringSubmatch(out)
	require.NotNil(t, m, "no %q in sysbench's report:\n%s", name, out)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// sysbench's oltp_point_select, oltp_read_only and oltp_read_write run
// with server-side prepared statements (its default): every SELECT is
// counted as a read (sysbench goes by the prepare's column count), every
// write as a write, none fails.
func TestSysbenchPrepared(t *testing.T) {
	bin := sysbenchBin(t)
	_, addr := startServer(t, Config{})
	runSysbench(t, bin, addr, "oltp_read_only", "cleanup")
	out := runSysbench(t, bin, addr, "oltp_read_only", "prepare")
	require.Contains(t, out, "Inserting 200 records into 'sbtest1'")
	t.Cleanup(func() { runSysbench(t, bin, addr, "oltp_read_only", "cleanup") })

	for _, tc := range []struct {
		workload              string
		reads, writes, others int // per transaction
		extra                 []string
	}{
		{"oltp_point_select", 1, 0, 0, []string{"--threads=2"}},
		// 10 point, 4 range SELECTs; BEGIN, COMMIT.
		{"oltp_read_only", 14, 0, 2, []string{"--threads=2"}},
		// Its writes each in their own transaction (a transaction may
		// write one row), by one thread (two would race a DELETE and
		// INSERT of one id). Every execute after a statement's first
		// sends no parameter types: a NULL id would fail the INSERT.
		{"oltp_read_write", 14, 4, 0, []string{"--threads=1", "--skip_trx=on"}},
	} {
		args := append([]string{"--time=2", "--db-ps-mode=auto"}, tc.extra...)
		out := runSysbench(t, bin, addr, tc.workload, "run", args...)
		txns := sysbenchCount(t, out, "transactions")
		require.Positive(t, txns, out)
		require.Equal(t, 0, sysbenchCount(t, out, "ignored errors"), out)
		require.Equal(t, tc.reads*txns, sysbenchCount(t, out, "read"), out)
		require.Equal(t, tc.writes*txns, sysbenchCount(t, out, "write"), out)
		require.Equal(t, tc.others*txns, sysbenchCount(t, out, "other"), out)
		t.Logf("%s: %d transactions in 2s", tc.workload, txns)
	}
}
