package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// handshake serves one TLS connection on 127.0.0.1 with srv and dials it
// with cli; it returns the client's and the server's handshake errors.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cli)
	if err == nil {
		// TLS 1.3 reports a rejected client certificate on the first read.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		_, err = io.ReadFull(conn, buf)
		conn.Close()
	}
	return err, <-done
}

func TestServerTLSConfig(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	ca := newTestCA(t, "berth test CA")
	other := newTestCA(t, "someone else's CA")
	srvCert, srvKey := ca.issue(t, "berthd", x509.ExtKeyUsageServerAuth, 2)
	cliCert, cliKey := ca.issue(t, "client", x509.ExtKeyUsageClientAuth, 3)
	strangerCert, strangerKey := other.issue(t, "stranger", x509.ExtKeyUsageClientAuth, 4)

	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	certFile := writeFile(t, dir, "cert.pem", srvCert)
	keyFile := writeFile(t, dir, "key.pem", srvKey)

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	clientPair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	strangerPair, err := tls.X509KeyPair(strangerCert, strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	tlsArgs := []string{"--tlscacert", caFile, "--tlscert", certFile, "--tlskey", keyFile}

	t.Run("off", func(t *testing.T) {
		c := mustLoad(t, ``, tlsArgs...)
		cfg, err := c.ServerTLSConfig()
		if err != nil || cfg != nil {
			t.Fatalf("TLS off: %v %v", cfg, err)
		}
	})

	t.Run("tlsverify", func(t *testing.T) {
		c := mustLoad(t, ``, append([]string{"--tlsverify"}, tlsArgs...)...)
		srv, err := c.ServerTLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		if srv.ClientAuth != tls.RequireAndVerifyClientCert || srv.ClientCAs == nil || srv.MinVersion != tls.VersionTLS12 {
			t.Fatalf("client auth %v, CAs %v, min version %x", srv.ClientAuth, srv.ClientCAs, srv.MinVersion)
		}
		if cerr, serr := handshake(t, srv, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair}}); cerr != nil || serr != nil {
			t.Errorf("client with a CA-signed certificate: client %v server %v", cerr, serr)
		}
		if _, serr := handshake(t, srv, &tls.Config{RootCAs: roots}); serr == nil {
			t.Error("client without a certificate was accepted")
		}
		if _, serr := handshake(t, srv, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{strangerPair}}); serr == nil {
			t.Error("client with a certificate from another CA was accepted")
		}
		if cerr, _ := handshake(t, srv, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair}, MaxVersion: tls.VersionTLS11}); cerr == nil {
			t.Error("TLS 1.1 client was accepted")
		}
	})

	t.Run("tls without verify", func(t *testing.T) {
		c := mustLoad(t, ``, append([]string{"--tls"}, tlsArgs...)...)
		srv, err := c.ServerTLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		if srv.ClientAuth != tls.NoClientCert {
			t.Errorf("client auth %v", srv.ClientAuth)
		}
		if cerr, serr := handshake(t, srv, &tls.Config{RootCAs: roots}); cerr != nil || serr != nil {
			t.Errorf("client without certificate: client %v server %v", cerr, serr)
		}
	})

	t.Run("from daemon.json", func(t *testing.T) {
		file := `{"tlsverify": true, "tlscacert": "` + caFile + `", "tlscert": "` + certFile + `", "tlskey": "` + keyFile + `"}`
		c := mustLoad(t, file)
		srv, err := c.ServerTLSConfig()
		if err != nil || srv.ClientAuth != tls.RequireAndVerifyClientCert {
			t.Fatalf("%v %v", srv, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"--tlsverify", "--tlscacert", caFile, "--tlscert", filepath.Join(dir, "none.pem"), "--tlskey", keyFile}, "could not load X509 key pair"},
			{[]string{"--tlsverify", "--tlscacert", caFile, "--tlscert", caFile, "--tlskey", keyFile}, "invalid TLS configuration"},
			{[]string{"--tlsverify", "--tlscacert", filepath.Join(dir, "none.pem"), "--tlscert", certFile, "--tlskey", keyFile}, "could not read CA certificate"},
			{[]string{"--tlsverify", "--tlscacert", keyFile, "--tlscert", certFile, "--tlskey", keyFile}, "failed to append certificates"},
			{[]string{"--tlsverify", "--tlscacert", "", "--tlscert", certFile, "--tlskey", keyFile}, "--tlsverify requires --tlscacert"},
		}
		for _, tt := range tests {
			c := mustLoad(t, ``, tt.args...)
			_, err := c.ServerTLSConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.want)
			}
		}
	})
}
