package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
)

// Environment knobs of TestConsoleInBrowser for refreshing the README's
// screenshot: SHALE_CONSOLE_SCREENSHOT=docs/console-heatmap.png writes the
// heat map there, after SHALE_CONSOLE_LOAD (a Go duration, default: until
// the first load shows) of load.
const (
	screenshotEnv = "SHALE_CONSOLE_SCREENSHOT"
	loadEnv       = "SHALE_CONSOLE_LOAD"
)

// The web console in a real headless browser (Debian's chromium, which
// scripts/install-tools.sh ci installs): against a live playground under
// load, its pages show the stores and tables, the tablet search finds the
// tablet of a row, and the key heat map draws the load labelled with the
// table's name.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	chromium, err := exec.LookPath("chromium")
	require.NoError(t, err, "the console test needs Debian's chromium: apt-get install chromium (scripts/install-tools.sh ci)")
	logPath := filepath.Join(t.TempDir(), "playground.log")
	p, eps := startPlayground(t, logPath, "--stores", "3")
	defer func() {
		require.Equal(t, 0, p.Signal(syscall.SIGTERM, 30*time.Second), "SIGTERM: want a clean exit\n%s", proctest.Tail(logPath, 20))
	}()
	t.Logf("playground serving")
	consoleURL := eps["console"]
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/console/$`, consoleURL)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: strings.Split(eps["pd"], ",")})
	require.NoError(t, err)
	defer kv.Close()
	_, err = kv.CreateTable(ctx, "usertable", []kvclient.Family{{Name: "f", MaxVersions: 1}}, []byte("user3"), []byte("user6"))
	require.NoError(t, err)
	_, err = kv.CreateTable(ctx, "orders", []kvclient.Family{{Name: "o", MaxVersions: 1}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); consoleLoad(ctx, t, kv) }()

	// The heat map needs a tablet report with load (every 10s per store).
	testutils.SucceedsWithin(t, 2*time.Minute, func() error { return heatmapShows(consoleURL, "usertable") })
	t.Logf("the heat map shows the load")
	if d := os.Getenv(loadEnv); d != "" {
		dur, err := time.ParseDuration(d)
		require.NoError(t, err, loadEnv)
		t.Logf("loading for %s before the screenshot", dur)
		time.Sleep(dur) // models the load's duration for the screenshot, not a wait for a condition
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first call starts the browser, which lives as long as that
	// call's context: no timeout on it (chromedp.Run's documentation).
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")))
	// open loads a page of the console and waits until its data is shown.
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(browserStep(t, bctx), chromedp.Text(sel))
		require.NoError(t, err, sel)
		return s
	}
	// open loads a page of the console and waits until it shows its data
	// (or the error it got, which fails the test).
	open := func(page string) {
		t.Helper()
		name, _, _ := strings.Cut(page, "?")
		require.NoError(t, chromedp.Do(browserStep(t, bctx), chromedp.Navigate(consoleURL+"#"+page),
			chromedp.WaitVisible(`body[data-loaded^="`+name+`"]`)), "page %s", page)
		loaded, err := chromedp.Run(browserStep(t, bctx), chromedp.AttributeValue("body", "data-loaded"))
		require.NoError(t, err)
		require.Equal(t, name, loaded.Value, "page %s failed: %s", page, text("#status"))
	}

	t.Logf("browser started")
	open("overview")
	stores := text("#stores-table")
	for _, addr := range playgroundStoreAddrs(t, eps) {
		require.Contains(t, stores, addr)
	}
	require.Contains(t, stores, "Up")
	open("tables")
	tables := text("#tables-table")
	require.Contains(t, tables, "usertable")
	require.Contains(t, tables, "orders")
	open("tablets?table=usertable&row=user7")
	require.Regexp(t, `Row "user7" of usertable is in tablet \d+`, text("#tablets-summary"))
	require.Contains(t, text("#tablets-table"), "usertable / user6", "the tablet of user7 starts at the split row user6")

	open("hot")
	require.Contains(t, text("#hot-table"), "usertable")
	open("operators")
	require.Contains(t, text("#operators-running"), "Tablet")
	open("config")
	require.Contains(t, text("#config-table"), "max-replicas")

	open("heatmap")
	require.Contains(t, text("#heatmap-tables"), "usertable")
	columns, err := chromedp.Run(browserStep(t, bctx), chromedp.AttributeValue("#heatmap", "data-columns"))
	require.NoError(t, err)
	require.True(t, columns.Exists && columns.Value != "0", "data-columns %+v", columns)
	// Pixels brighter than the idle colour: the load was drawn.
	lit, err := chromedp.Run(browserStep(t, bctx), chromedp.Evaluate[int](`(() => {
		const c = document.getElementById("heatmap"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) if (d[i] + d[i+1] + d[i+2] > 150) n++;
		return n;
	})()`))
	require.NoError(t, err)
	require.Greater(t, lit, 100, "the heat map drew no load")

	png, err := chromedp.Run(browserStep(t, bctx), chromedp.Screenshot("#page-heatmap", chromedp.NodeVisible))
	require.NoError(t, err)
	require.Greater(t, len(png), 1000)
	out := os.Getenv(screenshotEnv)
	if out == "" {
		out = filepath.Join(t.TempDir(), "heatmap.png")
	} else if !filepath.IsAbs(out) {
		out = filepath.Join("..", "..", out) // relative to the repository root
	}
	require.NoError(t, os.WriteFile(out, png, 0o644))
	t.Logf("heat map screenshot: %s", out)
	cancel() // stops the load before the playground

}

// browserStep bounds one browser step (the browser itself lives as long
// as ctx).
func browserStep(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// consoleLoad writes and reads usertable until ctx ends: most traffic on
// rows user6..user9 (one hot tablet), some everywhere, a little on orders.
func consoleLoad(ctx context.Context, t *testing.T, kv *kvclient.Client) {
	rnd := testutils.Rand(t, 1)
	users, err := kv.Table(ctx, "usertable")
	if err != nil {
		return
	}
	orders, err := kv.Table(ctx, "orders")
	if err != nil {
		return
	}
	value := []byte(strings.Repeat("v", 512))
	for i := 0; ctx.Err() == nil; i++ {
		row := fmt.Sprintf("user%d%04d", rnd.IntN(10), rnd.IntN(10000))
		if rnd.IntN(3) > 0 {
			row = fmt.Sprintf("user%d%04d", 6+rnd.IntN(4), rnd.IntN(10000))
		}
		_, _ = users.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), value))
		_, _ = users.Get(ctx, []byte(row))
		if i%10 == 0 {
			_, _ = orders.MutateRow(ctx, []byte(fmt.Sprintf("o%06d", i)), kvclient.SetCell("o", nil, value))
		}
	}
}

// heatmapShows reports whether the console's heat map has load labelled
// with table.
func heatmapShows(consoleURL, table string) error {
	resp, err := http.Get(consoleURL + "api/heatmap?metric=write_bytes")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var hm struct {
		Rows []struct {
			Table string `json:"table"`
		} `json:"rows"`
		Max float64 `json:"max"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&hm); err != nil {
		return err
	}
	for _, r := range hm.Rows {
		if r.Table == table && hm.Max > 0 {
			return nil
		}
	}
	return errors.New("the heat map shows no load on " + table + " yet")
}

// playgroundStoreAddrs asks PD for the stores' addresses.
func playgroundStoreAddrs(t *testing.T, eps map[string]string) []string {
	out, err := runShale(t, "ctl", "--pd", eps["pd"], "stores", "--json")
	require.NoError(t, err)
	var stores []struct {
		Address string `json:"address"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &stores))
	require.Len(t, stores, 3)
	var addrs []string
	for _, s := range stores {
		addrs = append(addrs, s.Address)
	}
	return addrs
}
