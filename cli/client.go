package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
	"golang.org/x/net/http/httpproxy"
)

// Environment variables of the docker CLI that berth honours with the same
// meaning, so a shell set up for docker talks to berthd unchanged.
const (
	envHost       = "DOCKER_HOST"
	envTLSVerify  = "DOCKER_TLS_VERIFY"
	envTLS        = "DOCKER_TLS"
	envCertPath   = "DOCKER_CERT_PATH"
	envConfig     = "DOCKER_CONFIG"
	envAPIVersion = "DOCKER_API_VERSION"
)

// Default TLS file names inside the certificate directory.
const (
	defaultCAFile   = "ca.pem"
	defaultCertFile = "cert.pem"
	defaultKeyFile  = "key.pem"
)

// clientOptions are the global flags of berth. Names, shorthands, defaults
// and environment variables are the docker CLI's.
type clientOptions struct {
	configDir string
	debug     bool
	logLevel  string
	tls       bool
	tlsVerify bool
	caFile    string
	certFile  string
	keyFile   string
	hosts     []string
}

// hostValue is -H: a string flag that refuses a second value, as the
// docker CLI does (one client talks to one daemon).
type hostValue struct{ dst *[]string }

func (h hostValue) String() string {
	if len(*h.dst) == 0 {
		return ""
	}
	return (*h.dst)[0]
}

func (h hostValue) Set(s string) error {
	*h.dst = append(*h.dst, s)
	return nil
}

func (hostValue) Type() string { return "list" }

