package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/shaledb/shale/internal/freeport"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/sql-lite/mysqlwire"
	"github.com/shaledb/shale/sql-lite/shell"
	"github.com/shaledb/shale/tabletserver/node"
)

func init() { subcommands = append(subcommands, newPlaygroundCommand) }

// newPlaygroundCommand starts a local cluster in this process: one or three
// placement driver members, N tablet servers and the Thrift gateway, the
// same placementdriver.Run, node.Run and thriftgw server the `shale pd`,
// `shale tablet` and `shale thrift` commands use.
func newPlaygroundCommand() *cobra.Command {
	var (
		stores    int
		pdMembers int
		dataDir   string
		basePort  int
		sqlShell  bool
		mysqlAddr string
		secure    bool
		admission string
		sf        sqlFlags
	)
	cmd := &cobra.Command{
		Use:   "playground",
		Short: "Start a local cluster on 127.0.0.1 and print its endpoints",
		Long: `Start a local cluster on 127.0.0.1: a placement driver of one or three
members (--pd-members), tablet servers (--stores) and the HBase Thrift2
gateway, all in this process and running the same code as 'shale pd',
'shale tablet' and 'shale thrift'. It waits until the cluster serves, then
prints one line per endpoint:

  pd: HOST:PORT[,HOST:PORT,HOST:PORT]   (give it to --pd of shale kv/table/ctl)
  thrift: HOST:PORT                     (HBase Thrift2; thrift1: for Thrift1)
  mysql: HOST:PORT                      (the SQL layer over the MySQL protocol)
  http: URL                             (the PD leader's JSON API)
  console: URL                          (the PD leader's web console)

Without --data-dir the data lives in a temporary directory removed on exit;
with one it is kept and reused (start it again with the same --pd-members).
Stop with Ctrl-C or SIGTERM.

With --sql it opens the SQL shell (shale sql) on the cluster instead, and
stops the cluster when the shell exits (Ctrl-D or \q; Ctrl-C only cancels
a statement). The servers then log to playground.log in the data
directory. --demo loads the sample tables customers and orders first.

The playground runs without TLS (--insecure) unless --secure is given:
then it creates a CA, a node certificate for 127.0.0.1 and a client
certificate for user root in DATA_DIR/certs (kept and reused with
--data-dir), serves every port with mutual TLS, and prints the flags
clients connect with.`,
		Example: `  shale playground
  shale playground --sql --demo
  shale playground --pd-members 3 --stores 3 --data-dir /tmp/shale-play
  shale playground --secure --data-dir /tmp/shale-play`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stores < 1 {
				return fmt.Errorf("--stores must be at least 1, got %d", stores)
			}
			if pdMembers != 1 && pdMembers != 3 {
				return fmt.Errorf("--pd-members must be 1 or 3, got %d (a placement driver of 2 members stops when either fails; more than 3 is not worth it on one machine)", pdMembers)
			}
			if basePort < 0 || basePort > 65535 {
				return fmt.Errorf("--base-port must be a port number (0 picks free ports), got %d", basePort)
			}
			dir := dataDir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "shale-playground-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			} else if err := checkPlaygroundDir(dir, pdMembers); err != nil {
				return err
			}
			l, err := newPlaygroundLayout(pdMembers, stores, basePort)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("mysql-addr") {
				l.mysql = mysqlAddr // "" turns the MySQL endpoint off
			}
			if l.admissionOff, err = admissionOff(admission); err != nil {
				return err
			}
			if secure {
				if l.tls, err = playgroundCerts(filepath.Join(dir, "certs")); err != nil {
					return err
				}
			}
			if !sqlShell {
				if sf.demo {
					return errors.New("--demo loads the sample tables through the SQL shell: give --sql too")
				}
				return runPlayground(cmd, dir, l, nil)
			}
			o, err := sf.options(cmd, nil)
			if err != nil {
				return err
			}
			err = runPlayground(cmd, dir, l, &o)
			if errors.Is(err, shell.ErrStatementFailed) {
				cmd.SilenceErrors = true // the shell printed it
			}
			return err
		},
	}
	cmd.Flags().IntVar(&stores, "stores", 3, "number of tablet servers")
	cmd.Flags().IntVar(&pdMembers, "pd-members", 1, "placement driver members: 1 or 3")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "keep data here (default: a temporary directory removed on exit)")
	cmd.Flags().BoolVar(&sqlShell, "sql", false, "open the SQL shell on the cluster; the cluster stops when it exits")
	cmd.Flags().BoolVar(&sf.demo, "demo", false, "with --sql: first create and fill the sample tables customers and orders")
	cmd.Flags().StringVar(&sf.history, "history", shell.DefaultHistoryFile(), "with --sql: the shell's history file")
	cmd.Flags().StringVar(&mysqlAddr, "mysql-addr", "", "serve SQL over the MySQL protocol here (user root, no password; e.g. 127.0.0.1:3306); default: a free port (or the next --base-port one); \"\" for none")
	cmd.Flags().BoolVar(&secure, "secure", false, "serve every port with mutual TLS, with a CA and certificates created in DATA_DIR/certs (default: no TLS)")
	cmd.Flags().StringVar(&admission, "admission", "on", admissionUsage)
	cmd.Flags().IntVar(&basePort, "base-port", 0, "use consecutive ports from this one (3 per PD member, 2 per tablet server, then Thrift2, Thrift1 and MySQL); 0 picks free ports")
	return cmd
}

