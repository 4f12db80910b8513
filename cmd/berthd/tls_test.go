package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// makeCerts makes a CA, a server certificate for 127.0.0.1 and a client
// certificate with openssl, as the docker docs tell users to.
func makeCerts(t *testing.T, dir string) {
	t.Helper()
	run := func(args ...string) {
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "server.ext"), []byte("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "client.ext"), []byte("extendedKeyUsage = clientAuth\n"), 0o644)
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=berth test CA")
	for _, who := range []string{"server", "client"} {
		run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", who+"-key.pem", "-out", who+".csr", "-subj", "/CN="+who)
		run("x509", "-req", "-in", who+".csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", who+"-cert.pem", "-days", "2", "-extfile", who+".ext")
	}
}

func TestTLSVerifyOverTCPWithTheDockerCLI(t *testing.T) {
	certs := t.TempDir()
	makeCerts(t, certs)
	port := strconv.Itoa(freePort(t))
	tcp := "tcp://127.0.0.1:" + port
	d := startDaemon(t, "", "-H", tcp, "--tlsverify",
		"--tlscacert", filepath.Join(certs, "ca.pem"),
		"--tlscert", filepath.Join(certs, "server-cert.pem"),
		"--tlskey", filepath.Join(certs, "server-key.pem"))

	out, errOut, code := runDocker(t, tcp, nil, "--tlsverify",
		"--tlscacert", filepath.Join(certs, "ca.pem"),
		"--tlscert", filepath.Join(certs, "client-cert.pem"),
		"--tlskey", filepath.Join(certs, "client-key.pem"),
		"version", "--format", "{{.Server.Os}}")
	if code != 0 || strings.TrimSpace(out) != "linux" {
		t.Fatalf("docker --tlsverify with a client certificate: %d %q %q", code, out, errOut)
	}
	// The same through the environment, as users set it.
	out, errOut, code = runDocker(t, tcp, []string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + clientCertDir(t, certs)}, "info", "--format", "{{.OSType}}")
	if code != 0 || strings.TrimSpace(out) != "linux" {
		t.Fatalf("docker with DOCKER_TLS_VERIFY: %d %q %q", code, out, errOut)
	}
	// No client certificate: refused at the handshake.
	_, errOut, code = runDocker(t, tcp, nil, "--tlsverify", "--tlscacert", filepath.Join(certs, "ca.pem"), "version")
	if code == 0 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("client without a certificate was served: %d %q", code, errOut)
	}
	// Plain HTTP to the TLS port is not served.
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/_ping")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP was answered with 200")
		}
	}
	// The unix socket keeps working beside the tcp one.
	if _, errOut, code := d.docker("version"); code != 0 {
		t.Fatalf("unix socket: %s", errOut)
	}
}

// clientCertDir lays out ca.pem, cert.pem and key.pem as DOCKER_CERT_PATH
// expects them.
func clientCertDir(t *testing.T, certs string) string {
	dir := t.TempDir()
	for src, dst := range map[string]string{"ca.pem": "ca.pem", "client-cert.pem": "cert.pem", "client-key.pem": "key.pem"} {
		b, err := os.ReadFile(filepath.Join(certs, src))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, dst), b, 0o600)
	}
	return dir
}
