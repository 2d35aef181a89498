package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaledb/shale/internal/security"
)

func TestCertCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := runShale(t, "cert", "create-node", "--certs-dir", dir, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "create-ca") {
		t.Fatalf("create-node before create-ca: %v", err)
	}
	for _, args := range [][]string{
		{"cert", "create-ca", "--certs-dir", dir},
		{"cert", "create-node", "--certs-dir", dir, "127.0.0.1", "localhost"},
		{"cert", "create-client", "--certs-dir", dir, "alice"},
	} {
		out, err := runShale(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.Contains(out, "wrote "+dir) {
			t.Fatalf("%v printed %q", args, out)
		}
	}
	if _, err := runShale(t, "cert", "create-ca", "--certs-dir", dir); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("second create-ca: %v", err)
	}
	if _, err := runShale(t, "cert", "create-client", "--certs-dir", dir, "Not A User"); err == nil {
		t.Fatal("create-client accepted a bad user name")
	}
	if _, err := runShale(t, "cert", "create-ca", "--certs-dir", dir, "--lifetime", "-1h", "--overwrite"); err == nil {
		t.Fatal("negative --lifetime accepted")
	}
	// The files make a working identity.
	if _, err := security.NewReloader(security.Config{
		CAFile: filepath.Join(dir, security.CAFile), CertFile: filepath.Join(dir, security.NodeCert), KeyFile: filepath.Join(dir, security.NodeKey),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, security.ClientKeyFile("alice"))); err != nil {
		t.Fatal(err)
	}
}

// --ca-dir signs with a CA kept in another directory (copying only its
// ca.crt), and --keep makes a repeated command succeed without writing:
// what the init services of deploy/docker-compose.secure.yml run on every start.
func TestCertCADirAndKeep(t *testing.T) {
	ca, certs := filepath.Join(t.TempDir(), "ca"), filepath.Join(t.TempDir(), "certs")
	for range 2 {
		for _, args := range [][]string{
			{"cert", "create-ca", "--certs-dir", ca, "--keep"},
			{"cert", "create-node", "--certs-dir", certs, "--ca-dir", ca, "--keep", "127.0.0.1"},
			{"cert", "create-client", "--certs-dir", certs, "--ca-dir", ca, "--keep", "root"},
		} {
			if out, err := runShale(t, args...); err != nil {
				t.Fatalf("%v: %v %s", args, err, out)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(certs, security.CAKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("ca.key was copied next to the node certificate: %v", err)
	}
	if _, err := security.NewReloader(security.Config{
		CAFile: filepath.Join(certs, security.CAFile), CertFile: filepath.Join(certs, security.NodeCert), KeyFile: filepath.Join(certs, security.NodeKey),
	}); err != nil {
		t.Fatal(err)
	}
	out, err := runShale(t, "cert", "create-client", "--certs-dir", certs, "--ca-dir", ca, "--keep", "root")
	if err != nil || !strings.Contains(out, "kept") {
		t.Fatalf("--keep on existing files: %v %q", err, out)
	}
}