// startPlaygroundMySQL serves the MySQL protocol on addr (if set) with
// the playground's account (root, no password) until ctx ends, and
// returns the line to print about it. A busy port is reported, not
// fatal: the rest of the playground works without it.
func startPlaygroundMySQL(ctx context.Context, g *errgroup.Group, kv *kvclient.Client, addr string, sec *playgroundTLS) string {
	if addr == "" {
		return ""
	}
	cfg := mysqlwire.Config{User: "root", Password: ""}
	if sec != nil {
		cfg.TLS = sec.node
	}
	srv, err := mysqlwire.New(kv, cfg)
	if err != nil {
		return "mysql: not started: " + err.Error()
	}
	bound, err := srv.Listen(addr)
	if err != nil {
		return "mysql: not started: " + err.Error()
	}
	g.Go(func() error { <-ctx.Done(); return srv.Close() })
	host, port, _ := net.SplitHostPort(bound.String())
	if sec != nil {
		return fmt.Sprintf("mysql: %s   (mysql -h %s -P %s -u root --ssl-mode=VERIFY_CA --ssl-ca %s)", bound, host, port, filepath.Join(sec.dir, security.CAFile))
	}
	return fmt.Sprintf("mysql: %s   (mysql -h %s -P %s -u root)", bound, host, port)
}

// playgroundTLS is a secure playground's certificates.
type playgroundTLS struct {
	dir    string
	node   *security.Reloader // every server's identity
	client *security.Reloader // user root: the gateway, the shell, the waiters
}

// playgroundCerts creates (or reuses) a CA, a node certificate for
// 127.0.0.1 and localhost, and a client certificate for root in dir.
func playgroundCerts(dir string) (*playgroundTLS, error) {
	o := security.CertOptions{Dir: dir}
	if _, err := os.Stat(filepath.Join(dir, security.CAFile)); err != nil {
		if err := security.CreateCA(o); err != nil {
			return nil, err
		}
		if err := security.CreateNode(o, "127.0.0.1", "localhost"); err != nil {
			return nil, err
		}
		if err := security.CreateClient(o, "root"); err != nil {
			return nil, err
		}
	}
	ca := filepath.Join(dir, security.CAFile)
	node, err := security.NewReloader(security.Config{CAFile: ca, CertFile: filepath.Join(dir, security.NodeCert), KeyFile: filepath.Join(dir, security.NodeKey)})
	if err != nil {
		return nil, err
	}
	client, err := security.NewReloader(security.Config{CAFile: ca, CertFile: filepath.Join(dir, security.ClientCertFile("root")), KeyFile: filepath.Join(dir, security.ClientKeyFile("root"))})
	if err != nil {
		return nil, err
	}
	return &playgroundTLS{dir: dir, node: node, client: client}, nil
}

func (p *playgroundTLS) nodeTLS() *security.Reloader {
	if p == nil {
		return nil
	}
	return p.node
}

func (p *playgroundTLS) clientTLS() *security.Reloader {
	if p == nil {
		return nil
	}
	return p.client
}

// clientFlags are the TLS flags of a client command ("" when insecure).
func (p *playgroundTLS) clientFlags() string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" --tls-ca %s --tls-cert %s --tls-key %s", filepath.Join(p.dir, security.CAFile),
		filepath.Join(p.dir, security.ClientCertFile("root")), filepath.Join(p.dir, security.ClientKeyFile("root")))
}

