package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/streams/rtsp"
)

type fakeCameras []rtsp.Status

func (f fakeCameras) Statuses() []rtsp.Status { return f }

func TestCameraEndpoints(t *testing.T) {
	cams := fakeCameras{{ID: "gate", State: rtsp.StateLive, Width: 1280}, {ID: "alley", State: rtsp.StateFailed, LastError: "401 Unauthorized"}}
	a, err := New(Deps{Cameras: cams, Registry: prometheus.NewRegistry(), Open: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	get := func(path string, want int) map[string]any {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
		if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: headers %v", path, resp.Header)
		}
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	list := get("/v1/cameras", 200)["cameras"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["id"] != "alley" { // by id
		t.Fatalf("list %v", list)
	}
	one := get("/v1/cameras/alley", 200)
	if one["state"] != "failed" || one["last_error"] != "401 Unauthorized" {
		t.Fatalf("camera %v", one)
	}
	nf := get("/v1/cameras/nope", 404)
	if nf["error"] == "" || nf["request_id"] == "" {
		t.Fatalf("404 body %v", nf)
	}
	get("/v2/whatever", 404)
	if get("/healthz", 200)["status"] != "ok" {
		t.Fatal("health")
	}
	resp, _ := http.Post(srv.URL+"/v1/cameras", "application/json", nil)
	if resp.StatusCode != http.StatusServiceUnavailable { // no registry without a database
		t.Fatalf("POST /v1/cameras: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// TestNoDatabaseRefusesAndMetricsToken: a node without a database (no tokens to check) refuses
// every API call instead of serving it to anyone; /metrics asks for its token when one is set.
func TestNoDatabaseRefusesAndMetricsToken(t *testing.T) {
	a, err := New(Deps{Cameras: fakeCameras{}, Registry: prometheus.NewRegistry(), MetricsToken: "m3trics"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	for path, want := range map[string]int{"/v1/cameras": 503, "/v1/events": 503, "/healthz": 200} {
		if got := get(path, ""); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
	if get("/metrics", "") != 401 || get("/metrics", "wrong") != 401 || get("/metrics", "m3trics") != 200 {
		t.Error("/metrics does not hold to its token")
	}
}
