package pull

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/chain"
)

// DefaultMaxConcurrentDownloads is dockerd's default for
// max-concurrent-downloads.
const DefaultMaxConcurrentDownloads = 3

// Config is the part of the daemon configuration pull reads. It can be
// replaced while pulls run (SetConfig, on a daemon reload).
type Config struct {
	// MaxConcurrentDownloads bounds the blob GETs in flight across every
	// pull of the daemon; <= 0 means DefaultMaxConcurrentDownloads.
	MaxConcurrentDownloads int
	// Mirrors are tried in order for docker.io images ("https://host[:port]"
	// or "http://…"), before the registry itself.
	Mirrors []string
	// InsecureRegistries are "host[:port]" or CIDR entries reached over
	// plain HTTP or TLS without verification. 127.0.0.0/8 always is.
	InsecureRegistries []string
}

// Option tunes a Puller.
type Option func(*Puller)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(p *Puller) { p.log = l } }

// WithTransport sets the base HTTP transport registries are reached with
// (tests: custom dialers, TLS roots). The Puller clones it and sets TLS
// verification per registry.
func WithTransport(t *http.Transport) Option { return func(p *Puller) { p.baseTransport = t } }

// WithRetryBackoff sets the first retry delay; each next one doubles
// (default 1 s; tests make it small).
func WithRetryBackoff(d time.Duration) Option { return func(p *Puller) { p.backoff = d } }

// Puller pulls images into a chain store. One Puller serves the whole
// daemon: its transfer manager is where the download limit and the dedupe
// of blobs across pulls live.
type Puller struct {
	store   *chain.Store
	log     *slog.Logger
	backoff time.Duration

	baseTransport *http.Transport
	secure        *http.Transport
	insecure      *http.Transport

	mu  sync.RWMutex
	cfg Config

	xfers *transferManager
}

// New makes a Puller writing into store.
func New(store *chain.Store, cfg Config, opts ...Option) *Puller {
	p := &Puller{store: store, backoff: time.Second}
	for _, o := range opts {
		o(p)
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	base := p.baseTransport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	p.secure = tuneTransport(base, false)
	p.insecure = tuneTransport(base, true)
	p.xfers = newTransferManager(p, limitOf(cfg))
	p.cfg = cloneConfig(cfg)
	return p
}

func tuneTransport(base *http.Transport, insecure bool) *http.Transport {
	t := base.Clone()
	// Layers are already compressed; Go's transparent gzip would also
	// break Range resumes.
	t.DisableCompression = true
	t.MaxIdleConnsPerHost = 16
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = time.Minute
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = insecure
	return t
}

func limitOf(cfg Config) int {
	if cfg.MaxConcurrentDownloads <= 0 {
		return DefaultMaxConcurrentDownloads
	}
	return cfg.MaxConcurrentDownloads
}

func cloneConfig(c Config) Config {
	c.Mirrors = append([]string(nil), c.Mirrors...)
	c.InsecureRegistries = append([]string(nil), c.InsecureRegistries...)
	return c
}

// SetConfig applies a new configuration to pulls that start from now on;
// a changed download limit also applies to downloads not yet started.
func (p *Puller) SetConfig(cfg Config) {
	p.mu.Lock()
	p.cfg = cloneConfig(cfg)
	p.mu.Unlock()
	p.xfers.limit.SetLimit(limitOf(cfg))
}

// config returns the current configuration.
func (p *Puller) config() Config {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return cloneConfig(p.cfg)
}

// loopback nets are insecure whatever the configuration says, as in
// dockerd.
var loopbackNets = []*net.IPNet{
	{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
	{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
}

// isInsecure reports whether host ("name[:port]") is an insecure registry
// under cfg: listed by name, or an address inside a listed CIDR.
func isInsecure(ctx context.Context, cfg Config, host string) bool {
	hostname := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		hostname = h
	}
	hostname = strings.Trim(hostname, "[]")
	nets := append([]*net.IPNet(nil), loopbackNets...)
	for _, e := range cfg.InsecureRegistries {
		e = strings.TrimSpace(e)
		if _, n, err := net.ParseCIDR(e); err == nil {
			nets = append(nets, n)
			continue
		}
		e = strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")
		e = strings.TrimSuffix(e, "/")
		if e == host || e == hostname {
			return true
		}
	}
	var ips []net.IP
	if ip := net.ParseIP(hostname); ip != nil {
		ips = []net.IP{ip}
	} else if hostname == "localhost" {
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else if len(nets) > len(loopbackNets) {
		// Only resolve names when a CIDR beyond loopback could match;
		// dockerd resolves the same way.
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupIPAddr(lctx, hostname)
		if err == nil {
			for _, a := range addrs {
				ips = append(ips, a.IP)
			}
		}
	}
	for _, ip := range ips {
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// endpoint is one place a repository can be fetched from: a mirror or the
// registry itself.
type endpoint struct {
	// host is "name[:port]" as used in URLs.
	host string
	// scheme is forced for mirrors configured with one ("http"); empty
	// lets the ping choose (https, then http when insecure).
	scheme   string
	insecure bool
	mirror   bool
}

func (e endpoint) String() string {
	if e.mirror {
		return "mirror " + e.host
	}
	return e.host
}

// dockerHubRegistry is where docker.io images live, as in dockerd.
const dockerHubRegistry = "registry-1.docker.io"

// endpointsFor lists where a repository of domain is fetched from, in the
// order to try them.
func endpointsFor(ctx context.Context, cfg Config, domain string) ([]endpoint, error) {
	var eps []endpoint
	host := domain
	if domain == "docker.io" {
		host = dockerHubRegistry
		for _, m := range cfg.Mirrors {
			ep, err := mirrorEndpoint(ctx, cfg, m)
			if err != nil {
				return nil, err
			}
			eps = append(eps, ep)
		}
	}
	eps = append(eps, endpoint{host: host, insecure: isInsecure(ctx, cfg, host)})
	return eps, nil
}

func mirrorEndpoint(ctx context.Context, cfg Config, m string) (endpoint, error) {
	raw := strings.TrimSpace(m)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return endpoint{}, fmt.Errorf("invalid registry mirror %q", m)
	}
	ep := endpoint{host: u.Host, mirror: true}
	if u.Scheme == "http" {
		ep.scheme, ep.insecure = "http", true
	} else {
		ep.insecure = isInsecure(ctx, cfg, u.Host)
	}
	return ep, nil
}