// httpClient reaches the status ports: https with root's certificate on
// a secure playground.
func (p *playgroundTLS) httpClient(timeout time.Duration) (*http.Client, string) {
	if p == nil {
		return &http.Client{Timeout: timeout}, "http://"
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: p.client.ClientTLS("127.0.0.1")}}, "https://"
}

// playgroundLayout is the playground's addresses.
type playgroundLayout struct {
	mysql  string                    // MySQL protocol address ("" for none)
	tls    *playgroundTLS            // nil: insecure
	pd     []placementdriver.Options // Name, ClientAddr, PeerAddr, HTTPAddr
	stores [][2]string               // gRPC, HTTP
	thrift string
	// thrift1 is the HBase Thrift1 listener (happybase and other Thrift1
	// clients), beside the Thrift2 one as HBase runs them.
	thrift1 string
	// admissionOff runs the tablet servers with --admission=off.
	admissionOff bool
}

func newPlaygroundLayout(members, stores, basePort int) (playgroundLayout, error) {
	addrs, err := playgroundAddrs(3*members+2*stores+3, basePort)
	if err != nil {
		return playgroundLayout{}, err
	}
	var l playgroundLayout
	for i := range members {
		l.pd = append(l.pd, placementdriver.Options{
			Name:       fmt.Sprintf("pd%d", i+1),
			ClientAddr: addrs[3*i], PeerAddr: addrs[3*i+1], HTTPAddr: addrs[3*i+2],
			// PD bootstraps once MaxReplicas stores joined: with fewer
			// than three stores, tablets have as many replicas as stores.
			Schedule: placementdriver.Config{MaxReplicas: min(3, stores)},
		})
	}
	next := 3 * members
	for range stores {
		l.stores = append(l.stores, [2]string{addrs[next], addrs[next+1]})
		next += 2
	}
	l.thrift = addrs[next]
	l.thrift1 = addrs[next+1]
	l.mysql = addrs[next+2]
	return l, nil
}

// pdClientAddrs is the PD client address list, as --pd takes it.
func (l playgroundLayout) pdClientAddrs() []string {
	var out []string
	for _, m := range l.pd {
		out = append(out, m.ClientAddr)
	}
	return out
}

