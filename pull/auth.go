package pull

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
)

// AuthConfig is the decoded X-Registry-Auth header (Docker's
// registry.AuthConfig).
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Anonymous reports whether the config carries no credentials.
func (a AuthConfig) Anonymous() bool {
	return a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == ""
}

// authenticator turns the config into go-containerregistry's form.
func (a AuthConfig) authenticator() authn.Authenticator {
	if a.Anonymous() {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// DecodeAuthHeader decodes an X-Registry-Auth value. Clients differ in the
// base64 alphabet and in padding, so both alphabets are accepted, padded or
// not. An empty header (or "e30=", which is "{}") is anonymous.
func DecodeAuthHeader(h string) (AuthConfig, error) {
	var a AuthConfig
	h = strings.TrimSpace(h)
	if h == "" {
		return a, nil
	}
	raw := strings.TrimRight(h, "=")
	var data []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if data, err = enc.DecodeString(raw); err == nil {
			break
		}
	}
	if err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return AuthConfig{}, fmt.Errorf("invalid X-Registry-Auth header: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	return a, nil
}
