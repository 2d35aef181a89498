package plot

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/bench/ycsb"
)

func result(target string, tput float64, p99 int64) *ycsb.Result {
	r := &ycsb.Result{Phase: ycsb.PhaseRun, Target: target, Workload: "workloada", Threads: 16, Throughput: tput, P99Us: p99, Start: time.Unix(1700000000, 0)}
	for i := 1; i <= 30; i++ {
		r.Series = append(r.Series, ycsb.Point{T: float64(i), Throughput: tput + float64(i%5)*10, P99Us: p99 + int64(i%3)*1000})
	}
	return r
}

// wellFormed checks that s parses as XML from start to end.
func wellFormed(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = false // HTML's <!DOCTYPE> and <meta>
	d.AutoClose = xml.HTMLAutoClose
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		require.NoError(t, err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	lines := []Line{{Label(result("shale", 3000, 20000)), result("shale", 3000, 20000)}, {Label(result("etcd", 1500, 40000)), result("etcd", 1500, 40000)}}
	require.Equal(t, "shale workloada t16", lines[0].Label)

	htmlPath := filepath.Join(dir, "a.html")
	require.NoError(t, WriteFile(htmlPath, "A: shale vs etcd", lines))
	b, err := os.ReadFile(htmlPath)
	require.NoError(t, err)
	page := string(b)
	require.Equal(t, 2, strings.Count(page, "<svg "), "throughput and p99 charts")
	require.Equal(t, 4, strings.Count(page, "<polyline"), "one line per result in each chart")
	require.Contains(t, page, "Throughput (ops/s)")
	require.Contains(t, page, "p99 latency")
	require.Contains(t, page, "etcd workloada t16")
	wellFormed(t, page)

	svgPath := filepath.Join(dir, "a.svg")
	require.NoError(t, WriteFile(svgPath, "A & B", lines))
	b, err = os.ReadFile(svgPath)
	require.NoError(t, err)
	require.Contains(t, string(b), "A &amp; B")
	var doc struct{ XMLName xml.Name }
	require.NoError(t, xml.Unmarshal(b, &doc), "a standalone SVG is strict XML")
	require.Equal(t, "svg", doc.XMLName.Local)

	err = WriteFile(filepath.Join(dir, "a.png"), "x", lines)
	require.ErrorAs(t, err, new(ErrFormat))
	require.ErrorContains(t, err, "use .html")
	require.ErrorContains(t, WriteFile(htmlPath, "x", nil), "no results")
}

func TestTicks(t *testing.T) {
	ts, max := ticks(2345)
	require.Equal(t, []float64{0, 500, 1000, 1500, 2000, 2500}, ts)
	require.Equal(t, 2500.0, max)
	ts, max = ticks(0)
	require.Equal(t, 1.0, max)
	require.Equal(t, 0.0, ts[0])
}
