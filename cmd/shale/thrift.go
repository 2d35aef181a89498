package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
)

func init() { subcommands = append(subcommands, newThriftCommand) }

// newThriftCommand runs the HBase Thrift2-compatible gateway.
func newThriftCommand() *cobra.Command {
	var (
		pd                  string
		addr                string
		thrift1Addr         string
		framed, compact     bool
		scannerIdle         time.Duration
		maxScanners         int
		maxMessage          int32
		timeout, reqTimeout time.Duration
		httpAddr            string
	)
	cmd := &cobra.Command{
		Use:   "thrift",
		Short: "Serve Shale tables over the HBase Thrift2 protocol (THBaseService), and Thrift1 (Hbase)",
		Long: `Serve Shale tables to HBase Thrift2 clients: the gateway speaks the core of
HBase's THBaseService (proto/hbase.thrift), so an HBase Thrift2 client works
by pointing it at this address. Like HBase it serves the binary protocol over
a buffered transport by default; --framed and --compact select the framed
transport and the compact protocol. Timestamps on the wire are milliseconds
(HBase's), stored as Shale microseconds. --thrift1-addr also serves HBase's
Thrift1 service Hbase (proto/hbase1.thrift; happybase speaks it) on its own
port, as HBase runs its thrift and thrift2 servers apart; it shares the
transport, protocol, TLS, authorization and limits. Both accept HBase's filter
language in filter strings (kvclient/thriftgw/filterlang).`,
		Example: `  shale thrift --pd 127.0.0.1:2379 --addr 0.0.0.0:9090 \
    --tls-ca certs/ca.crt --tls-cert certs/node.crt --tls-key certs/node.key
  shale thrift --pd 127.0.0.1:2379 --insecure
  shale thrift --pd 127.0.0.1:2379 --insecure --thrift1-addr 127.0.0.1:9091
  shale thrift --pd 10.0.0.1:2379,10.0.0.2:2379 --framed --compact`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := normalizeThriftAddr(addr)
			if err != nil {
				return err
			}
			if thrift1Addr != "" {
				if _, _, err := net.SplitHostPort(thrift1Addr); err != nil {
					return errors.New("--thrift1-addr: want HOST:PORT, got " + strconv.Quote(thrift1Addr))
				}
			}
			tls, err := serverTLS(cmd, "shale thrift")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			octx, cancel := context.WithTimeout(ctx, timeout)
			reg := metrics.NewRegistry()
			c, err := kvclient.Open(octx, kvclient.Options{PD: strings.Split(pd, ","), TLS: tls, Registry: reg})
			cancel()
			if err != nil {
				return err
			}
			defer c.Close()
			az, stopAuthz, err := gatewayAuthorizer(ctx, c, tls != nil)
			if err != nil {
				return err
			}
			defer stopAuthz()
			srv, err := thriftgw.Listen(thriftgw.Options{
				Client: c, Addr: listen, Thrift1Addr: thrift1Addr, Framed: framed, Compact: compact,
				ScannerIdleTimeout: scannerIdle, MaxScanners: maxScanners,
				MaxMessageSize: maxMessage, RequestTimeout: reqTimeout, TLS: tls,
				HTTPAddr: httpAddr, Registry: reg, Authz: az,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shale thrift gateway listening on %s (transport %s, protocol %s, %s)\n",
				srv.Addr(), map[bool]string{false: "buffered", true: "framed"}[framed], map[bool]string{false: "binary", true: "compact"}[compact],
				map[bool]string{false: "TLS with client certificates", true: "INSECURE: no TLS"}[tls == nil])
			if a := srv.Thrift1Addr(); a != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "shale thrift: HBase Thrift1 (service Hbase) listening on %s\n", a)
			}
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pd, "pd", "127.0.0.1:2379", "placement driver client addresses HOST:PORT,...")
	f.StringVar(&addr, "addr", "127.0.0.1:"+strconv.Itoa(thriftgw.DefaultPort), "address to serve Thrift on, HOST:PORT (port defaults to 9090; 0.0.0.0:9090 for every interface)")
	f.StringVar(&thrift1Addr, "thrift1-addr", "", `also serve HBase's Thrift1 service Hbase (happybase) here, HOST:PORT, e.g. 127.0.0.1:9091 ("" disables)`)
	f.StringVar(&httpAddr, "http-addr", "127.0.0.1:9095", `HTTP address for /healthz, /metrics and /debug/pprof/ ("" disables)`)
	f.BoolVar(&framed, "framed", false, "use the framed transport (default: buffered, as HBase)")
	f.BoolVar(&compact, "compact", false, "use the compact protocol (default: binary, as HBase)")
	f.DurationVar(&scannerIdle, "scanner-idle-timeout", 60*time.Second, "close scanners idle for this long")
	f.IntVar(&maxScanners, "max-scanners", 1000, "most scanners open at once on one client connection")
	f.Int32Var(&maxMessage, "max-message-size", 64<<20, "largest request (message, frame, string or container) accepted, in bytes")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up connecting to the cluster after this long")
	f.DurationVar(&reqTimeout, "request-timeout", 30*time.Second, "bound on one request to the cluster")
	addServerTLSFlags(f)
	return cmd
}

// normalizeThriftAddr accepts HOST:PORT, HOST or :PORT; a missing port is
// 9090, a missing address 127.0.0.1.
func normalizeThriftAddr(a string) (string, error) {
	if a == "" {
		return "127.0.0.1:" + strconv.Itoa(thriftgw.DefaultPort), nil
	}
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a, nil
	}
	if strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "[") { // bare IPv6
		return net.JoinHostPort(a, strconv.Itoa(thriftgw.DefaultPort)), nil
	}
	if strings.Contains(a, ":") {
		return "", errors.New("--addr: want HOST:PORT, got " + strconv.Quote(a))
	}
	return net.JoinHostPort(a, strconv.Itoa(thriftgw.DefaultPort)), nil
}

// gatewayAuthorizer returns the gateway's authorizer: with TLS every call
// acts as its client certificate's user, checked against users and grants
// that a cache keeps fresh from PD (docs/security.md); without TLS
// (--insecure) none. stop ends the cache's refreshing.
func gatewayAuthorizer(ctx context.Context, c *kvclient.Client, secure bool) (*authz.Authorizer, func(), error) {
	if !secure {
		return nil, func() {}, nil
	}
	cache, err := authz.NewCache(c, authz.CacheOptions{})
	if err != nil {
		return nil, nil, err
	}
	stopper := stop.New()
	if err := cache.Run(ctx, stopper); err != nil {
		return nil, nil, err
	}
	az, err := authz.New(authz.Options{Mode: authz.Secure, Policies: cache})
	if err != nil {
		_ = stopper.Stop(context.Background())
		return nil, nil, err
	}
	return az, func() { _ = stopper.Stop(context.Background()) }, nil
}
