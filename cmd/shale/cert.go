package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shaledb/shale/internal/security"
)

func init() { subcommands = append(subcommands, newCertCommand) }

// newCertCommand creates a CA and certificates for clusters without a PKI,
// as `cockroach cert` does (docs/security.md).
func newCertCommand() *cobra.Command {
	var (
		o    security.CertOptions
		keep bool
	)
	report := func(cmd *cobra.Command, err error, files ...string) error {
		if keep && errors.Is(err, security.ErrExists) {
			fmt.Fprintln(cmd.OutOrStdout(), "kept the existing", strings.Join(files, ", "))
			return nil
		}
		return reportCert(cmd, err, files...)
	}
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Create a CA, node and client certificates (for clusters without a PKI)",
		Long: `Create the certificates a secure Shale cluster needs, in --certs-dir:
  create-ca                 ca.crt and ca.key (keep ca.key off the servers)
  create-node HOST...       node.crt and node.key for the given names and addresses
  create-client USER        client.USER.crt and client.USER.key (the CN is the user)
Keys are ECDSA P-256; existing files are kept unless --overwrite is given.
To use an existing PKI instead, point --tls-ca, --tls-cert and --tls-key at
its files (docs/security.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.Dir, "certs-dir", "certs", "directory of the CA and the certificates")
	pf.DurationVar(&o.Lifetime, "lifetime", 0, "validity of the new certificate (default: 10 years for a CA, 5 for others; never beyond the CA's)")
	pf.BoolVar(&o.Overwrite, "overwrite", false, "replace existing files")
	pf.BoolVar(&keep, "keep", false, "succeed without writing when the files exist (for init containers that run on every start)")
	pf.StringVar(&o.CADir, "ca-dir", "", "read the CA from this directory instead of --certs-dir, and copy its ca.crt there (keeps ca.key apart)")
	node := &cobra.Command{
		Use:   "create-node HOST...",
		Short: "Create node.crt and node.key for the given host names and IP addresses",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLifetime(o.Lifetime); err != nil {
				return err
			}
			return report(cmd, security.CreateNode(o, args...), security.NodeCert, security.NodeKey)
		},
	}
	node.Flags().StringVar(&o.NodeName, "name", security.NodeCN, "the certificate's common name (to restrict nodes with --cert-allowed-cn)")
	cmd.AddCommand(&cobra.Command{
		Use:   "create-ca",
		Short: "Create ca.crt and ca.key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLifetime(o.Lifetime); err != nil {
				return err
			}
			return report(cmd, security.CreateCA(o), security.CAFile, security.CAKeyFile)
		},
	}, node, &cobra.Command{
		Use:   "create-client USER",
		Short: "Create client.USER.crt and client.USER.key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLifetime(o.Lifetime); err != nil {
				return err
			}
			return report(cmd, security.CreateClient(o, args[0]), security.ClientCertFile(args[0]), security.ClientKeyFile(args[0]))
		},
	})
	return cmd
}

func checkLifetime(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("cert: --lifetime must not be negative, got %v", d)
	}
	return nil
}

func reportCert(cmd *cobra.Command, err error, files ...string) error {
	if err != nil {
		return err
	}
	dir, _ := cmd.Flags().GetString("certs-dir")
	for _, f := range files {
		fmt.Fprintln(cmd.OutOrStdout(), "wrote", filepath.Join(dir, f))
	}
	return nil
}
