package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newHealthCommand) }

// newHealthCommand is a probe for container health checks: images built
// FROM scratch have no curl or shell, so the binary probes itself.
func newHealthCommand() *cobra.Command {
	var (
		addr    string
		tcp     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe a server's /healthz (or a TCP port); exit 0 when healthy",
		Long: `Probe a Shale server and exit 0 if it is healthy, 1 otherwise, printing
the reason. --addr HOST:PORT asks http://HOST:PORT/healthz (the --http-addr
of 'shale pd' and 'shale tablet') and wants 200; a full http:// URL is used
as given. --tcp HOST:PORT only checks that the port accepts a connection
(the Thrift gateway). Meant for Docker HEALTHCHECK and Compose health
checks, where the image has no shell or curl.`,
		Example: `  shale health --addr 127.0.0.1:2381
  shale health --addr http://10.0.0.1:20180/healthz --timeout 2s
  shale health --tcp 127.0.0.1:9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (addr == "") == (tcp == "") {
				return errors.New("health: give exactly one of --addr or --tcp")
			}
			if timeout <= 0 {
				return fmt.Errorf("health: --timeout must be positive, got %v", timeout)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if tcp != "" {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "tcp", tcp)
				if err != nil {
					return fmt.Errorf("health: %s: %w", tcp, err)
				}
				conn.Close()
				fmt.Fprintf(cmd.OutOrStdout(), "%s: accepting connections\n", tcp)
				return nil
			}
			tls, err := clientTLS(cmd)
			if err != nil {
				return err
			}
			url, scheme := addr, "http://"
			if tls != nil {
				scheme = "https://"
			}
			if !strings.Contains(url, "://") {
				url = scheme + strings.TrimSuffix(url, "/") + "/healthz"
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("health: bad --addr %q: %w", addr, err)
			}
			client := http.DefaultClient
			if tls != nil {
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: tls.ClientTLS(req.URL.Hostname())}}
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			msg := strings.TrimSpace(string(body))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("health: %s answered %s: %s", url, resp.Status, msg)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", url, msg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "HTTP address HOST:PORT (asks /healthz) or a full http:// URL")
	f.StringVar(&tcp, "tcp", "", "only check that HOST:PORT accepts a TCP connection")
	f.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
	addClientTLSFlags(f)
	return cmd
}
