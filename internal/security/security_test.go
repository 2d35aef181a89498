package security

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
)

func mustCA(t *testing.T, dir string) {
	t.Helper()
	if err := CreateCA(CertOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
}

func nodeConfig(dir string, allowed ...string) Config {
	return Config{CAFile: filepath.Join(dir, CAFile), CertFile: filepath.Join(dir, NodeCert), KeyFile: filepath.Join(dir, NodeKey), AllowedCNs: allowed, ReloadInterval: time.Nanosecond}
}

func clientConfig(dir, user string) Config {
	return Config{CAFile: filepath.Join(dir, CAFile), CertFile: filepath.Join(dir, ClientCertFile(user)), KeyFile: filepath.Join(dir, ClientKeyFile(user)), ReloadInterval: time.Nanosecond}
}

// setup writes a CA, a node certificate for 127.0.0.1 and a client
// certificate for alice into a new directory.
func setup(t *testing.T) string {
	dir := t.TempDir()
	mustCA(t, dir)
	if err := CreateNode(CertOptions{Dir: dir}, "127.0.0.1", "localhost"); err != nil {
		t.Fatal(err)
	}
	if err := CreateClient(CertOptions{Dir: dir}, "alice"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func reloader(t *testing.T, c Config) *Reloader {
	t.Helper()
	r, err := NewReloader(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// serve accepts TLS connections until the test ends; each handshake's
// result (the client's CN, or the error) is sent on the returned channel.
func serve(t *testing.T, cfg *tls.Config) (string, <-chan string) {
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	got := make(chan string, 16)
	go func() { //stop:short-lived accept loop, ends when the listener closes at cleanup
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				got <- "error: " + err.Error()
			} else if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
				got <- pc[0].Subject.CommonName
			} else {
				got <- "(no client certificate)"
			}
			tc.Close()
		}
	}()
	return lis.Addr().String(), got
}

// dial handshakes and returns the server certificate's serial number.
func dial(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate on the first read.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func TestCreatedCertificatesVerifyWithOpenSSL(t *testing.T) {
	dir := setup(t)
	for _, f := range []string{NodeCert, ClientCertFile("alice")} {
		out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, CAFile), filepath.Join(dir, f)).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl verify %s: %v\n%s", f, err, out)
		}
	}
	out, err := exec.Command("openssl", "x509", "-noout", "-text", "-in", filepath.Join(dir, NodeCert)).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for _, want := range []string{"IP Address:127.0.0.1", "DNS:localhost", "TLS Web Server Authentication", "CN = node"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("node certificate lacks %q:\n%s", want, out)
		}
	}
	for _, k := range []string{CAKeyFile, NodeKey, ClientKeyFile("alice")} {
		fi, err := os.Stat(filepath.Join(dir, k))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600 (%v)", k, fi.Mode().Perm(), err)
		}
	}
}

func TestCreateRefusesWhatItShould(t *testing.T) {
	dir := t.TempDir()
	if err := CreateNode(CertOptions{Dir: dir}, "h"); err == nil || !strings.Contains(err.Error(), "create-ca") {
		t.Fatalf("node certificate without a CA: %v", err)
	}
	mustCA(t, dir)
	if err := CreateCA(CertOptions{Dir: dir}); !errors.Is(err, ErrExists) {
		t.Fatalf("second CA over the first: %v, want ErrExists", err)
	}
	if err := CreateCA(CertOptions{Dir: dir, Overwrite: true}); err != nil {
		t.Fatalf("--overwrite: %v", err)
	}
	if err := CreateNode(CertOptions{Dir: dir}); err == nil {
		t.Fatal("node certificate without hosts")
	}
	for _, u := range []string{"", "node", "Alice", "a b", "../x", strings.Repeat("a", 64)} {
		if err := CreateClient(CertOptions{Dir: dir}, u); err == nil {
			t.Errorf("client certificate for %q accepted", u)
		}
	}
	if _, err := NewReloader(Config{CAFile: filepath.Join(dir, CAFile)}); err == nil {
		t.Fatal("a TLS config without cert and key accepted")
	}
}