// configDir is where the docker CLI keeps its files: $DOCKER_CONFIG, else
// ~/.docker. The default certificate directory is the same place.
func configDir(getenv func(string) string) string {
	if d := getenv(envConfig); d != "" {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker")
}

// installFlags registers the global flags on fs with defaults taken from
// the environment through getenv.
func (o *clientOptions) installFlags(fs *pflag.FlagSet, getenv func(string) string) {
	cfgDir := configDir(getenv)
	certDir := getenv(envCertPath)
	if certDir == "" {
		certDir = cfgDir
	}
	fs.StringVar(&o.configDir, "config", cfgDir, "Location of client config files")
	fs.BoolVarP(&o.debug, "debug", "D", false, "Enable debug mode")
	fs.StringVarP(&o.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	fs.BoolVar(&o.tls, "tls", getenv(envTLS) != "", "Use TLS; implied by --tlsverify")
	fs.BoolVar(&o.tlsVerify, "tlsverify", getenv(envTLSVerify) != "", "Use TLS and verify the remote")
	fs.StringVar(&o.caFile, "tlscacert", filepath.Join(certDir, defaultCAFile), "Trust certs signed only by this CA")
	fs.StringVar(&o.certFile, "tlscert", filepath.Join(certDir, defaultCertFile), "Path to TLS certificate file")
	fs.StringVar(&o.keyFile, "tlskey", filepath.Join(certDir, defaultKeyFile), "Path to TLS key file")
	fs.VarP(hostValue{dst: &o.hosts}, "host", "H", "Daemon socket to connect to")
}

// endpoint is the resolved daemon address and its TLS settings.
type endpoint struct {
	// host is canonical: unix:///path or tcp://host:port[/base].
	host string
	// tls is nil for plain HTTP and for unix sockets.
	tls *tls.Config
}

// resolveEndpoint applies the docker CLI's rules after flag parsing:
// --tlsverify (given at all, or DOCKER_TLS_VERIFY) implies --tls; the
// default client certificate and key are dropped when the files do not
// exist and the flags were not given; with TLS on, the files are read even
// for a unix socket (so a missing CA is reported the same way everywhere)
// but only used for tcp.
func (o *clientOptions) resolveEndpoint(fs *pflag.FlagSet, getenv func(string) string) (endpoint, error) {
	useTLS := o.tls || o.tlsVerify || fs.Changed("tlsverify")
	if len(o.hosts) > 1 {
		return endpoint{}, errors.New("Specify only one -H")
	}
	raw := getenv(envHost)
	if len(o.hosts) == 1 {
		raw = o.hosts[0]
	}
	host, err := ParseClientHost(raw, useTLS)
	if err != nil {
		return endpoint{}, err
	}
	if strings.HasPrefix(host, "fd://") {
		return endpoint{}, fmt.Errorf("invalid bind address format: %s: fd:// is for berthd only", host)
	}
	ep := endpoint{host: host}
	if !useTLS {
		return ep, nil
	}

	certFile, keyFile := o.certFile, o.keyFile
	if !fs.Changed("tlscert") && !fileExists(certFile) {
		certFile = ""
	}
	if !fs.Changed("tlskey") && !fileExists(keyFile) {
		keyFile = ""
	}
	ca, err := readOptional(o.caFile)
	if err != nil {
		return endpoint{}, err
	}
	cert, err := readOptional(certFile)
	if err != nil {
		return endpoint{}, err
	}
	key, err := readOptional(keyFile)
	if err != nil {
		return endpoint{}, err
	}
	if !strings.HasPrefix(host, "tcp://") {
		return ep, nil
	}
	ep.tls, err = clientTLSConfig(ca, cert, key, !o.tlsVerify)
	if err != nil {
		return endpoint{}, err
	}
	return ep, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

func readOptional(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	return os.ReadFile(path)
}

// clientTLSConfig builds the client side of a TLS connection from PEM
// bytes, with the docker CLI's messages for bad material.
func clientTLSConfig(ca, cert, key []byte, skipVerify bool) (*tls.Config, error) {
	cfg := tlsconfig.ClientDefault()
	if ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("failed to retrieve context tls info: ca.pem seems invalid")
		}
		cfg.RootCAs = pool
	}
	if cert != nil && key != nil {
		block, _ := pem.Decode(key)
		if block == nil {
			return nil, errors.New("no valid private key found")
		}
		//nolint:staticcheck // Detecting (not decrypting) legacy encrypted keys, to refuse them as docker does.
		if x509.IsEncryptedPEMBlock(block) {
			return nil, errors.New("private key is encrypted - support for encrypted private keys has been removed, see https://docs.docker.com/go/deprecated/")
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("failed to retrieve context tls info: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	cfg.InsecureSkipVerify = skipVerify
	return cfg, nil
}

// newAPIClient returns an Engine API client for ep. API version
// negotiation is on (the first request pings the daemon) unless
// DOCKER_API_VERSION pins a version.
//
// tcp endpoints get their own transport so that HTTP_PROXY, HTTPS_PROXY
// and NO_PROXY are read from getenv at this moment (net/http caches the
// process environment on first use); unix sockets are never proxied.
func newAPIClient(ep endpoint, userAgent string, getenv func(string) string) (*client.Client, error) {
	opts := []client.Opt{
		client.WithHost(ep.host),
		client.WithUserAgent(userAgent),
	}
	if strings.HasPrefix(ep.host, "tcp://") {
		proxy := proxyConfig(getenv).ProxyFunc()
		tr := &http.Transport{
			Proxy: func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
			DialContext: (&net.Dialer{
				KeepAlive: 30 * time.Second,
				Timeout:   30 * time.Second,
			}).DialContext,
			TLSClientConfig: ep.tls,
			MaxIdleConns:    6,
			IdleConnTimeout: 30 * time.Second,
		}
		opts = append(opts, client.WithHTTPClient(&http.Client{
			Transport:     tr,
			CheckRedirect: client.CheckRedirect,
		}))
	}
	if v := getenv(envAPIVersion); v != "" {
		opts = append(opts, client.WithAPIVersion(v))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("create API client for %s: %w", ep.host, err)
	}
	return c, nil
}

// proxyConfig reads the proxy variables the way net/http does (upper or
// lower case, HTTPS_PROXY for https URLs) without its process-wide cache.
func proxyConfig(getenv func(string) string) *httpproxy.Config {
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	return &httpproxy.Config{
		HTTPProxy:  first("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: first("HTTPS_PROXY", "https_proxy"),
		NoProxy:    first("NO_PROXY", "no_proxy"),
	}
}
