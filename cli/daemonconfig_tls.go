package cli

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/docker/go-connections/tlsconfig"
)

// ServerTLSConfig is the TLS configuration for berthd's tcp listeners, built
// as dockerd builds it: nil when TLS is off; the certificate and key from
// tlscert/tlskey; TLS 1.2 at least with go-connections' cipher list; with
// tlsverify, clients must present a certificate signed by tlscacert (and
// only by it: the system roots are not trusted for client certificates).
func (c *DaemonConfig) ServerTLSConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	opts := tlsconfig.Options{
		CAFile:             c.TLSCACert,
		CertFile:           c.TLSCert,
		KeyFile:            c.TLSKey,
		ExclusiveRootPools: true,
	}
	if c.TLSVerify {
		if c.TLSCACert == "" {
			// Without a CA, Go would verify clients against the system
			// roots, which is not what --tlsverify promises.
			return nil, errors.New("invalid TLS configuration: --tlsverify requires --tlscacert")
		}
		opts.ClientAuth = tls.RequireAndVerifyClientCert
	}
	cfg, err := tlsconfig.Server(opts)
	if err != nil {
		return nil, fmt.Errorf("invalid TLS configuration: %w", err)
	}
	return cfg, nil
}
