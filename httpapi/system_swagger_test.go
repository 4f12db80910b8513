package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// loadSwagger reads swagger.yaml from the github.com/moby/moby/api module
// this package is built with.
func loadSwagger(t *testing.T) map[string]any {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.CommandContext(t.Context(), goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/moby/moby/api").Output()
	if err != nil {
		t.Fatalf("locate moby api module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "swagger.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse swagger.yaml: %v", err)
	}
	return doc
}

// schemaChecker validates decoded JSON against a Swagger 2.0 schema:
// required properties, JSON types and enums. null passes (dockerd sends
// null for empty lists and maps; the schema marks few fields nullable).
type schemaChecker struct {
	t      *testing.T
	defs   map[string]any
	errs   []string
	extras []string
}

func (c *schemaChecker) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name := strings.TrimPrefix(ref, "#/definitions/")
		def, ok := c.defs[name].(map[string]any)
		if !ok {
			c.errs = append(c.errs, "unresolved $ref "+ref)
			return map[string]any{}
		}
		s = def
	}
}

func (c *schemaChecker) check(path string, schema map[string]any, v any) {
	schema = c.resolve(schema)
	if all, ok := schema["allOf"].([]any); ok {
		for _, sub := range all {
			c.check(path, sub.(map[string]any), v)
		}
	}
	if v == nil {
		return
	}
	typ, _ := schema["type"].(string)
	fail := func(format string, args ...any) {
		c.errs = append(c.errs, path+": "+fmt.Sprintf(format, args...))
	}
	switch typ {
	case "object", "":
		obj, ok := v.(map[string]any)
		if !ok {
			if typ == "object" {
				fail("want object, got %T", v)
			}
			return
		}
		props, _ := schema["properties"].(map[string]any)
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					fail("required property %q missing", r)
				}
			}
		}
		addl, _ := schema["additionalProperties"].(map[string]any)
		for k, val := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				c.check(path+"."+k, ps, val)
			} else if addl != nil {
				c.check(path+"."+k, addl, val)
			} else if props != nil {
				c.extras = append(c.extras, path+"."+k)
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			fail("want array, got %T", v)
			return
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, el := range arr {
				c.check(fmt.Sprintf("%s[%d]", path, i), items, el)
			}
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			fail("want string, got %T (%v)", v, v)
			return
		}
		if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == s }) {
			fail("%q not in enum %v", s, enum)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			fail("want integer, got %T (%v)", v, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			fail("want number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("want boolean, got %T (%v)", v, v)
		}
	default:
		fail("unknown schema type %q", typ)
	}
}

func responseSpec(t *testing.T, doc map[string]any, path, method string) map[string]any {
	t.Helper()
	paths := doc["paths"].(map[string]any)
	op, ok := paths[path].(map[string]any)[method].(map[string]any)
	if !ok {
		t.Fatalf("swagger has no %s %s", method, path)
	}
	return op["responses"].(map[string]any)["200"].(map[string]any)
}

func TestSwaggerSchemas(t *testing.T) {
	doc := loadSwagger(t)
	defs := doc["definitions"].(map[string]any)
	ts := startUnix(t, Options{Version: "0.1.0", GitCommit: "abc", BuildTime: "2026-01-02T03:04:05Z"}, Backends{})

	for _, path := range []string{"/version", "/info"} {
		resp, body := ts.do(t, http.MethodGet, "/v1.41"+path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		spec := responseSpec(t, doc, path, "get")
		c := &schemaChecker{t: t, defs: defs}
		c.check(path, spec["schema"].(map[string]any), v)
		for _, e := range c.errs {
			t.Errorf("%s does not match swagger: %s", path, e)
		}
		if len(c.extras) > 0 {
			// Fields older API versions had are fine; list them for review.
			t.Logf("%s: properties not in the current schema: %v", path, c.extras)
		}
	}

	// The schema walker must catch what it claims to: feed it bad shapes.
	bad := &schemaChecker{t: t, defs: defs}
	bad.check("info", responseSpec(t, doc, "/info", "get")["schema"].(map[string]any),
		map[string]any{"NCPU": "2", "CgroupVersion": "3", "Labels": "x", "Plugins": map[string]any{"Volume": []any{1.0}}})
	if len(bad.errs) != 4 {
		t.Errorf("checker found %d errors in a bad /info, want 4: %v", len(bad.errs), bad.errs)
	}
	badV := &schemaChecker{t: t, defs: defs}
	badV.check("version", responseSpec(t, doc, "/version", "get")["schema"].(map[string]any),
		map[string]any{"Components": []any{map[string]any{"Name": "Engine"}}, "Platform": map[string]any{}})
	if len(badV.errs) != 2 {
		t.Errorf("checker found %d errors in a bad /version, want 2 (missing Version, Platform.Name): %v", len(badV.errs), badV.errs)
	}

	for _, method := range []string{"get", "head"} {
		spec := responseSpec(t, doc, "/_ping", method)
		resp, body := ts.do(t, strings.ToUpper(method), "/_ping")
		if resp.StatusCode != 200 {
			t.Fatalf("ping %s: %d", method, resp.StatusCode)
		}
		headers := spec["headers"].(map[string]any)
		for name, hs := range headers {
			h := hs.(map[string]any)
			got := resp.Header.Values(name)
			if len(got) != 1 {
				t.Errorf("ping %s: header %s = %v, want one value", method, name, got)
				continue
			}
			switch h["type"] {
			case "boolean":
				if _, err := strconv.ParseBool(got[0]); err != nil {
					t.Errorf("ping %s: header %s = %q, not boolean", method, name, got[0])
				}
			}
			if enum, ok := h["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == got[0] }) {
				t.Errorf("ping %s: header %s = %q not in %v", method, name, got[0], enum)
			}
			if def, ok := h["default"].(string); ok && (name == "Cache-Control" || name == "Pragma") && got[0] != def {
				t.Errorf("ping %s: header %s = %q, want %q", method, name, got[0], def)
			}
		}
		if method == "get" && string(body) != "OK" {
			t.Errorf("ping body %q", body)
		}
	}
}
