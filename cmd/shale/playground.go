package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/tabletserver/node"
)

func init() { subcommands = append(subcommands, newPlaygroundCommand) }

// newPlaygroundCommand starts a local cluster in this process: one
// placement driver member and N tablet servers, the same placementdriver.Run
// and node.Run the `shale pd` and `shale tablet` commands use.
func newPlaygroundCommand() *cobra.Command {
	var (
		stores   int
		dataDir  string
		basePort int
	)
	cmd := &cobra.Command{
		Use:   "playground",
		Short: "Start a local cluster on 127.0.0.1 and print its endpoints",
		Long: `Start a local cluster (a placement driver and tablet servers) on 127.0.0.1,
wait until it serves,
and print one line per endpoint. Without --data-dir the data lives in a
temporary directory removed on exit; with one it is kept and reused.
Stop with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stores < 1 {
				return fmt.Errorf("--stores must be at least 1")
			}
			ctx := cmd.Context()
			dir := dataDir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "shale-playground-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			addrs, err := playgroundAddrs(2*stores+4, basePort)
			if err != nil {
				return err
			}
			pdClient, pdPeer, pdHTTP := addrs[0], addrs[1], addrs[2]
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error {
				return placementdriver.Run(gctx, placementdriver.Options{
					Name: "pd1", DataDir: filepath.Join(dir, "pd1"),
					ClientAddr: pdClient, PeerAddr: pdPeer, HTTPAddr: pdHTTP,
				})
			})
			var storeHTTP []string
			for i := range stores {
				o := node.Options{
					DataDir:           filepath.Join(dir, fmt.Sprintf("store-%d", i+1)),
					Addr:              addrs[3+2*i],
					HTTPAddr:          addrs[4+2*i],
					PD:                []string{pdClient},
					HeartbeatInterval: time.Second,
				}
				storeHTTP = append(storeHTTP, o.HTTPAddr)
				g.Go(func() error { return node.Run(gctx, o) })
			}
			if err := waitServing(gctx, pdClient, append([]string{pdHTTP}, storeHTTP...)); err != nil {
				cancel()
				_ = g.Wait()
				return err
			}
			// The Thrift gateway (HBase Thrift2 protocol) on the last port.
			thriftAddr := addrs[len(addrs)-1]
			kv, err := kvclient.Open(gctx, kvclient.Options{PD: []string{pdClient}})
			if err != nil {
				cancel()
				_ = g.Wait()
				return err
			}
			defer kv.Close()
			gw, err := thriftgw.Listen(thriftgw.Options{Client: kv, Addr: thriftAddr})
			if err != nil {
				cancel()
				_ = g.Wait()
				return err
			}
			g.Go(func() error { return gw.Serve() })
			g.Go(func() error { <-gctx.Done(); return gw.Close() })
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "pd: %s\n", pdClient)
			fmt.Fprintf(out, "thrift: %s\n", thriftAddr)
			fmt.Fprintf(out, "http: http://%s/pd/api/v1/stores\n", pdHTTP)
			for i := range stores {
				fmt.Fprintf(out, "tablet: %s\n", addrs[3+2*i])
			}
			fmt.Fprintf(out, "data: %s\n\n", dir)
			fmt.Fprintf(out, "Try it from another terminal:\n")
			fmt.Fprintf(out, "  bin/shale kv --pd %s put hello world\n", pdClient)
			fmt.Fprintf(out, "  bin/shale kv --pd %s get hello\n", pdClient)
			fmt.Fprintf(out, "  bin/shale kv --pd %s scan\n", pdClient)
			fmt.Fprintf(out, "  bin/shale ctl --pd %s stores\n", pdClient)
			fmt.Fprintf(out, "  bin/shale ctl --pd %s tablets\n", pdClient)
			fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
			return g.Wait()
		},
	}
	cmd.Flags().IntVar(&stores, "stores", 3, "number of tablet servers")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "keep data here (default: a temporary directory removed on exit)")
	cmd.Flags().IntVar(&basePort, "base-port", 0, "first port to use (gRPC on base+i, HTTP on base+100+i); 0 picks free ports")
	return cmd
}

// playgroundAddrs picks n addresses on 127.0.0.1: consecutive ports from
// base, or free ports when base is 0.
func playgroundAddrs(n, base int) ([]string, error) {
	var out []string
	for i := range n {
		if base > 0 {
			out = append(out, fmt.Sprintf("127.0.0.1:%d", base+i))
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out, nil
}

// waitServing waits until every HTTP endpoint answers /healthz and PD has
// bootstrapped the first tablet (it needs three stores).
func waitServing(ctx context.Context, pdAddr string, httpAddrs []string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, a := range httpAddrs {
		for {
			resp, err := http.Get("http://" + a + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not become healthy: %v", a, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: []string{pdAddr}})
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		_, _, err := cl.RawGet(ctx, []byte("playground-ready"))
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not start serving: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
