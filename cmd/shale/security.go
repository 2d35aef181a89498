package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shaledb/shale/internal/security"
)

// The TLS flags every process shares, and the keys of the config file's
// `security` section they map to (env SHALE_SECURITY_<KEY>):
//
//	security:
//	  ca: certs/ca.crt
//	  cert: certs/node.crt
//	  key: certs/node.key
//	  cert-allowed-cn: [node]
//	  insecure: false
var securityKeys = []struct{ key, flag string }{
	{"ca", "tls-ca"},
	{"cert", "tls-cert"},
	{"key", "tls-key"},
	{"cert-allowed-cn", "cert-allowed-cn"},
	{"insecure", "insecure"},
}

// isSecurityFlag reports whether name is one of the flags above, which
// a section's settings hold too but securitySettings reads.
func isSecurityFlag(name string) bool {
	for _, k := range securityKeys {
		if k.flag == name {
			return true
		}
	}
	return false
}

// addClientTLSFlags registers the flags a client command (kv, ctl, sql,
// ...) connects with: a client certificate, or none for an insecure
// cluster.
func addClientTLSFlags(fs *pflag.FlagSet) {
	fs.String("tls-ca", "", "CA certificate to verify the cluster with (security.ca in --config)")
	fs.String("tls-cert", "", "this client's certificate, e.g. certs/client.USER.crt (security.cert)")
	fs.String("tls-key", "", "its key (security.key)")
	fs.StringSlice("cert-allowed-cn", nil, "accept only servers whose node certificate has one of these common names (security.cert-allowed-cn)")
}

// addServerTLSFlags registers the flags of a server process: its node
// certificate, or --insecure on purpose.
func addServerTLSFlags(fs *pflag.FlagSet) {
	addClientTLSFlags(fs)
	fs.Lookup("tls-cert").Usage = "this node's certificate, e.g. from 'shale cert create-node' (security.cert in --config)"
	fs.Lookup("tls-ca").Usage = "CA certificate that signs every node and client of the cluster (security.ca in --config)"
	fs.Lookup("cert-allowed-cn").Usage = "accept only node certificates with one of these common names (security.cert-allowed-cn)"
	fs.Bool("insecure", false, "run without TLS: anyone who can reach a port can do anything (tests and playgrounds only; security.insecure)")
}

// securitySettings resolves the security section: flag, then environment
// (SHALE_SECURITY_CA, ...), then the --config file's security section.
func securitySettings(cmd *cobra.Command) (security.Config, bool, error) {
	v := newViper()
	if err := readConfigFile(cmd, v); err != nil {
		return security.Config{}, false, err
	}
	for _, k := range securityKeys {
		if f := cmd.Flag(k.flag); f != nil {
			if err := v.BindPFlag("security."+k.key, f); err != nil {
				return security.Config{}, false, err
			}
		}
		if err := v.BindEnv("security." + k.key); err != nil {
			return security.Config{}, false, err
		}
	}
	if raw := v.Get("security"); raw != nil {
		if _, ok := raw.(map[string]any); !ok {
			return security.Config{}, false, fmt.Errorf("config: %s: \"security\" must be a table of settings, not %T", v.ConfigFileUsed(), raw)
		}
	}
	c := security.Config{
		CAFile:     v.GetString("security.ca"),
		CertFile:   v.GetString("security.cert"),
		KeyFile:    v.GetString("security.key"),
		AllowedCNs: v.GetStringSlice("security.cert-allowed-cn"),
	}
	return c, v.GetBool("security.insecure"), nil
}

// serverTLS is the identity of a server process named process (nil with
// --insecure); it refuses to start a server without certificates unless
// --insecure is given.
func serverTLS(cmd *cobra.Command, process string) (*security.Reloader, error) {
	c, insecure, err := securitySettings(cmd)
	if err != nil {
		return nil, err
	}
	return security.ForServer(process, c, insecure)
}

// clientTLS is the identity a client command connects with (nil without
// certificates: plaintext, for an insecure cluster).
func clientTLS(cmd *cobra.Command) (*security.Reloader, error) {
	c, _, err := securitySettings(cmd)
	if err != nil {
		return nil, err
	}
	return security.ForClient(c)
}
