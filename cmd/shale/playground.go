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

	"github.com/shaledb/shale/tabletserver/node"
)

func init() { subcommands = append(subcommands, newPlaygroundCommand) }

// newPlaygroundCommand starts a local cluster of real tablet servers in this
// process (the same node.Run the `shale tablet` command uses). Until the
// placement driver exists the stores share one statically bootstrapped
// tablet holding the raw key/value table.
func newPlaygroundCommand() *cobra.Command {
	var (
		stores   int
		dataDir  string
		basePort int
	)
	cmd := &cobra.Command{
		Use:   "playground",
		Short: "Start a local cluster on 127.0.0.1 and print its endpoints",
		Long: `Start a local cluster of tablet servers on 127.0.0.1, wait until it serves,
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
			grpcAddrs, httpAddrs, err := playgroundAddrs(stores, basePort)
			if err != nil {
				return err
			}
			peers := map[uint64]string{}
			for i := range stores {
				peers[uint64(i+1)] = grpcAddrs[i]
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			g, gctx := errgroup.WithContext(ctx)
			for i := range stores {
				o := node.Options{
					StoreID:   uint64(i + 1),
					DataDir:   filepath.Join(dir, fmt.Sprintf("store-%d", i+1)),
					Addr:      grpcAddrs[i],
					HTTPAddr:  httpAddrs[i],
					Peers:     peers,
					Bootstrap: true,
				}
				g.Go(func() error { return node.Run(gctx, o) })
			}
			if err := waitHealthy(gctx, httpAddrs); err != nil {
				cancel()
				_ = g.Wait()
				return err
			}
			out := cmd.OutOrStdout()
			for i := range stores {
				fmt.Fprintf(out, "tablet: %s\n", grpcAddrs[i])
				fmt.Fprintf(out, "http: http://%s/metrics\n", httpAddrs[i])
			}
			fmt.Fprintf(out, "data: %s\n\n", dir)
			p := node.FormatPeers(peers)
			fmt.Fprintf(out, "Try it from another terminal:\n")
			fmt.Fprintf(out, "  bin/shale tablet-debug --stores %s put hello world\n", p)
			fmt.Fprintf(out, "  bin/shale tablet-debug --stores %s get hello\n", p)
			fmt.Fprintf(out, "  bin/shale tablet-debug --stores %s scan\n", p)
			fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
			return g.Wait()
		},
	}
	cmd.Flags().IntVar(&stores, "stores", 3, "number of tablet servers")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "keep data here (default: a temporary directory removed on exit)")
	cmd.Flags().IntVar(&basePort, "base-port", 0, "first port to use (gRPC on base+i, HTTP on base+100+i); 0 picks free ports")
	return cmd
}

func playgroundAddrs(n, base int) (grpcAddrs, httpAddrs []string, err error) {
	for i := range n {
		if base > 0 {
			grpcAddrs = append(grpcAddrs, fmt.Sprintf("127.0.0.1:%d", base+i))
			httpAddrs = append(httpAddrs, fmt.Sprintf("127.0.0.1:%d", base+100+i))
			continue
		}
		for _, list := range []*[]string{&grpcAddrs, &httpAddrs} {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			*list = append(*list, l.Addr().String())
			l.Close()
		}
	}
	return grpcAddrs, httpAddrs, nil
}

// waitHealthy polls every store's /healthz until all answer 200.
func waitHealthy(ctx context.Context, httpAddrs []string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range httpAddrs {
		for {
			resp, err := http.Get("http://" + a + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("store at %s did not become healthy within 30s", a)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
