package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/user"
)

func socketOwner(t *testing.T, path string) (os.FileMode, uint32, uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	return fi.Mode().Perm(), st.Uid, st.Gid
}

func TestListenUnixModeAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("socket ownership tests need root (they chown to root:group)")
	}
	dockerGID := -1
	if g, err := user.LookupGroup("docker"); err == nil {
		dockerGID = g.Gid
	}
	cases := []struct {
		group   string
		wantGID int
	}{
		{"", os.Getgid()},
		{"4242", 4242},        // numeric, like dockerd
		{"docker", dockerGID}, // the default group
	}
	for _, tc := range cases {
		if tc.wantGID < 0 {
			// No docker group on this host: dockerd tolerates that and
			// keeps the daemon's group.
			tc.wantGID = os.Getgid()
		}
		sock := filepath.Join(t.TempDir(), "a", "b", "berth.sock") // parents are created
		ls, err := Listen(t.Context(), []string{"unix://" + sock}, nil, tc.group)
		if err != nil {
			t.Fatalf("group %q: %v", tc.group, err)
		}
		mode, uid, gid := socketOwner(t, sock)
		if mode != 0o660 || uid != 0 || int(gid) != tc.wantGID {
			t.Errorf("group %q: mode %o uid %d gid %d, want 660 0 %d", tc.group, mode, uid, gid, tc.wantGID)
		}
		for _, l := range ls {
			l.Close()
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left after close: %v", err)
		}
	}

	_, err := Listen(t.Context(), []string{"unix://" + filepath.Join(t.TempDir(), "x.sock")}, nil, "no-such-group-berth")
	if err == nil || !strings.Contains(err.Error(), `socket group "no-such-group-berth" not found`) {
		t.Errorf("missing group: %v", err)
	}
}

func TestListenUnixStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")

	// A socket file left by a crashed daemon: nobody listens on it.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	ls, err := Listen(t.Context(), []string{"unix://" + sock}, nil, "")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}

	// Now it is live: a second daemon must not steal it.
	if _, err := Listen(t.Context(), []string{"unix://" + sock}, nil, ""); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("live socket: %v", err)
	}
	ls[0].Close()

	// Not a socket: not ours to delete.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(t.Context(), []string{"unix://" + file}, nil, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("regular file was touched")
	}
}

func TestListenErrorsCloseOpened(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ok.sock")
	for _, bad := range []string{"tcp://127.0.0.1", "udp://127.0.0.1:1", "127.0.0.1:2375", "unix://"} {
		_, err := Listen(t.Context(), []string{"unix://" + sock, bad}, nil, "")
		if err == nil {
			t.Errorf("%s accepted", bad)
		}
		if _, serr := os.Lstat(sock); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("after %s failed, the first listener was not closed", bad)
		}
	}
	if _, err := Listen(t.Context(), []string{"fd://"}, nil, ""); err == nil || !strings.Contains(err.Error(), "socket activation") {
		t.Errorf("fd:// without LISTEN_FDS: %v", err)
	}
}

// TestListenFD runs this test binary as a child with a listening socket as
// fd 3 and LISTEN_FDS=1, as systemd would; the child serves /_ping on it.
func TestListenFD(t *testing.T) {
	if os.Getenv("BERTH_TEST_FD_CHILD") == "1" {
		fdChild()
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the child owns the socket through the dup'd file

	for _, host := range []string{"fd://", "fd://3"} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestListenFD$")
		cmd.Env = append(os.Environ(), "BERTH_TEST_FD_CHILD=1", "LISTEN_FDS=1", "BERTH_TEST_FD_HOST="+host)
		cmd.ExtraFiles = []*os.File{f}
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child prints "ready" once it served.
		buf := make([]byte, 64)
		n, _ := io.ReadAtLeast(stdout, buf, 5)
		if !strings.Contains(string(buf[:n]), "ready") {
			t.Fatalf("%s: child said %q", host, buf[:n])
		}
		resp, err := http.Get("http://" + addr + "/_ping")
		if err != nil {
			t.Fatalf("%s: ping over activated socket: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "OK" || resp.Header.Get("Api-Version") != "1.41" {
			t.Errorf("%s: ping = %q %v", host, body, resp.Header)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		cancel()
	}
	f.Close()
}

func fdChild() {
	// systemd sets LISTEN_PID to the service's pid, known only after fork.
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	ls, err := Listen(context.Background(), []string{os.Getenv("BERTH_TEST_FD_HOST")}, nil, "")
	if err != nil || len(ls) != 1 {
		fmt.Fprintln(os.Stderr, "child listen:", err, len(ls))
		os.Exit(3)
	}
	s := New(Options{}, Backends{System: newFakeSystem()})
	fmt.Println("ready")
	go func() {
		_ = s.Serve(ls)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	os.Exit(0)
}

// testPKI is a CA with a server cert for 127.0.0.1 and a client cert.
type testPKI struct {
	dir                           string
	caPool                        *x509.CertPool
	server, client                tls.Certificate
	caFile, clientCert, clientKey string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &testPKI{dir: dir, caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) (tls.Certificate, []byte, []byte) {
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
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return pair, certPEM, keyPEM
	}
	p.server, _, _ = issue(2, "berthd", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	var certPEM, keyPEM []byte
	p.client, certPEM, keyPEM = issue(3, "client", x509.ExtKeyUsageClientAuth, nil)

	p.caFile = filepath.Join(dir, "ca.pem")
	p.clientCert = filepath.Join(dir, "cert.pem")
	p.clientKey = filepath.Join(dir, "key.pem")
	for path, data := range map[string][]byte{
		p.caFile:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.clientCert: certPEM,
		p.clientKey:  keyPEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestTLSClientVerify(t *testing.T) {
	pki := newTestPKI(t)
	serverConf := &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientCAs:    pki.caPool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	ls, err := Listen(t.Context(), []string{"tcp://127.0.0.1:0"}, serverConf, "")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Logger: testLogger(t)}, Backends{System: newFakeSystem()})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addr := ls[0].Addr().String()

	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pki.caPool, Certificates: certs},
			DisableKeepAlives: true,
		}}
	}

	resp, err := client([]tls.Certificate{pki.client}).Get("https://" + addr + "/_ping")
	if err != nil {
		t.Fatalf("ping with client cert: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "OK" {
		t.Errorf("ping body %q", body)
	}

	// No client certificate: refused in the handshake.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.caPool})
	if err == nil {
		// TLS 1.3 reports the server's refusal on the first read.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("handshake without client cert: %v", err)
	}
	if _, err := client(nil).Get("https://" + addr + "/_ping"); err == nil {
		t.Error("HTTPS request without client cert succeeded")
	}

	// Plain HTTP to the TLS port is not served.
	resp, err = (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/_ping")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || string(body) == "OK" {
			t.Errorf("plain HTTP served: %d %q", resp.StatusCode, body)
		}
	}

	// The docker CLI with --tlsverify is the acceptance client.
	out, errOut, code := runDocker(t, "tcp://"+addr, "--tlsverify", "--tlscacert", pki.caFile, "--tlscert", pki.clientCert, "--tlskey", pki.clientKey, "version", "--format", "{{.Server.APIVersion}}")
	if code != 0 || errOut != "" || strings.TrimSpace(out) != "1.41" {
		t.Errorf("docker --tlsverify version: exit %d stderr %q out %q", code, errOut, out)
	}
	_, errOut, code = runDocker(t, "tcp://"+addr, "--tlsverify", "--tlscacert", pki.caFile, "version")
	if code == 0 {
		t.Errorf("docker without client cert succeeded: %q", errOut)
	}
}
