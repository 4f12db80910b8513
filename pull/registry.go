package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// Size limits for documents read whole into memory; dockerd uses the same
// order of magnitude.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
)

// manifestAccept is what the puller understands, best first.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.DockerManifestList),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestSchema2),
}, ", ")

// repoClient talks to one repository on one endpoint, through the
// go-containerregistry transport that did the ping and auth handshake.
type repoClient struct {
	ep     endpoint
	repo   string // path on the registry, e.g. "library/busybox"
	client *http.Client
	base   string // "scheme://host"; the handshake transport fixes the scheme
}

// connect pings the endpoint and sets up authentication (anonymous, basic,
// or the bearer token handshake) for pulling repo.
func (p *Puller) connect(ctx context.Context, ep endpoint, repo string, auth AuthConfig) (*repoClient, error) {
	var opts []name.Option
	if ep.insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(ep.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", ep.host, errInvalidReference(err))
	}
	base := p.secure
	if ep.insecure {
		base = p.insecure
	}
	rt, err := transport.NewWithContext(ctx, reg, auth.authenticator(), base, []string{"repository:" + repo + ":pull"})
	if err != nil {
		return nil, translateHTTPError(err)
	}
	scheme := "https"
	if ep.scheme != "" {
		scheme = ep.scheme
	}
	return &repoClient{ep: ep, repo: repo, client: &http.Client{Transport: rt}, base: scheme + "://" + ep.host}, nil
}

func (c *repoClient) url(kind, ref string) string {
	return fmt.Sprintf("%s/v2/%s/%s/%s", c.base, c.repo, kind, ref)
}

// getManifest fetches a manifest or index by tag or digest and returns its
// bytes and media type.
func (c *repoClient) getManifest(ctx context.Context, ref string) ([]byte, types.MediaType, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("manifests", ref), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, "", err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("read manifest %s: %w", ref, err)
	}
	if len(data) > maxManifestSize {
		return nil, "", fmt.Errorf("manifest %s is larger than %d bytes", ref, maxManifestSize)
	}
	return data, manifestMediaType(resp.Header.Get("Content-Type"), data), nil
}

// manifestMediaType trusts the document's own mediaType field first (the
// registry's Content-Type is sometimes generic), then the header, then the
// shape (OCI allows documents without mediaType).
func manifestMediaType(contentType string, data []byte) types.MediaType {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Config    json.RawMessage `json:"config"`
	}
	_ = json.Unmarshal(data, &probe)
	if probe.MediaType != "" {
		return types.MediaType(probe.MediaType)
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		switch m := types.MediaType(mt); m {
		case types.OCIImageIndex, types.DockerManifestList, types.OCIManifestSchema1, types.DockerManifestSchema2:
			return m
		}
	}
	switch {
	case len(probe.Manifests) > 0:
		return types.OCIImageIndex
	case len(probe.Config) > 0:
		return types.OCIManifestSchema1
	}
	return types.MediaType(contentType)
}

// openBlob starts a GET of a blob, from offset when it is above zero (a
// Range request). It returns the response and the blob offset its body
// starts at: 0 when the registry ignored the Range.
func (c *repoClient) openBlob(ctx context.Context, dgst digest.Digest, offset, size int64) (io.ReadCloser, int64, error) {
	return getRange(ctx, c.client, c.url("blobs", dgst.String()), offset, size)
}

// getRange GETs url from offset with a closed Range (bytes=N-M: some
// registries do not parse the open form) and reports where the body starts.
func getRange(ctx context.Context, client *http.Client, url string, offset, size int64) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	if offset > 0 {
		if size > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, size-1))
		} else {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, 0, nil
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || offset == 0 {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("%sunusable Content-Range %q", requestPrefix(req), resp.Header.Get("Content-Range"))
		}
		return resp.Body, start, nil
	}
	defer resp.Body.Close()
	return nil, 0, transport.CheckError(resp, http.StatusOK, http.StatusPartialContent)
}

// contentRangeStart parses "bytes start-end/size".
func contentRangeStart(h string) (int64, bool) {
	h = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(h), "bytes"))
	s, _, ok := strings.Cut(h, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil && n >= 0
}

// mismatchError is content that does not hash to the digest it was asked
// for; it is never retried.
type mismatchError struct {
	dgst, got digest.Digest
	size      int64 // expected size, when the size is what differs
	gotSize   int64
}

func (e *mismatchError) Error() string {
	if e.got == "" {
		return fmt.Sprintf("filesystem layer verification failed for digest %s: size %d, expected %d", e.dgst, e.gotSize, e.size)
	}
	return fmt.Sprintf("filesystem layer verification failed for digest %s: got %s", e.dgst, e.got)
}

// retryable reports whether a failed registry request is worth repeating:
// network trouble, 5xx and 429. Credentials, not-found and bad content are
// not.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var me *mismatchError
	if errors.As(err, &me) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500 || te.StatusCode == http.StatusRequestTimeout
	}
	var ce *classErr
	if errors.As(err, &ce) {
		return false
	}
	return true
}
