package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/sql-lite/mysqlwire"
)

// exportedMetric is one metric family a process serves on /metrics.
type exportedMetric struct{ typ, help string }

// scrapeNames reads the families of a /metrics answer (text format).
func scrapeNames(t *testing.T, url string, into map[string]exportedMetric) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	help := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) == 4 && f[0] == "#" && f[1] == "HELP" {
			help[f[2]] = f[3]
		}
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			into[f[2]] = exportedMetric{typ: f[3], help: help[f[2]]}
		}
	}
	require.NoError(t, sc.Err())
}

// exportedMetrics runs every kind of Shale process (PD, three tablet
// servers, and a Thrift gateway whose registry also holds a kvclient's,
// the SQL server's and an import job's metrics), makes some traffic and
// returns the union of what their /metrics endpoints serve.
func exportedMetrics(t *testing.T) map[string]exportedMetric {
	c := testcluster.Start(t, testcluster.Options{HTTP: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := metrics.NewRegistry()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), Registry: reg})
	require.NoError(t, err)
	defer cl.Close()
	sqlSrv, err := mysqlwire.New(cl, mysqlwire.Config{User: "root", Registry: reg})
	require.NoError(t, err)
	defer sqlSrv.Close()
	reg.MustRegister(importer.NewProgressMetrics())
	gw, err := thriftgw.Listen(thriftgw.Options{Client: cl, Addr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Registry: reg})
	require.NoError(t, err)
	defer gw.Close()

	testutils.SucceedsSoon(t, func() error {
		return cl.RawPut(ctx, []byte("metrics-row"), []byte("v"))
	})
	_, _, err = cl.RawGet(ctx, []byte("metrics-row"))
	require.NoError(t, err)
	// A quota, so that its share and refusals are exported.
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{Table: "kv", Limits: &pdpb.QuotaLimits{ReadRps: 1}})
	require.NoError(t, err)

	names := map[string]exportedMetric{}
	var urls []string
	for _, a := range c.PDHTTP {
		urls = append(urls, "http://"+a+"/metrics")
	}
	for _, s := range c.Stores {
		urls = append(urls, "http://"+s.HTTPAddr+"/metrics")
	}
	urls = append(urls, "http://"+gw.HTTPAddr().String()+"/metrics")
	// Per-peer raft series appear with the first messages between stores.
	testutils.SucceedsSoon(t, func() error {
		for range 3 { // over the quota: refused, within the short deadline
			rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _, _ = cl.RawGet(rctx, []byte("metrics-row"))
			rcancel()
		}
		for _, u := range urls {
			scrapeNames(t, u, names)
		}
		for _, want := range []string{"shale_store_raft_sent_messages_total", "shale_grpc_server_handling_seconds", "shale_pd_store_heartbeat_age_seconds", "shale_quota_limit", "shale_quota_throttled_total"} {
			if _, ok := names[want]; !ok {
				return fmt.Errorf("%s not exported yet", want)
			}
		}
		return nil
	})
	return names
}

// documentedMetric matches a metric's row in docs/metrics.md.
var documentedMetric = regexp.MustCompile("^\\| `(shale_[a-z0-9_]+)`")

func documentedMetrics(t *testing.T) map[string]bool {
	b, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	require.NoError(t, err)
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := documentedMetric.FindStringSubmatch(line); m != nil {
			require.False(t, out[m[1]], "docs/metrics.md lists %s twice", m[1])
			out[m[1]] = true
		}
	}
	return out
}

// metricRef matches a Shale metric name in a dashboard or rule file.
var metricRef = regexp.MustCompile(`\bshale_[a-z0-9_]+`)

// referencedMetrics returns every shale_ metric a file under dir names,
// with the files that name it.
func referencedMetrics(t *testing.T, dir string, exts ...string) map[string][]string {
	out := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for _, ext := range exts {
			if strings.HasSuffix(path, ext) {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				b, err := io.ReadAll(f)
				if err != nil {
					return err
				}
				for _, name := range metricRef.FindAllString(string(b), -1) {
					out[name] = append(out[name], path)
				}
			}
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// resolves reports whether a name in an expression is exported, directly
// or as a histogram's _bucket, _sum or _count series.
func resolves(name string, exported map[string]exportedMetric) bool {
	if _, ok := exported[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base].typ == "histogram" {
			return true
		}
	}
	return false
}

// TestMetricsDocumentedAndUsedByDashboards keeps docs/metrics.md, the
// Grafana dashboards and the alert rules true to what the processes
// export: every exported shale_ metric is documented, every documented
// one is exported, and every metric a dashboard or rule names exists.
func TestMetricsDocumentedAndUsedByDashboards(t *testing.T) {
	exported := exportedMetrics(t)
	var shale []string
	for name := range exported {
		if strings.HasPrefix(name, "shale_") {
			shale = append(shale, name)
		}
	}
	sort.Strings(shale)

	t.Run("docs", func(t *testing.T) {
		documented := documentedMetrics(t)
		for _, name := range shale {
			if !documented[name] {
				t.Errorf("%s (%s: %s) is exported but docs/metrics.md does not list it", name, exported[name].typ, exported[name].help)
			}
		}
		for name := range documented {
			if _, ok := exported[name]; !ok {
				t.Errorf("docs/metrics.md lists %s, which no process exports", name)
			}
		}
	})
	t.Run("dashboards-and-rules", func(t *testing.T) {
		refs := referencedMetrics(t, filepath.Join("grafana"), ".json")
		require.NotEmpty(t, refs, "no dashboard names a shale_ metric")
		for name, files := range referencedMetrics(t, filepath.Join("prometheus"), ".yml", ".yaml") {
			refs[name] = append(refs[name], files...)
		}
		for name, files := range refs {
			if !resolves(name, exported) {
				t.Errorf("%s is named in %v but no process exports it", name, files)
			}
		}
	})
}