// runPlayground runs the cluster until the command's context ends or, with
// sql, until the SQL shell exits.
func runPlayground(cmd *cobra.Command, dir string, l playgroundLayout, sql *shell.Options) error {
	parent := cmd.Context()
	if sql != nil {
		// Ctrl-C (which ends cmd.Context()) cancels a statement in the
		// shell; the cluster lives until the shell exits.
		parent = context.WithoutCancel(parent)
		logPath := filepath.Join(dir, "playground.log")
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logFile.Close()
		level, err := resolveLogLevel(cmd)
		if err != nil {
			return err
		}
		prev := slog.Default()
		slog.SetDefault(newLoggerTo(logFile, level))
		defer slog.SetDefault(prev)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	peers, clients := map[string]string{}, map[string]string{}
	for _, m := range l.pd {
		peers[m.Name], clients[m.Name] = m.PeerAddr, m.ClientAddr
	}
	var healthz []string
	for _, m := range l.pd {
		m.DataDir = filepath.Join(dir, m.Name)
		m.InitialCluster, m.ClientAddrs = maps.Clone(peers), maps.Clone(clients)
		m.TLS = l.tls.nodeTLS()
		healthz = append(healthz, m.HTTPAddr)
		g.Go(func() error { return placementdriver.Run(gctx, m) })
	}
	pd := l.pdClientAddrs()
	for i, s := range l.stores {
		o := node.Options{
			DataDir:           filepath.Join(dir, fmt.Sprintf("store-%d", i+1)),
			Addr:              s[0],
			HTTPAddr:          s[1],
			PD:                pd,
			HeartbeatInterval: time.Second,
			TLS:               l.tls.nodeTLS(),
		}
		o.Store.Admission.Disabled = l.admissionOff
		o.Store.StoresInProcess = len(l.stores) // one CPU, one scheduler for all of them
		healthz = append(healthz, o.HTTPAddr)
		g.Go(func() error { return node.Run(gctx, o) })
	}
	// fail stops what started and prefers the error of the server that
	// failed to the waiter's "context canceled".
	fail := func(err error) error {
		cancel()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			return werr
		}
		return err
	}
	if err := waitServing(gctx, pd, healthz, l.tls); err != nil {
		return fail(err)
	}
	// The Thrift gateway (HBase Thrift2 protocol).
	kv, err := kvclient.Open(gctx, kvclient.Options{PD: pd, TLS: l.tls.clientTLS()})
	if err != nil {
		return fail(err)
	}
	defer kv.Close()
	gw, err := l.startGateway(gctx, pd)
	if err != nil {
		return fail(err)
	}
	defer gw.close()
	g.Go(func() error { return gw.srv.Run(gctx) })
	mysqlLine := startPlaygroundMySQL(gctx, g, kv, l.mysql, l.tls)

	out := cmd.OutOrStdout()
	pdFlag := strings.Join(pd, ",") + l.tls.clientFlags()
	if l.tls == nil {
		fmt.Fprintf(out, "INSECURE: no TLS, no authentication: anyone who can reach these ports (127.0.0.1) can read and write everything.\n"+
			"Run 'shale playground --secure' for mutual TLS (docs/security.md).\n")
	} else {
		fmt.Fprintf(out, "secure: mutual TLS on every port; certificates in %s (client: user root)\n", l.tls.dir)
	}
	fmt.Fprintf(out, "pd: %s\n", strings.Join(pd, ","))
	fmt.Fprintf(out, "thrift: %s\n", l.thrift)
	fmt.Fprintf(out, "thrift1: %s\n", l.thrift1)
	_, scheme := l.tls.httpClient(0)
	leaderHTTP := pdLeaderHTTP(gctx, l.pd, l.tls)
	fmt.Fprintf(out, "http: %s%s/pd/api/v1/stores\n", scheme, leaderHTTP)
	fmt.Fprintf(out, "console: %s%s/console/\n", scheme, leaderHTTP)
	for _, s := range l.stores {
		fmt.Fprintf(out, "tablet: %s (metrics %s%s/metrics)\n", s[0], scheme, s[1])
	}
	if mysqlLine != "" {
		fmt.Fprintln(out, mysqlLine)
	}
	fmt.Fprintf(out, "data: %s\n\n", dir)
	if sql != nil {
		fmt.Fprintf(out, "Server logs: %s. Other clients: bin/shale sql --pd %s\n\n", filepath.Join(dir, "playground.log"), pdFlag)
		o := *sql
		o.PD = pd
		o.TLS = l.tls.clientTLS()
		err := shell.Main(cmd.Context(), o)
		cancel()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) && err == nil {
			err = werr
		}
		return err
	}
	fmt.Fprintf(out, "Try it from another terminal:\n")
	fmt.Fprintf(out, "  bin/shale kv --pd %s put hello world\n", pdFlag)
	fmt.Fprintf(out, "  bin/shale kv --pd %s get hello\n", pdFlag)
	fmt.Fprintf(out, "  bin/shale kv --pd %s scan\n", pdFlag)
	fmt.Fprintf(out, "  bin/shale sql --pd %s --demo\n", pdFlag)
	fmt.Fprintf(out, "  bin/shale table --pd %s ls\n", pdFlag)
	fmt.Fprintf(out, "  bin/shale ctl --pd %s stores\n", pdFlag)
	fmt.Fprintf(out, "  bin/shale ctl --pd %s tablets\n", pdFlag)
	if len(l.pd) > 1 {
		fmt.Fprintf(out, "  bin/shale ctl --pd %s members\n", pdFlag)
	}
	if l.tls != nil {
		fmt.Fprintf(out, "  curl --cacert %s --cert %s --key %s https://%s/metrics\n", filepath.Join(l.tls.dir, security.CAFile),
			filepath.Join(l.tls.dir, security.ClientCertFile("root")), filepath.Join(l.tls.dir, security.ClientKeyFile("root")), l.pd[0].HTTPAddr)
		fmt.Fprintf(out, "HBase Thrift2 clients connect to %s, Thrift1 clients (happybase) to %s, over TLS with a client certificate (binary protocol, buffered transport).\n", l.thrift, l.thrift1)
	} else {
		fmt.Fprintf(out, "HBase Thrift2 clients connect to %s, Thrift1 clients (happybase) to %s (binary protocol, buffered transport).\n", l.thrift, l.thrift1)
	}
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// checkPlaygroundDir refuses to reuse a data directory created with another
// number of PD members: the members' metadata replicas would disagree on
// who belongs to the group.
func checkPlaygroundDir(dir string, members int) error {
	had := 0
	for i := 1; i <= 3; i++ {
		if st, err := os.Stat(filepath.Join(dir, fmt.Sprintf("pd%d", i))); err == nil && st.IsDir() {
			had++
		}
	}
	if had != 0 && had != members {
		return fmt.Errorf("--data-dir %s holds a playground with %d PD member(s); start it with --pd-members %d, or use another --data-dir", dir, had, had)
	}
	return nil
}

