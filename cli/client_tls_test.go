package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as docker's ca.pem, cert.pem and key.pem.
type testPKI struct {
	dir        string // ca.pem, cert.pem, key.pem (the client's)
	caPool     *x509.CertPool
	serverCert tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newTestKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)

	issue := func(serial int64, usage x509.ExtKeyUsage, cn string) (certPEM, keyPEM []byte) {
		key := newTestKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	srvCert, srvKey := issue(2, x509.ExtKeyUsageServerAuth, "berthd")
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey := issue(3, x509.ExtKeyUsageClientAuth, "client")
	writePEMFile(t, filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	writePEMFile(t, filepath.Join(dir, "cert.pem"), cliCert)
	writePEMFile(t, filepath.Join(dir, "key.pem"), cliKey)
	return &testPKI{dir: dir, caPool: pool, serverCert: pair}
}

func newTestKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEMFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLSEngine serves the fake API over TLS on 127.0.0.1, requiring a
// client certificate signed by the test CA (berthd --tlsverify).
func startTLSEngine(t *testing.T, pki *testPKI) (host string) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pki.serverCert},
		ClientCAs:    pki.caPool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	newFakeEngine(t, time.Now()).serve(l)
	return "tcp://" + l.Addr().String()
}

func TestTLSVerifyWithClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	host := startTLSEngine(t, pki)
	flags := []string{"--tlsverify",
		"--tlscacert", filepath.Join(pki.dir, "ca.pem"),
		"--tlscert", filepath.Join(pki.dir, "cert.pem"),
		"--tlskey", filepath.Join(pki.dir, "key.pem")}
	format := []string{"version", "--format", "{{.Server.Version}}"}

	got := runBerth(t, host, nil, "", append(flags, format...)...)
	if got.code != 0 || got.stdout != "0.1.0-test\n" {
		t.Fatalf("berth --tlsverify: %d %q %q", got.code, got.stdout, got.stderr)
	}
	// The docker CLI takes the same flags to the same server.
	want := runDocker(t, host, "", append(flags, format...)...)
	if want.code != 0 || want.stdout != got.stdout {
		t.Fatalf("docker --tlsverify: %d %q %q", want.code, want.stdout, want.stderr)
	}

	t.Run("environment", func(t *testing.T) {
		env := map[string]string{"DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": pki.dir}
		got := runBerth(t, "", env, "", format...)
		if got.code != 0 || got.stdout != "0.1.0-test\n" {
			t.Fatalf("DOCKER_TLS_VERIFY: %d %q %q", got.code, got.stdout, got.stderr)
		}
	})

	t.Run("default cert dir is ~/.docker", func(t *testing.T) {
		home := t.TempDir()
		if err := os.CopyFS(filepath.Join(home, ".docker"), os.DirFS(pki.dir)); err != nil {
			t.Fatal(err)
		}
		got := runBerth(t, host, map[string]string{"HOME": home}, "", append([]string{"--tlsverify"}, format...)...)
		if got.code != 0 || got.stdout != "0.1.0-test\n" {
			t.Fatalf("~/.docker certificates: %d %q %q", got.code, got.stdout, got.stderr)
		}
	})

	t.Run("no client certificate is refused", func(t *testing.T) {
		got := runBerth(t, host, nil, "", "--tlsverify", "--tlscacert", filepath.Join(pki.dir, "ca.pem"), "version", "--format", "{{.Server.Version}}")
		if got.code != 1 || !strings.Contains(got.stderr, "certificate") {
			t.Fatalf("want a refused handshake, got %d %q %q", got.code, got.stdout, got.stderr)
		}
	})

	t.Run("plain HTTP is refused", func(t *testing.T) {
		got := runBerth(t, host, nil, "", format...)
		if got.code != 1 || !strings.Contains(got.stderr, "Client sent an HTTP request to an HTTPS server") {
			t.Fatalf("want a failure, got %d %q %q", got.code, got.stdout, got.stderr)
		}
	})

	t.Run("wrong CA is refused", func(t *testing.T) {
		other := newTestPKI(t)
		got := runBerth(t, host, nil, "", "--tlsverify",
			"--tlscacert", filepath.Join(other.dir, "ca.pem"),
			"--tlscert", filepath.Join(pki.dir, "cert.pem"),
			"--tlskey", filepath.Join(pki.dir, "key.pem"), "version")
		if got.code != 1 || !strings.Contains(got.stderr, "x509") {
			t.Fatalf("want an x509 error, got %d %q", got.code, got.stderr)
		}
	})

	t.Run("--tls skips verification", func(t *testing.T) {
		other := newTestPKI(t)
		got := runBerth(t, host, nil, "", append([]string{"--tls",
			"--tlscacert", filepath.Join(other.dir, "ca.pem"),
			"--tlscert", filepath.Join(pki.dir, "cert.pem"),
			"--tlskey", filepath.Join(pki.dir, "key.pem")}, format...)...)
		if got.code != 0 || got.stdout != "0.1.0-test\n" {
			t.Fatalf("--tls: %d %q %q", got.code, got.stdout, got.stderr)
		}
	})
}

func TestTLSMaterialErrors(t *testing.T) {
	dir := t.TempDir()
	// A missing CA is reported before anything is sent, as docker does,
	// even with --tls alone.
	got := runBerth(t, "tcp://127.0.0.1:1", map[string]string{"DOCKER_CERT_PATH": dir}, "", "--tls", "images")
	want := "Failed to initialize: unable to resolve berth endpoint: open " + filepath.Join(dir, "ca.pem") + ": no such file or directory\n"
	if got.code != 1 || got.stderr != want {
		t.Fatalf("missing CA: %d %q, want %q", got.code, got.stderr, want)
	}

	writePEMFile(t, filepath.Join(dir, "ca.pem"), []byte("not a certificate"))
	got = runBerth(t, "tcp://127.0.0.1:1", map[string]string{"DOCKER_CERT_PATH": dir}, "", "--tlsverify", "images")
	if got.code != 1 || !strings.Contains(got.stderr, "ca.pem seems invalid") {
		t.Fatalf("bad CA: %d %q", got.code, got.stderr)
	}

	// An explicitly named certificate must exist; the default one is
	// optional.
	pki := newTestPKI(t)
	got = runBerth(t, "tcp://127.0.0.1:1", nil, "", "--tlsverify", "--tlscacert", filepath.Join(pki.dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "nope.pem"), "images")
	if got.code != 1 || !strings.Contains(got.stderr, "nope.pem: no such file or directory") {
		t.Fatalf("missing cert: %d %q", got.code, got.stderr)
	}
}
