package pull_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/fixtures"
	"github.com/berth-dev/berth/pull"
	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestPullFromDebianDockerRegistry(t *testing.T) {
	dr, err := fixtures.StartDockerRegistry(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	schema2 := mixedImage(t, 40, fixtures.DockerSchema2)
	oci := mixedImage(t, 50, fixtures.OCI)
	h2, err := dr.Push(ctx, "deb/schema2", "v1", schema2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dr.Push(ctx, "deb/oci", "v1", oci); err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	idx, err := fixtures.MultiPlatformIndex(60, []v1.Platform{{OS: "linux", Architecture: other}, {OS: "linux", Architecture: runtime.GOARCH}})
	if err != nil {
		t.Fatal(err)
	}
	hIdx, err := fixtures.PushIndex(ctx, dr.Host, "deb/multi", "latest", idx)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, pull.Config{})

	ref := dr.Host + "/deb/schema2:v1"
	got, rec := e.pull(t, ref, pull.Options{})
	e.checkImage(t, got, schema2, dr.Host+"/deb/schema2")
	if !slices.Equal(got.RepoDigests, []string{dr.Host + "/deb/schema2@" + h2.String()}) {
		t.Errorf("RepoDigests %v, want the registry's manifest digest %s", got.RepoDigests, h2)
	}
	if !rec.has("Digest: " + h2.String()) {
		t.Errorf("no Digest line for %s", h2)
	}

	got, _ = e.pull(t, dr.Host+"/deb/oci:v1", pull.Options{})
	e.checkImage(t, got, oci, dr.Host+"/deb/oci")

	im, _ := idx.IndexManifest()
	for i, plat := range []string{"linux/" + other, ""} {
		img, err := idx.Image(im.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.puller.Pull(ctx, dr.Host+"/deb/multi", pull.Options{Platform: plat}, nil)
		if err != nil {
			t.Fatalf("platform %q: %v", plat, err)
		}
		e.checkImage(t, got, img, dr.Host+"/deb/multi")
		if !slices.Contains(got.RepoDigests, dr.Host+"/deb/multi@"+hIdx.String()) {
			t.Errorf("RepoDigests %v, want the index digest", got.RepoDigests)
		}
	}

	// The wording dockerd prints for an image the registry lacks.
	for _, r := range []string{"deb/nope", "deb/schema2:v9"} {
		_, err = e.puller.Pull(ctx, dr.Host+"/"+r, pull.Options{}, nil)
		fam := dr.Host + "/" + r
		if !strings.Contains(r, ":") {
			fam += ":latest"
		}
		want := "manifest for " + fam + " not found: manifest unknown: manifest unknown"
		if err == nil || err.Error() != want || !errdefs.IsNotFound(err) {
			t.Errorf("pull %s: %v, want %q", r, err, want)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	reg := fixtures.StartRegistry(t, fixtures.WithBasicAuth("alice", "s3cret"))
	img, _ := fixtures.SmallImage(70)
	pushImage(t, reg, img, "private/img:latest")
	e := newEnv(t, pull.Config{})
	ref := reg.Ref("private/img")

	got, err := e.puller.Pull(context.Background(), ref, pull.Options{Auth: pull.AuthConfig{Username: "alice", Password: "s3cret"}}, nil)
	if err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	e.checkImage(t, got, img, reg.Host+"/private/img")

	for _, auth := range []pull.AuthConfig{{Username: "alice", Password: "wrong"}, {}} {
		_, err = e.puller.Pull(context.Background(), reg.Ref("private/img:other"), pull.Options{Auth: auth}, nil)
		want := fmt.Sprintf(`Get "%s/v2/private/img/manifests/other": unauthorized: authentication required`, reg.URL)
		if err == nil || err.Error() != want || !errdefs.IsUnauthorized(err) {
			t.Errorf("credentials %+v: %v, want %q", auth, err, want)
		}
	}
}

func TestTokenAuth(t *testing.T) {
	reg := fixtures.StartRegistry(t, fixtures.WithTokenAuth("bob", "pw"))
	img, _ := fixtures.SmallImage(80)
	pushImage(t, reg, img, "tok/img:latest")
	e := newEnv(t, pull.Config{})
	hdr := "eyJ1c2VybmFtZSI6ImJvYiIsInBhc3N3b3JkIjoicHcifQ" // {"username":"bob","password":"pw"}, unpadded URL base64
	auth, err := pull.DecodeAuthHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.puller.Pull(context.Background(), reg.Ref("tok/img"), pull.Options{Auth: auth}, nil)
	if err != nil {
		t.Fatalf("token auth: %v", err)
	}
	e.checkImage(t, got, img, reg.Host+"/tok/img")
	if reg.Stats().TokenRequests == 0 {
		t.Error("no token was requested")
	}
	_, err = e.puller.Pull(context.Background(), reg.Ref("tok/img"), pull.Options{Auth: pull.AuthConfig{Username: "bob", Password: "no"}}, nil)
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("bad token credentials: %v", err)
	}
}

// refusingTransport refuses to dial anything but loopback and records the
// hosts asked for, so docker.io fallbacks stay off the network.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) transport(redirect map[string]string) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var dialer net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.mu.Lock()
		d.addrs = append(d.addrs, addr)
		d.mu.Unlock()
		if to, ok := redirect[addr]; ok {
			addr = to
		}
		host, _, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("test dialer: %s is off limits", addr)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return tr
}

func (d *dialLog) dialed(prefix string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.addrs {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

func TestMirrorsFallThrough(t *testing.T) {
	broken := fixtures.StartRegistry(t)
	if _, err := broken.AddFault(fixtures.Fault{Path: "^/v2/", Status: http.StatusServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	empty := fixtures.StartRegistry(t) // answers, but has not got the image
	good := fixtures.StartRegistry(t)
	img, _ := fixtures.SmallImage(90)
	pushImage(t, good, img, "library/mirrored:latest")

	dl := &dialLog{}
	cfg := pull.Config{Mirrors: []string{"http://127.0.0.1:1", broken.URL, empty.URL, good.URL}}
	e := newEnv(t, cfg, pull.WithTransport(dl.transport(nil)))
	got, rec := e.pull(t, "mirrored", pull.Options{})
	e.checkImage(t, got, img, "docker.io/library/mirrored")
	if !slices.Equal(got.RepoTags, []string{"mirrored:latest"}) {
		t.Errorf("RepoTags %v", got.RepoTags)
	}
	msgs := rec.all()
	if msgs[0].Status != "Pulling from library/mirrored" || msgs[len(msgs)-1].Status != "Status: Downloaded newer image for mirrored:latest" {
		t.Errorf("lines %+v ... %+v", msgs[0], msgs[len(msgs)-1])
	}
	if empty.Requests(http.MethodGet, "/manifests/") == 0 || broken.Requests("", "^/v2/") == 0 {
		t.Error("the failing mirrors were not tried in order")
	}
	if dl.dialed("registry-1.docker.io") {
		t.Error("docker.io was contacted although a mirror had the image")
	}

	// When every mirror fails, the registry itself is the last resort.
	e2 := newEnv(t, pull.Config{Mirrors: []string{broken.URL}}, pull.WithTransport(dl.transport(nil)))
	_, err := e2.puller.Pull(context.Background(), "library/elsewhere", pull.Options{}, nil)
	if err == nil || !dl.dialed("registry-1.docker.io:443") {
		t.Errorf("registry not tried after the mirrors: err %v, dialed %v", err, dl.addrs)
	}

	// A reload changes the mirrors for the next pull.
	e2.puller.SetConfig(pull.Config{Mirrors: []string{good.URL}})
	got, err = e2.puller.Pull(context.Background(), "mirrored", pull.Options{}, nil)
	if err != nil {
		t.Fatalf("pull after reload: %v", err)
	}
	e2.checkImage(t, got, img, "docker.io/library/mirrored")
}

// tlsRegistry serves go-containerregistry's registry over TLS with a
// self-signed certificate.
func tlsRegistry(t *testing.T) *httptest.Server {
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	// Refused handshakes are what the tests provoke.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLSRegistrySecureAndInsecure(t *testing.T) {
	srv := tlsRegistry(t)
	img, _ := fixtures.SmallImage(100)
	// Push with a client that trusts the server.
	host := strings.TrimPrefix(srv.URL, "https://")
	pushRef, err := name.ParseReference(host+"/tls/img:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(pushRef, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(host)
	// A name that is not loopback, so it is not insecure by default.
	fake := "registry.test:" + port
	dl := &dialLog{}
	tr := dl.transport(map[string]string{fake: host})

	secure := newEnv(t, pull.Config{}, pull.WithTransport(tr))
	_, err = secure.puller.Pull(context.Background(), fake+"/tls/img", pull.Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate on a secure registry: %v", err)
	}

	insecure := newEnv(t, pull.Config{InsecureRegistries: []string{fake}}, pull.WithTransport(tr))
	got, err := insecure.puller.Pull(context.Background(), fake+"/tls/img", pull.Options{}, nil)
	if err != nil {
		t.Fatalf("insecure registry over TLS: %v", err)
	}
	insecure.checkImage(t, got, img, fake+"/tls/img")

	// Loopback is insecure without configuration: TLS without
	// verification.
	lo := newEnv(t, pull.Config{})
	got, err = lo.puller.Pull(context.Background(), host+"/tls/img", pull.Options{}, nil)
	if err != nil {
		t.Fatalf("loopback TLS registry: %v", err)
	}
	lo.checkImage(t, got, img, host+"/tls/img")
}

func TestInsecureRegistryCIDR(t *testing.T) {
	srv := tlsRegistry(t)
	img, _ := fixtures.SmallImage(101)
	host := strings.TrimPrefix(srv.URL, "https://")
	pushRef, _ := name.ParseReference(host+"/cidr/img:latest", name.Insecure)
	if err := remote.Write(pushRef, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(host)
	// 127.0.0.2 is loopback too; make it look foreign by listing only a
	// CIDR that covers it, through a hostname-less IP the test maps.
	dl := &dialLog{}
	tr := dl.transport(map[string]string{"10.20.30.40:" + port: host})
	e := newEnv(t, pull.Config{InsecureRegistries: []string{"10.20.0.0/16"}}, pull.WithTransport(tr))
	got, err := e.puller.Pull(context.Background(), "10.20.30.40:"+port+"/cidr/img", pull.Options{}, nil)
	if err != nil {
		t.Fatalf("registry in an insecure CIDR: %v", err)
	}
	e.checkImage(t, got, img, "10.20.30.40:"+port+"/cidr/img")
	e2 := newEnv(t, pull.Config{}, pull.WithTransport(tr))
	if _, err := e2.puller.Pull(context.Background(), "10.20.30.40:"+port+"/cidr/img", pull.Options{}, nil); err == nil {
		t.Error("a registry outside every insecure CIDR was reached without verifying its certificate")
	}
}

// Foreign layers are fetched from their URLs, as dockerd does; the
// registry never had them.
func TestForeignLayerFromURL(t *testing.T) {
	reg := fixtures.StartRegistry(t)
	tarData := fileTar(t, "foreign/file", bytes.Repeat([]byte("foreign layer "), 5000))
	foreign, err := fixtures.NewLayer(tarData, fixtures.Gzip, fixtures.DockerSchema2)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := foreign.Compressed()
	blob, _ := io.ReadAll(rc)
	rc.Close()
	var served int
	var mu sync.Mutex
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served++
		mu.Unlock()
		http.ServeContent(w, r, "layer.tar.gz", fixedTime, bytes.NewReader(blob))
	}))
	t.Cleanup(files.Close)
	normal := specLayer(t, fixtures.SmallMixedLayer(110), fixtures.Gzip, fixtures.DockerSchema2)
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: foreignLayer{foreign}, MediaType: types.DockerForeignLayer, URLs: []string{files.URL + "/layer.tar.gz"}},
		mutate.Addendum{Layer: normal, MediaType: types.DockerLayer})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pushImage(t, reg, img, "foreign/img:latest")
	if n := reg.Requests(http.MethodPut, "/blobs/"); n != 2 {
		t.Fatalf("%d blob uploads, want 2 (config and the normal layer): the foreign layer must not be pushed", n)
	}
	e := newEnv(t, pull.Config{})
	got, _ := e.pull(t, reg.Ref("foreign/img"), pull.Options{})
	e.checkImage(t, got, img, reg.Host+"/foreign/img")
	if served == 0 {
		t.Error("the foreign URL was not used")
	}
	if n := reg.Requests(http.MethodGet, "/blobs/"+blobDigest(t, foreign)); n != 0 {
		t.Errorf("the foreign layer was asked of the registry %d times", n)
	}
}

// foreignLayer reports the foreign media type, so pushing skips it as
// registries expect.
type foreignLayer struct{ v1.Layer }

func (foreignLayer) MediaType() (types.MediaType, error) { return types.DockerForeignLayer, nil }

// fakeRegistry answers /v2/ and one manifest with fixed content.
func fakeRegistry(t *testing.T, contentType string, manifest []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasSuffix(r.URL.Path, "/manifests/latest"):
			w.Header().Set("Content-Type", contentType)
			w.Write(manifest)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestMalformedManifests(t *testing.T) {
	e := newEnv(t, pull.Config{})
	for _, tc := range []struct {
		name, ct, body, want string
	}{
		{"not json", string(types.DockerManifestSchema2), "{not json", "malformed manifest"},
		{"unknown type", "application/vnd.example+json", `{"schemaVersion":2,"mediaType":"application/vnd.example+json"}`, "unsupported manifest media type"},
		{"schema1", string(types.DockerManifestSchema1), `{"schemaVersion":1,"mediaType":"` + string(types.DockerManifestSchema1) + `"}`, "schema1"},
		{"bad layer type", string(types.OCIManifestSchema1), `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10},"layers":[{"mediaType":"application/x-weird","digest":"sha256:` + strings.Repeat("b", 64) + `","size":5}]}`, "unsupported layer media type"},
		{"missing config blob", string(types.OCIManifestSchema1), `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":10},"layers":[]}`, "config"},
	} {
		host := fakeRegistry(t, tc.ct, []byte(tc.body))
		_, err := e.puller.Pull(context.Background(), host+"/bad/img", pull.Options{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if len(e.store.Images(context.Background())) != 0 {
		t.Error("an image was recorded")
	}
}