func TestMutualTLS(t *testing.T) {
	dir, other := setup(t), setup(t) // two unrelated CAs
	srv := reloader(t, nodeConfig(dir))
	addr, got := serve(t, srv.ServerTLS(true))

	if _, err := dial(addr, reloader(t, clientConfig(dir, "alice")).ClientTLS("127.0.0.1")); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if cn := <-got; cn != "alice" {
		t.Fatalf("server saw %q, want alice", cn)
	}
	// A certificate from another CA, and no certificate, are refused.
	if _, err := dial(addr, reloader(t, clientConfig(other, "alice")).ClientTLS("127.0.0.1")); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	<-got
	if _, err := dial(addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	<-got
	// The client refuses a server from another CA, or with another name.
	if _, err := dial(addr, reloader(t, clientConfig(other, "alice")).ClientTLS("127.0.0.1")); err == nil {
		t.Fatal("client accepted a server of another CA")
	}
	<-got
	if _, err := dial(addr, reloader(t, clientConfig(dir, "alice")).ClientTLS("db.example.com")); err == nil || !strings.Contains(err.Error(), "db.example.com") {
		t.Fatalf("client accepted a server certificate for another name: %v", err)
	}
	<-got
}

func TestAllowedCN(t *testing.T) {
	dir := t.TempDir()
	mustCA(t, dir)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		for _, f := range []string{CAFile, CAKeyFile} {
			data, _ := os.ReadFile(filepath.Join(dir, f))
			os.MkdirAll(d, 0o700)
			os.WriteFile(filepath.Join(d, f), data, 0o600)
		}
		if err := CreateNode(CertOptions{Dir: d, NodeName: "node-" + filepath.Base(d)}, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	addr, got := serve(t, reloader(t, nodeConfig(a, "node-a")).ServerTLS(true))
	if _, err := dial(addr, reloader(t, nodeConfig(a)).ClientTLS("127.0.0.1")); err != nil {
		t.Fatalf("allowed node: %v", err)
	}
	<-got
	if _, err := dial(addr, reloader(t, nodeConfig(b)).ClientTLS("127.0.0.1")); err == nil {
		t.Fatal("node-b was accepted by a server allowing only node-a")
	}
	if msg := <-got; !strings.Contains(msg, "not in --cert-allowed-cn") {
		t.Fatalf("server: %s", msg)
	}
	// And a client allowing only node-a refuses server node-b.
	addrB, gotB := serve(t, reloader(t, nodeConfig(b)).ServerTLS(true))
	if _, err := dial(addrB, reloader(t, nodeConfig(a, "node-a")).ClientTLS("127.0.0.1")); err == nil {
		t.Fatal("client allowing node-a accepted server node-b")
	}
	<-gotB
}

// Certificates, and even the CA, are replaced on disk while the server
// runs; new handshakes use them without a new Reloader. A broken file
// keeps the previous identity until it is fixed.
func TestRotationWithoutRestart(t *testing.T) {
	dir := setup(t)
	srv := reloader(t, nodeConfig(dir))
	cli := reloader(t, clientConfig(dir, "alice"))
	addr, got := serve(t, srv.ServerTLS(true))
	go func() { //stop:short-lived drains handshake results until cleanup closes the listener
		for range got {
		}
	}()
	first, err := dial(addr, cli.ClientTLS("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}

	if err := CreateNode(CertOptions{Dir: dir, Overwrite: true}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		serial, err := dial(addr, cli.ClientTLS("127.0.0.1"))
		if err == nil && serial == first {
			err = errors.New("server still presents the old certificate")
		}
		return err
	})

	// A half-written certificate: the old identity keeps serving.
	if err := os.WriteFile(filepath.Join(dir, NodeCert), []byte("-----BEGIN CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		if _, err := dial(addr, cli.ClientTLS("127.0.0.1")); err != nil {
			return err
		}
		if srv.LastError() == nil {
			return errors.New("the broken file was not noticed")
		}
		return nil
	})

	// A new CA and new certificates for everyone.
	mustCAOverwrite(t, dir)
	if err := CreateNode(CertOptions{Dir: dir, Overwrite: true}, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := CreateClient(CertOptions{Dir: dir, Overwrite: true}, "alice"); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		_, err := dial(addr, cli.ClientTLS("127.0.0.1"))
		if err == nil && srv.LastError() != nil {
			err = fmt.Errorf("server reload error: %v", srv.LastError())
		}
		return err
	})
}

func mustCAOverwrite(t *testing.T, dir string) {
	if err := CreateCA(CertOptions{Dir: dir, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
}
