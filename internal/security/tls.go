package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config names the files of one process's identity and what it accepts
// from peers: the `security` section of the configuration file, or the
// --tls-ca, --tls-cert, --tls-key and --cert-allowed-cn flags.
type Config struct {
	CAFile   string `mapstructure:"ca"`
	CertFile string `mapstructure:"cert"`
	KeyFile  string `mapstructure:"key"`
	// AllowedCNs, when set, lists the common names a peer's node
	// certificate (one usable for server authentication) may carry.
	AllowedCNs []string `mapstructure:"cert-allowed-cn"`
	// ReloadInterval is how often, at most, the files are checked for
	// changes (on a handshake, never in the background). 0: one second.
	ReloadInterval time.Duration `mapstructure:"-"`
}

// Enabled reports whether any TLS file is configured.
func (c Config) Enabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// Validate names a missing file setting.
func (c Config) Validate() error {
	switch {
	case c.CAFile == "":
		return errors.New("tls: --tls-ca is required with --tls-cert and --tls-key")
	case c.CertFile == "":
		return errors.New("tls: --tls-cert is required with --tls-ca")
	case c.KeyFile == "":
		return errors.New("tls: --tls-key is required with --tls-cert")
	}
	return nil
}

// Reloader serves TLS configurations from a Config's files and reloads
// them when they change. A reload that fails (a half-copied file, a key
// that does not match) keeps the previous identity and is reported by
// LastError; the next handshake after the files are fixed picks them up.
type Reloader struct {
	cfg       Config
	current   atomic.Pointer[identity]
	lastCheck atomic.Int64 // unix nanos
	mu        sync.Mutex   // serializes reloads
	lastErr   atomic.Pointer[error]
}

type identity struct {
	cert  tls.Certificate
	pool  *x509.CertPool
	stamp [3]fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewReloader loads cfg's files once; an error here is fatal for a
// process starting up (it would have nothing to serve with).
func NewReloader(cfg Config) (*Reloader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = time.Second
	}
	r := &Reloader{cfg: cfg}
	id, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current.Store(id)
	r.lastCheck.Store(time.Now().UnixNano())
	return r, nil
}

// LastError is the error of the most recent failed reload, nil once a
// reload succeeds.
func (r *Reloader) LastError() error {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (r *Reloader) stamps() ([3]fileStamp, error) {
	var out [3]fileStamp
	for i, p := range []string{r.cfg.CAFile, r.cfg.CertFile, r.cfg.KeyFile} {
		fi, err := os.Stat(p)
		if err != nil {
			return out, err
		}
		out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

func (r *Reloader) load() (*identity, error) {
	stamp, err := r.stamps()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pair, err := readPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(r.cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", r.cfg.CAFile)
	}
	return &identity{cert: pair, pool: pool, stamp: stamp}, nil
}

// get returns the current identity, reloading it first when the files
// changed and the last check is older than the reload interval.
func (r *Reloader) get() *identity {
	now := time.Now().UnixNano()
	last := r.lastCheck.Load()
	if now-last < int64(r.cfg.ReloadInterval) || !r.lastCheck.CompareAndSwap(last, now) {
		return r.current.Load()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.current.Load()
	stamp, err := r.stamps()
	if err == nil && stamp == cur.stamp {
		return cur
	}
	id, err := r.load()
	if err != nil {
		r.lastErr.Store(&err)
		return cur
	}
	r.lastErr.Store(nil)
	r.current.Store(id)
	return id
}

// ServerTLS is the configuration of a server. requireClientCert demands a
// client certificate (mutual TLS: every gRPC port); without it a client
// may instead authenticate with a password (the Thrift and SQL ports).
//
// nextProtos are the ALPN protocols offered ("h2" for gRPC, "h2" and
// "http/1.1" for HTTP); the per-handshake configuration carries them too,
// as ALPN is negotiated from it.
func (r *Reloader) ServerTLS(requireClientCert bool, nextProtos ...string) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClientCert {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			id := r.get()
			return &tls.Config{
				MinVersion:       tls.VersionTLS12,
				NextProtos:       nextProtos,
				Certificates:     []tls.Certificate{id.cert},
				ClientCAs:        id.pool,
				ClientAuth:       auth,
				VerifyConnection: r.checkAllowedCN,
			}, nil
		},
	}
}

// ClientTLS is the configuration of a client of serverName (a host name or
// address in the server's certificate). The CA is taken from the current
// files on every handshake, so a rotated CA needs no restart on either
// side; chain and name are verified in VerifyConnection for that reason.
// The name checked is serverName itself: the connection state's
// ServerName is the SNI sent, which is empty for an IP address.
func (r *Reloader) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// Verification is done below against the current CA, not skipped.
		InsecureSkipVerify: true, //nolint:gosec
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := r.get().cert
			return &c, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the server sent no certificate")
			}
			opts := x509.VerifyOptions{
				Roots:         r.get().pool,
				DNSName:       serverName,
				Intermediates: x509.NewCertPool(),
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("tls: server certificate: %w", err)
			}
			return r.checkAllowedCN(cs)
		},
	}
}

// checkAllowedCN refuses a peer's node certificate whose CN is not allowed.
func (r *Reloader) checkAllowedCN(cs tls.ConnectionState) error {
	if len(r.cfg.AllowedCNs) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	if !IsNodeCert(leaf) || slices.Contains(r.cfg.AllowedCNs, leaf.Subject.CommonName) {
		return nil
	}
	return fmt.Errorf("tls: node certificate %q is not in --cert-allowed-cn %v", leaf.Subject.CommonName, r.cfg.AllowedCNs)
}

// IsNodeCert reports whether c is a node certificate: one that may
// authenticate a server.
func IsNodeCert(c *x509.Certificate) bool {
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
}

// readPair loads a certificate and its key, with errors naming the files.
func readPair(certFile, keyFile string) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("tls: %s: %w", certFile, err)
		}
	}
	return pair, nil
}
