package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSplitVersion(t *testing.T) {
	for in, want := range map[string][3]string{
		"/_ping":             {"", "/_ping", "ok"},
		"/v1.41/images/json": {"1.41", "/images/json", "ok"},
		"/volumes":           {"", "/volumes", "ok"},
		"/v1.x/images/json":  {"", "/v1.x/images/json", ""},
		"/v1.41":             {"", "/v1.41", ""},
	} {
		v, rest, ok := splitVersion(in)
		okS := ""
		if ok {
			okS = "ok"
		}
		if v != want[0] || rest != want[1] || okS != want[2] {
			t.Errorf("splitVersion(%q) = %q %q %v", in, v, rest, ok)
		}
	}
}

// The fast path must answer exactly like the routed handlers do.
func TestFastPingMatchesRoutedPing(t *testing.T) {
	s := New(Options{Version: "t"}, Backends{})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		fast := httptest.NewRecorder()
		s.http.Handler.ServeHTTP(fast, httptest.NewRequest(method, "/_ping", nil))
		routed := httptest.NewRecorder()
		s.echo.ServeHTTP(routed, httptest.NewRequest(method, "/v1.41/_ping", nil))
		if fast.Code != routed.Code || fast.Body.String() != routed.Body.String() {
			t.Fatalf("%s: fast %d %q, routed %d %q", method, fast.Code, fast.Body.String(), routed.Code, routed.Body.String())
		}
		for k := range routed.Header() {
			if fast.Header().Get(k) != routed.Header().Get(k) {
				t.Errorf("%s header %s: fast %q routed %q", method, k, fast.Header().Get(k), routed.Header().Get(k))
			}
		}
	}
}
