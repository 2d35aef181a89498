package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/shaledb/shale/internal/atomicfile"
)

// File names in a certificates directory, as `shale cert` writes them and
// as the --certs-dir shorthand expects them.
const (
	CAFile      = "ca.crt"
	CAKeyFile   = "ca.key"
	NodeCert    = "node.crt"
	NodeKey     = "node.key"
	NodeCN      = "node"
	clientCertF = "client.%s.crt"
	clientKeyF  = "client.%s.key"
)

// ClientCertFile and ClientKeyFile name a user's certificate and key.
func ClientCertFile(user string) string { return fmt.Sprintf(clientCertF, user) }
func ClientKeyFile(user string) string  { return fmt.Sprintf(clientKeyF, user) }

// Lifetimes: a CA outlives the certificates it signs.
const (
	DefaultCALifetime   = 10 * 365 * 24 * time.Hour
	DefaultCertLifetime = 5 * 365 * 24 * time.Hour
)

// ErrExists is returned when a file would be overwritten without Overwrite.
var ErrExists = errors.New("file exists")

// CertOptions are the settings shared by the Create functions.
type CertOptions struct {
	Dir       string        // where the files are written (and the CA read from)
	Lifetime  time.Duration // 0: DefaultCALifetime for a CA, else DefaultCertLifetime
	Overwrite bool          // replace existing files instead of failing
	// NodeName is a node certificate's CN (default NodeCN); name nodes
	// apart to restrict them with --cert-allowed-cn.
	NodeName string
	// CADir, if set, is where the CA is read from instead of Dir; its
	// ca.crt is copied to Dir (so that Dir holds what a process needs, and
	// the CA key stays elsewhere: deploy/docker-compose.secure.yml).
	CADir string
}

// userName is what a client certificate's CN may be: the names a SQL or
// Thrift user may have (docs/security.md), never "node".
var userName = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,62}$`)

// CreateCA writes a new CA certificate and key to o.Dir.
func CreateCA(o CertOptions) error {
	if o.Lifetime == 0 {
		o.Lifetime = DefaultCALifetime
	}
	if err := o.free(CAFile, CAKeyFile); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := o.template("Shale CA")
	if err != nil {
		return err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return o.write(CAFile, CAKeyFile, der, key)
}

// CreateNode writes a node certificate for hosts (DNS names or IP
// addresses; at least one) signed by the CA in o.Dir.
func CreateNode(o CertOptions, hosts ...string) error {
	if len(hosts) == 0 {
		return errors.New("cert: a node certificate needs at least one host name or address")
	}
	cn := o.NodeName
	if cn == "" {
		cn = NodeCN
	}
	return o.sign(NodeCert, NodeKey, cn, hosts, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// CreateClient writes a client certificate whose CN is user, signed by the
// CA in o.Dir.
func CreateClient(o CertOptions, user string) error {
	if !userName.MatchString(user) || user == NodeCN {
		return fmt.Errorf("cert: user name %q: want lower-case letters, digits, '_', '.', '-' (at most 63, not starting with a digit), and not %q", user, NodeCN)
	}
	return o.sign(ClientCertFile(user), ClientKeyFile(user), user, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (o CertOptions) sign(certName, keyName, cn string, hosts []string, usage []x509.ExtKeyUsage) error {
	if o.Lifetime == 0 {
		o.Lifetime = DefaultCertLifetime
	}
	caDir := o.Dir
	if o.CADir != "" {
		caDir = o.CADir
	}
	ca, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	if err := o.free(certName, keyName); err != nil {
		return err
	}
	if caDir != o.Dir {
		if err := copyCACert(caDir, o.Dir); err != nil {
			return err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := o.template(cn)
	if err != nil {
		return err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter // a certificate may not outlive its CA
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return o.write(certName, keyName, der, key)
}

func (o CertOptions) template(cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Shale"}},
		NotBefore:    now.Add(-time.Hour), // tolerate clocks behind ours
		NotAfter:     now.Add(o.Lifetime),
	}, nil
}

// free fails when a file exists and o.Overwrite is not set.
func (o CertOptions) free(names ...string) error {
	if o.Dir == "" {
		return errors.New("cert: no certificates directory given")
	}
	if o.Overwrite {
		return nil
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(o.Dir, n)); err == nil {
			return fmt.Errorf("cert: %s: %w (use --overwrite to replace it)", filepath.Join(o.Dir, n), ErrExists)
		}
	}
	return nil
}

// write stores the key first, then the certificate, each through a
// temporary file and a rename, so a reader never sees half a file and a
// certificate is never on disk without its key.
func (o CertOptions) write(certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(o.Dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(o.Dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadCA(dir string) (*x509.Certificate, any, error) {
	pair, err := readPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("cert: the CA in %s (create it with `shale cert create-ca`): %w", dir, err)
	}
	if !pair.Leaf.IsCA {
		return nil, nil, fmt.Errorf("cert: %s is not a CA certificate", filepath.Join(dir, CAFile))
	}
	return pair.Leaf, pair.PrivateKey, nil
}

// copyCACert copies ca.crt from dir to a directory of certificates.
func copyCACert(from, to string) error {
	b, err := os.ReadFile(filepath.Join(from, CAFile))
	if err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(to, CAFile), b, 0o644)
}
