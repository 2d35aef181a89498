//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
)

func TestMain(m *testing.M) {
	removeStaleProjects()
	// An interrupted run still removes its containers, network and volumes.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "nemesis: %v: removing compose projects\n", s)
		activeProjects.Range(func(k, _ any) bool {
			removeProject(k.(string))
			return true
		})
		os.Exit(2)
	}()
	os.Exit(m.Run())
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: not an integer", name, v))
		}
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: not a duration (e.g. 2m)", name, v))
		}
		return d
	}
	return def
}

// runReport is what one run found; report.txt and summary.md show it.
type runReport struct {
	Run         int            `json:"run"`
	Seed        uint64         `json:"seed"`
	Duration    time.Duration  `json:"duration_ns"`
	Faults      map[string]int `json:"faults"`
	FaultErrors []string       `json:"fault_errors,omitempty"`
	// FaultsRefused lists faults the cluster declined with a reason.
	FaultsRefused []string `json:"faults_refused,omitempty"`
	Registers     tally    `json:"registers"`
	Counters      tally    `json:"counters"`
	Sets          tally    `json:"sets"`
	Thrift        tally    `json:"thrift"`
	Scans         int      `json:"scans"`
	ScanErrors    int      `json:"scan_errors"`
	ScanWrites    int64    `json:"scan_writes"`
	// UnknownLanded counts unknown increments and appends that turned out
	// to have been applied (the rest were not).
	CountersUnknownLanded int                   `json:"counters_unknown_landed"`
	SetsUnknownLanded     int                   `json:"sets_unknown_landed"`
	ThriftUnknownLanded   int                   `json:"thrift_unknown_landed"`
	Linearizability       porcupine.CheckResult `json:"linearizability"`
	CheckTime             time.Duration         `json:"check_time_ns"`
	Violations            []string              `json:"violations,omitempty"`
	// DataViolations counts lost, duplicated or invented acknowledged
	// writes and bad scans; Crashes distinct panics in the servers' logs.
	DataViolations int          `json:"data_violations"`
	Crashes        int          `json:"crashes"`
	Verdict        string       `json:"verdict"`
	Events         []faultEvent `json:"events"`
	Dir            string       `json:"dir"`
}

func (r *runReport) ops() int {
	return r.Registers.Total() + r.Counters.Total() + r.Sets.Total() + r.Thrift.Total() + int(r.ScanWrites) + r.Scans
}

func (r *runReport) unknown() int {
	return r.Registers.Unknown + r.Counters.Unknown + r.Sets.Unknown + r.Thrift.Unknown
}

