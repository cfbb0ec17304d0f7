package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// specPath turns a ServeMux pattern's path into its OpenAPI form: "/{$}" is "/", and a subtree
// ("/static/") is "/static/{path}".
func specPath(p string) string {
	p = strings.TrimSuffix(p, "{$}")
	if p != "/" && strings.HasSuffix(p, "/") {
		p += "{path}"
	}
	return p
}

type operation struct {
	Roles     []string                  `yaml:"x-vigil-roles"`
	Auth      string                    `yaml:"x-vigil-auth"`
	Summary   string                    `yaml:"summary"`
	Responses map[string]map[string]any `yaml:"responses"`
}

// TestOpenAPIMatchesRoutes: every route the API serves has its entry in api/openapi.yaml with the
// same roles (or how it is protected instead), and every entry is a route; each operation says
// what it answers, and those behind a token say what a missing token and a wrong role get.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var spec struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]operation `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.1") {
		t.Fatalf("openapi: %q, want 3.1.x", spec.OpenAPI)
	}
	a, err := New(Deps{Registry: prometheus.NewRegistry()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, r := range a.Routes() {
		path, method := specPath(r.Path), strings.ToLower(r.Method)
		served[method+" "+path] = true
		op, ok := spec.Paths[path][method]
		if !ok {
			t.Errorf("%s %s is served but not in openapi.yaml", r.Method, path)
			continue
		}
		if op.Summary == "" {
			t.Errorf("%s %s: no summary", r.Method, path)
		}
		switch r.Auth {
		case "bearer":
			if op.Auth != "" && op.Auth != "bearer" {
				t.Errorf("%s %s: x-vigil-auth %q, the route takes a bearer token", r.Method, path, op.Auth)
			}
			got, want := slices.Sorted(slices.Values(op.Roles)), slices.Sorted(slices.Values(r.Roles))
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: x-vigil-roles %v, the route allows %v", r.Method, path, got, want)
			}
			for _, code := range []string{"401", "403"} {
				if op.Responses[code] == nil {
					t.Errorf("%s %s: no %s response", r.Method, path, code)
				}
			}
		default:
			if op.Auth != r.Auth || len(op.Roles) != 0 {
				t.Errorf("%s %s: x-vigil-auth %q roles %v, want %q and no roles", r.Method, path, op.Auth, op.Roles, r.Auth)
			}
		}
		ok2xx := false
		for code := range op.Responses {
			ok2xx = ok2xx || strings.HasPrefix(code, "2")
		}
		if !ok2xx {
			t.Errorf("%s %s: no success response", r.Method, path)
		}
	}
	for path, ops := range spec.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !served[method+" "+path] {
				t.Errorf("openapi.yaml has %s %s, which the API does not serve", strings.ToUpper(method), path)
			}
		}
	}
	// The contract is served.
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(OpenAPI) {
		t.Fatalf("GET /v1/openapi.yaml: %d, %d bytes", resp.StatusCode, len(body))
	}
}