// playgroundAddrs picks n addresses on 127.0.0.1: consecutive ports from
// base, or free ports below the ephemeral range when base is 0 (package
// freeport).
func playgroundAddrs(n, base int) ([]string, error) {
	if base > 0 && base+n-1 > 65535 {
		return nil, fmt.Errorf("--base-port %d: the playground needs %d ports, past 65535", base, n)
	}
	var out []string
	for i := range n {
		if base > 0 {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", base+i))
			continue
		}
		a, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// servingStall is how long the playground's startup may go without
// progress before it gives up. Startup has no fixed deadline: on a loaded
// machine it is slow but keeps moving, and only a stuck one is an error.
const servingStall = 60 * time.Second

// waitServing waits until every HTTP endpoint answers /healthz and the
// cluster serves reads (PD has bootstrapped the first tablet, which needs
// three stores, and elected a leader). It fails when startup stops making
// progress for servingStall.
func waitServing(ctx context.Context, pd []string, httpAddrs []string, sec *playgroundTLS) error {
	hc, scheme := sec.httpClient(5 * time.Second)
	var cl *kvclient.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	return untilStalled(ctx, servingStall, 100*time.Millisecond, func() (string, error) {
		for _, a := range httpAddrs {
			resp, err := hc.Get(scheme + a + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s", resp.Status)
				}
			}
			if err != nil {
				return "healthz " + a, fmt.Errorf("%s did not become healthy: %v", a, err)
			}
		}
		if cl == nil {
			var err error
			if cl, err = kvclient.Open(ctx, kvclient.Options{PD: pd, TLS: sec.clientTLS()}); err != nil {
				return "kvclient", err
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := cl.RawGet(rctx, []byte("playground-ready"))
		cancel()
		if err != nil {
			return "read: " + err.Error(), fmt.Errorf("the cluster did not start serving: %v", err)
		}
		return "", nil
	})
}

// untilStalled calls step every poll until it returns a nil error. step
// names the stage it reached; a new stage is progress, and when the stage
// stays the same for stall, untilStalled returns step's last error.
func untilStalled(ctx context.Context, stall, poll time.Duration, step func() (stage string, err error)) error {
	var last string
	since := time.Now()
	for {
		stage, err := step()
		if err == nil {
			return nil
		}
		if stage != last {
			last, since = stage, time.Now()
		}
		if time.Since(since) > stall {
			return fmt.Errorf("%w (no progress for %v)", err, stall)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// pdLeaderHTTP returns the HTTP address of the PD member that leads now
// (followers answer the JSON API with 503 and the leader's name), or the
// first member's if none says so.
func pdLeaderHTTP(ctx context.Context, members []placementdriver.Options, sec *playgroundTLS) string {
	if len(members) > 1 {
		hc, scheme := sec.httpClient(time.Second)
		for _, m := range members {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+m.HTTPAddr+"/pd/api/v1/health", nil)
			if err != nil {
				continue
			}
			resp, err := hc.Do(req)
			if err != nil {
				continue
			}
			var h struct {
				IsLeader bool `json:"is_leader"`
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.IsLeader {
				return m.HTTPAddr
			}
		}
	}
	return members[0].HTTPAddr
}

// playgroundGateway is the playground's Thrift gateway and what it owns.
type playgroundGateway struct {
	srv   *thriftgw.Server
	close func()
}

// startGateway starts the Thrift gateway as `shale thrift` runs it: it
// reaches the cluster with the node identity (so the stores honour the
// user it names for quotas) and, on a secure playground, authorizes every
// call as its client certificate's user against PD's users and grants.
func (l playgroundLayout) startGateway(ctx context.Context, pd []string) (*playgroundGateway, error) {
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: pd, TLS: l.tls.nodeTLS()})
	if err != nil {
		return nil, err
	}
	az, stopAuthz, err := gatewayAuthorizer(ctx, kv, l.tls != nil)
	if err != nil {
		kv.Close()
		return nil, err
	}
	srv, err := thriftgw.Listen(thriftgw.Options{Client: kv, Addr: l.thrift, Thrift1Addr: l.thrift1, TLS: l.tls.nodeTLS(), Authz: az})
	if err != nil {
		stopAuthz()
		kv.Close()
		return nil, err
	}
	return &playgroundGateway{srv: srv, close: func() { stopAuthz(); kv.Close() }}, nil
}