func (r *runReport) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nemesis run %d, seed %d, faults for %v\n", r.Run, r.Seed, r.Duration)
	fmt.Fprintf(&b, "replay: SHALE_TEST_SEED=%d SHALE_E2E_RUNS=1 SHALE_E2E_DURATION=%v make e2e\n\n", r.Seed, r.Duration)
	fmt.Fprintf(&b, "faults:")
	for _, k := range faultKinds {
		fmt.Fprintf(&b, " %s=%d", k, r.Faults[k])
	}
	fmt.Fprintf(&b, "\n")
	for _, e := range r.FaultErrors {
		fmt.Fprintf(&b, "  fault error: %s\n", e)
	}
	for _, e := range r.FaultsRefused {
		fmt.Fprintf(&b, "  fault refused by the cluster: %s\n", e)
	}
	fmt.Fprintf(&b, "registers (read/write/cas): %v\n", r.Registers)
	fmt.Fprintf(&b, "counters (increment):       %v; unknown that landed %d\n", r.Counters, r.CountersUnknownLanded)
	fmt.Fprintf(&b, "sets (append):              %v; unknown that landed %d\n", r.Sets, r.SetsUnknownLanded)
	fmt.Fprintf(&b, "thrift (put):               %v; unknown that landed %d\n", r.Thrift, r.ThriftUnknownLanded)
	fmt.Fprintf(&b, "scans: %d full scans checked, %d failed (timeouts), %d concurrent writes\n", r.Scans, r.ScanErrors, r.ScanWrites)
	fmt.Fprintf(&b, "linearizability (porcupine, per row): %s in %v\n", r.Linearizability, r.CheckTime.Round(time.Millisecond))
	for i, v := range r.Violations {
		if i == 40 {
			fmt.Fprintf(&b, "... and %d more violations (report.json lists all)\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(&b, "VIOLATION: %s\n", v)
	}
	fmt.Fprintf(&b, "verdict: %s\n", r.Verdict)
	return b.String()
}

// TestNemesis runs SHALE_E2E_RUNS seeded runs, each on a fresh cluster.
func TestNemesis(t *testing.T) {
	runs := int(envInt("SHALE_E2E_RUNS", 2))
	dur := envDuration("SHALE_E2E_DURATION", 90*time.Second)
	seed := testutils.SeedOr(t, uint64(time.Now().UnixNano()%1_000_000_000)) // short, to read in reports
	image := os.Getenv("SHALE_IMAGE")
	if image == "" {
		image = "shale:dev"
	}
	if out, err := run(time.Minute, nil, "docker", "image", "inspect", "-f", "{{.Id}}", image); err != nil {
		t.Fatalf("image %s not found (build it with `make image`): %v %s", image, err, out)
	}
	root := repoRoot(t)
	out := os.Getenv("SHALE_E2E_OUT")
	if out == "" {
		out = filepath.Join(root, "bin", "e2e", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// `shale ctl` for splits and leader transfers: the binary the image
	// was built from (make e2e sets SHALE_BIN), else a fresh build.
	shale := os.Getenv("SHALE_BIN")
	if shale == "" {
		shale = proctest.Binary(t)
	}
	t.Logf("nemesis: %d runs × %v from seed %d; reports in %s", runs, dur, seed, out)

	var reports []*runReport
	for i := range runs {
		s := seed + uint64(i)
		r := &runReport{Run: i, Seed: s, Duration: dur, Faults: map[string]int{}, Dir: filepath.Join(out, fmt.Sprintf("run%02d-seed%d", i, s))}
		reports = append(reports, r)
		t.Run(fmt.Sprintf("run%02d-seed%d", i, s), func(t *testing.T) {
			runOnce(t, r, image, shale)
		})
	}
	summary := summaryTable(reports)
	_ = os.WriteFile(filepath.Join(out, "summary.md"), []byte(summary), 0o644)
	t.Logf("nemesis: summary (%s):\n%s", filepath.Join(out, "summary.md"), summary)
}

func summaryTable(rs []*runReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| run | seed | ")
	for _, k := range faultKinds {
		fmt.Fprintf(&b, "%s | ", k)
	}
	fmt.Fprintf(&b, "ops | unknown | lin. | lost/dup | crashes | verdict |\n|---|---|")
	for range faultKinds {
		fmt.Fprintf(&b, "---|")
	}
	fmt.Fprintf(&b, "---|---|---|---|---|---|\n")
	total := runReport{Faults: map[string]int{}}
	for _, r := range rs {
		fmt.Fprintf(&b, "| %d | %d | ", r.Run, r.Seed)
		for _, k := range faultKinds {
			fmt.Fprintf(&b, "%d | ", r.Faults[k])
			total.Faults[k] += r.Faults[k]
		}
		fmt.Fprintf(&b, "%d | %d | %s | %d | %d | %s |\n", r.ops(), r.unknown(), r.Linearizability, r.DataViolations, r.Crashes, r.Verdict)
		total.Registers.OK += r.ops()
		total.Registers.Unknown += r.unknown()
	}
	fmt.Fprintf(&b, "| total | | ")
	for _, k := range faultKinds {
		fmt.Fprintf(&b, "%d | ", total.Faults[k])
	}
	fmt.Fprintf(&b, "%d | %d | | | | |\n", total.Registers.OK, total.Registers.Unknown)
	return b.String()
}

func runOnce(t *testing.T, r *runReport, image, shale string) {
	t.Logf("nemesis: seed %d; replay with SHALE_TEST_SEED=%d SHALE_E2E_RUNS=1 SHALE_E2E_DURATION=%v make e2e", r.Seed, r.Seed, r.Duration)
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := newRand(r.Seed)
	c := startCluster(t, rng, image)

	ctx, cancel := context.WithTimeout(context.Background(), r.Duration+10*time.Minute)
	defer cancel()
	w := &workloads{pd: c.pdAddrs(), thriftAddr: fmt.Sprintf("127.0.0.1:%d", c.thriftPort), tls: c.tls, seed: r.Seed, t0: time.Now()}
	defer w.close()
	if err := w.setup(ctx); err != nil {
		r.Verdict = "setup failed"
		writeReport(t, r, c, w, nil)
		t.Fatalf("setup: %v", err)
	}
	n := &nemesis{c: c, rng: rng, now: w.now, shale: shale, logf: t.Logf,
		hotKey: rowKey(w.tables["registers"], "r0")}
	for _, s := range []struct {
		table string
		rows  []string
	}{
		{"registers", []string{"r2", "r7"}},
		{"counters", []string{"c1", "c4"}},
		{"sets", []string{"s1", "s4"}},
		{"scan", []string{"k0125", "k0375", "k0625", "k0875"}},
	} {
		for _, row := range s.rows {
			n.splitKeys = append(n.splitKeys, rowKey(w.tables[s.table], row))
		}
	}

	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if err := w.start(wctx, &wg); err != nil {
		stopWorkers()
		wg.Wait()
		t.Fatalf("starting workers: %v", err)
	}
	sleepCtx(ctx, 3*time.Second) // traffic before the first fault

	fctx, stopFaults := context.WithTimeout(ctx, r.Duration)
	n.run(fctx)
	stopFaults()
	var violations []string
	if err := n.healAll(); err != nil {
		violations = append(violations, "cluster did not recover after the faults were healed: "+err.Error())
	}
	sleepCtx(ctx, 5*time.Second) // traffic on the healed cluster
	stopWorkers()
	wg.Wait()

	r.Events = n.snapshot()
	injected := 0
	for _, ev := range r.Events {
		r.Faults[ev.Kind]++
		switch {
		case ev.Refused:
			r.FaultsRefused = append(r.FaultsRefused, fmt.Sprintf("%s %s: %s", ev.Kind, ev.Targets, ev.Err))
		case ev.Err != "":
			r.FaultErrors = append(r.FaultErrors, fmt.Sprintf("%s %s: %s", ev.Kind, ev.Targets, ev.Err))
			violations = append(violations, fmt.Sprintf("fault %s on %s failed to inject or heal: %s", ev.Kind, ev.Targets, ev.Err))
		default:
			injected++
		}
	}
	if injected == 0 {
		violations = append(violations, fmt.Sprintf("no fault was injected in %v (%d tried)", r.Duration, len(r.Events)))
	}
	ctr, sets, err := w.finalState(ctx)
	if err != nil {
		violations = append(violations, "final reads failed on the healed cluster: "+err.Error())
	}
	for _, o := range w.reg {
		r.Registers.add(o.Outcome)
	}
	for _, o := range w.ctr {
		r.Counters.add(o.Outcome)
	}
	for _, o := range w.set {
		r.Sets.add(o.Outcome)
	}
	for _, o := range w.thr {
		r.Thrift.add(o.Outcome)
	}
	r.Scans, r.ScanErrors, r.ScanWrites = w.scans, w.scanErrs, w.scanWrite.Load()

	var info porcupine.LinearizationInfo
	if err == nil {
		thr := map[string][]string{"thriftset": sets["thriftset"]}
		delete(sets, "thriftset")
		start := time.Now()
		r.Linearizability, info = CheckRegisters(w.reg, 5*time.Minute)
		r.CheckTime = time.Since(start)
		switch r.Linearizability {
		case porcupine.Illegal:
			violations = append(violations, "register history is not linearizable (see linearizability.html)")
		case porcupine.Unknown:
			violations = append(violations, "linearizability check did not finish in 5 minutes (inconclusive)")
		}
		data := CheckCounters(w.ctr, ctr)
		data = append(data, CheckSets(w.set, sets)...)
		data = append(data, CheckSets(w.thr, thr)...)
		r.DataViolations += len(data)
		violations = append(violations, data...)
		var acked int64
		for _, o := range w.ctr {
			if o.Outcome == OK {
				acked++
			}
		}
		var final int64
		for _, v := range ctr {
			final += v
		}
		r.CountersUnknownLanded = int(final - acked)
		r.SetsUnknownLanded = landed(w.set, sets)
		r.ThriftUnknownLanded = landed(w.thr, thr)
	}
	violations = append(violations, w.scanBad...)
	violations = append(violations, w.other...)
	r.DataViolations += len(w.scanBad) + len(w.other)
	crashes := c.crashes()
	r.Crashes = len(crashes)
	for _, crash := range crashes {
		violations = append(violations, "server crashed: "+crash)
	}
	r.Violations = violations
	r.Verdict = "PASS"
	if len(violations) > 0 {
		r.Verdict = "FAIL"
	}
	writeReport(t, r, c, w, &info)
	t.Logf("report: %s\n%s", filepath.Join(r.Dir, "report.txt"), r.text())
	if len(violations) > 0 {
		t.Errorf("nemesis run %d (seed %d) found %d violations; history, logs and the seed are in %s", r.Run, r.Seed, len(violations), r.Dir)
	}
}

// landed counts unknown adds whose element is present in the final state.
func landed(h []SetOp, final map[string][]string) int {
	present := map[string]bool{}
	for k, es := range final {
		for _, e := range es {
			present[k+"/"+e] = true
		}
	}
	n := 0
	for _, o := range h {
		if o.Outcome == Unknown && present[o.Key+"/"+o.Elem] {
			n++
		}
	}
	return n
}

// writeReport writes report.txt and report.json; on failure also the
// histories, the fault schedule, the porcupine visualization and the
// containers' logs.
func writeReport(t *testing.T, r *runReport, c *cluster, w *workloads, info *porcupine.LinearizationInfo) {
	_ = os.WriteFile(filepath.Join(r.Dir, "report.txt"), []byte(r.text()), 0o644)
	if b, err := json.MarshalIndent(r, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(r.Dir, "report.json"), b, 0o644)
	}
	if r.Verdict == "PASS" {
		return
	}
	hist := map[string]any{"seed": r.Seed, "registers": w.reg, "counters": w.ctr, "sets": w.set, "thrift": w.thr}
	if b, err := json.Marshal(hist); err == nil {
		_ = os.WriteFile(filepath.Join(r.Dir, "history.json"), b, 0o644)
	}
	if info != nil && r.Linearizability == porcupine.Illegal {
		if err := porcupine.VisualizePath(RegisterModel, *info, filepath.Join(r.Dir, "linearizability.html")); err != nil {
			t.Logf("porcupine visualization: %v", err)
		}
	}
	// Error messages of failed and unknown operations, most useful first.
	var errs []string
	for _, o := range w.reg {
		if o.Err != "" {
			errs = append(errs, o.Kind+": "+o.Err)
		}
	}
	sort.Strings(errs)
	_ = os.WriteFile(filepath.Join(r.Dir, "errors.txt"), []byte(errorSummary(errs, 50)+"\n"), 0o644)
	c.logs(r.Dir)
}
