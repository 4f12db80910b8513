package httpapi

import (
	"net/http"
	"sync"
)

// fastPath answers the requests every docker CLI run starts with (HEAD and
// GET /_ping) without the router: they are most of what a busy daemon
// serves, and their answer never changes.
type fastPath struct {
	s       *Server
	next    http.Handler
	hdr     http.Header // ping's
	jsonHdr http.Header // every JSON answer's
}

func newFastPath(s *Server, next http.Handler) *fastPath {
	h := http.Header{}
	h.Set("Server", "berth/"+s.opts.Version+" (linux)")
	h.Set("Api-Version", s.opts.MaxAPIVersion)
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if s.opts.CORSHeader != "" {
		h.Set("Access-Control-Allow-Origin", s.opts.CORSHeader)
		h.Set("Access-Control-Allow-Headers", "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth")
		h.Set("Access-Control-Allow-Methods", "HEAD, GET, POST, DELETE, PUT, OPTIONS")
	}
	j := http.Header{}
	for _, k := range []string{"Server", "Api-Version", "Ostype", "Docker-Experimental", "Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods"} {
		if v, ok := h[k]; ok {
			j[k] = v
		}
	}
	j.Set("Content-Type", "application/json")
	return &fastPath{s: s, next: next, hdr: h, jsonHdr: j}
}

// splitVersion takes "/v1.41/images/json" apart without a regexp; ok is
// false for a prefix that is not a version.
func splitVersion(p string) (version, rest string, ok bool) {
	if len(p) < 3 || p[1] != 'v' || p[2] < '0' || p[2] > '9' {
		return "", p, true
	}
	for i := 2; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			return p[2:i], p[i:], true
		case c != '.' && (c < '0' || c > '9'):
			return "", p, false
		}
	}
	return "", p, false
}

var (
	okBody         = []byte("OK")
	contentLength0 = []string{"0"}
	contentLength2 = []string{"2"}
)

func (f *fastPath) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || f.s.accessLogOn(r) {
		f.next.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/_ping" {
		f.ping(w, r)
		return
	}
	if f.s.backends.Images != nil && r.Method == http.MethodGet && f.cachedImages(w, r) {
		return
	}
	f.next.ServeHTTP(w, r)
}

// isImageList reports whether path is /images/json, bare or under a
// version prefix the server accepts: the answer the response cache holds.
func (s *Server) isImageList(path string) bool {
	version, rest, ok := splitVersion(path)
	if !ok || rest != "/images/json" {
		return false
	}
	return version == "" || (!versionLess(version, s.opts.MinAPIVersion) && !versionLess(s.opts.MaxAPIVersion, version))
}

// cachedImages answers GET /images/json from the cache when it holds the
// answer for this query and this generation of the store.
func (f *fastPath) cachedImages(w http.ResponseWriter, r *http.Request) bool {
	if !f.s.isImageList(r.URL.Path) {
		return false
	}
	body, hit := f.s.imagesJSON.get(f.s.backends.Images.Generation(), r.URL.RawQuery, "")
	if !hit {
		return false
	}
	h := w.Header()
	for k, v := range f.jsonHdr {
		h[k] = v
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return true
}

func (f *fastPath) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range f.hdr {
		h[k] = v
	}
	if r.Method == http.MethodHead {
		h["Content-Length"] = contentLength0
		w.WriteHeader(http.StatusOK)
		return
	}
	h["Content-Length"] = contentLength2
	w.WriteHeader(http.StatusOK)
	w.Write(okBody)
}

// responseCache keeps the encoded answer of a read-only endpoint per query
// for as long as the state it was computed from (a generation number)
// holds. A stamp is the part of an answer that changes with time alone
// (the container list's Status texts): an answer is served only for the
// stamp it was made with, and a newer one replaces it.
type responseCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]stampedAnswer
}

type stampedAnswer struct {
	stamp string
	body  []byte
}

func (c *responseCache) get(gen uint64, key, stamp string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.entries[key]
	if c.gen != gen || !ok || a.stamp != stamp {
		return nil, false
	}
	return a.body, true
}

func (c *responseCache) put(gen uint64, key, stamp string, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.entries == nil {
		c.gen, c.entries = gen, map[string]stampedAnswer{}
	}
	if _, ok := c.entries[key]; ok || len(c.entries) < 256 {
		c.entries[key] = stampedAnswer{stamp: stamp, body: body}
	}
}
