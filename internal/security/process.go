package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
)

// ErrNoCertificates is returned when a server process is started without
// certificates and without --insecure.
var ErrNoCertificates = errors.New("no TLS certificates given")

// ForServer returns the Reloader a server process (PD, tablet server,
// gateway, sql-server) serves with, or nil when it runs insecure on
// purpose. Without certificates and without insecure it refuses, saying
// how to get certificates: a server never runs in the clear by accident.
func ForServer(process string, c Config, insecure bool) (*Reloader, error) {
	switch {
	case c.Enabled() && insecure:
		return nil, fmt.Errorf("%s: --insecure and TLS certificates (--tls-ca, --tls-cert, --tls-key) contradict each other; give one or the other", process)
	case insecure:
		return nil, nil
	case !c.Enabled():
		return nil, fmt.Errorf("%s: %w. Create a CA and certificates with\n"+
			"  shale cert create-ca --certs-dir certs\n"+
			"  shale cert create-node --certs-dir certs HOST...\n"+
			"and start with --tls-ca certs/ca.crt --tls-cert certs/node.crt --tls-key certs/node.key\n"+
			"(or the security section of --config); or pass --insecure to run without TLS, for tests only (docs/security.md)",
			process, ErrNoCertificates)
	}
	return NewReloader(c)
}

// ForClient returns the Reloader a client (shale kv, ctl, sql, import, a
// Go program) connects with, or nil for plaintext when c names no files.
func ForClient(c Config) (*Reloader, error) {
	if !c.Enabled() {
		return nil, nil
	}
	return NewReloader(c)
}

// PeerCertificate is the verified leaf certificate of a peer, or nil when
// the peer sent none (or the connection is not TLS).
func PeerCertificate(verifiedChains [][]*x509.Certificate) *x509.Certificate {
	if len(verifiedChains) == 0 || len(verifiedChains[0]) == 0 {
		return nil
	}
	return verifiedChains[0][0]
}

// RequireClientCert wraps an HTTP handler served over TLS with
// ServerTLS(false): every request must carry a verified client
// certificate, except those for the paths in open (health probes, which
// load balancers and Kubernetes send without one). The request's
// r.TLS.VerifiedChains hold the caller's identity for authorization.
func RequireClientCert(h http.Handler, open ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && PeerCertificate(r.TLS.VerifiedChains) == nil && !slices.Contains(open, r.URL.Path) {
			http.Error(w, "a client certificate signed by the cluster's CA is required (docs/security.md)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CoversAddress reports whether cert is valid for the host of addr
// ("host:port", or a bare host): the binding of a store's or a PD
// member's address to the certificate it presents (docs/security.md).
func CoversAddress(cert *x509.Certificate, addr string) error {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "" {
		return fmt.Errorf("address %q has no host to bind a certificate to", addr)
	}
	return cert.VerifyHostname(host)
}

// HTTPListener serves HTTP over TLS on l with r's certificate, asking
// clients for theirs (wrap the handler with RequireClientCert); a nil r
// returns l unchanged (--insecure). Only HTTP/1.1 is offered: the status
// ports serve small documents and profiles.
func (r *Reloader) HTTPListener(l net.Listener) net.Listener {
	if r == nil {
		return l
	}
	return tls.NewListener(l, r.ServerTLS(false, "http/1.1"))
}
