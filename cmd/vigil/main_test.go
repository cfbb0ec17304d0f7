package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("cameras:\n  - url: rtsp://admin:topsecret@127.0.0.1/cam/001\n"), 0o644)
	code, out, _ := runCmd("check-config", good)
	if code != 0 || !strings.Contains(out, "is valid") || strings.Contains(out, "topsecret") {
		t.Fatalf("good file: code %d\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("http:\n  addr: nowhere\ncameras:\n  - url: ftp://x\n"), 0o644)
	code, _, errs := runCmd("check-config", bad)
	if code != 1 || !strings.Contains(errs, "http.addr") || !strings.Contains(errs, "cameras[0]") {
		t.Fatalf("bad file: code %d: %s", code, errs)
	}
	if code, _, _ := runCmd("check-config"); code != 1 {
		t.Fatal("missing argument accepted")
	}
	if code, _, _ := runCmd("frobnicate"); code != 2 {
		t.Fatal("unknown command accepted")
	}
}

func TestModelsVerify(t *testing.T) {
	testenv.Models(t)
	code, out, errs := runCmd("models", "verify")
	if code != 0 || !strings.Contains(out, "all 11 model files verified") {
		t.Fatalf("code %d\n%s%s", code, out, errs)
	}
	code, _, errs = runCmd("models", "verify", "--dir", t.TempDir())
	if code != 1 || !strings.Contains(errs, "failed verification") {
		t.Fatalf("empty dir: code %d %s", code, errs)
	}
}

// TestServeReportsCameras runs serve against camsim and reads /v1/cameras and /metrics.
func TestServeReportsCameras(t *testing.T) {
	dir := testenv.Testdata(t)
	lib, err := camsim.LoadLibrary(dir)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := camsim.SmallClip(context.Background(), lib)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: "127.0.0.1:18754", Cameras: 2}, []*camsim.Clip{clip}, log)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.Pipeline.Enabled = false
	cfg.Database.Enabled = false
	cfg.HTTP.OpenWithoutDatabase = true
	cfg.AddCameras([]string{"rtsp://127.0.0.1:18754/cam/001", "rtsp://127.0.0.1:18754/cam/002", "rtsp://127.0.0.1:18754/cam/404"})
	n := startNode(t, cfg)
	base := n.URL
	deadline := time.Now().Add(8 * time.Second)
	for {
		resp, err := http.Get(base + "/v1/cameras")
		if err != nil {
			t.Fatal(err)
		}
		var raw []byte
		raw, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		var l struct {
			Cameras []map[string]any `json:"cameras"`
		}
		json.Unmarshal(raw, &l)
		states := ""
		for _, c := range l.Cameras {
			states += fmt.Sprint(c["id"], "=", c["state"], " ")
		}
		if states == "cam001=live cam002=live cam003=failed " {
			if l.Cameras[0]["width"].(float64) != 320 || l.Cameras[0]["codec"] != "H264" {
				t.Fatalf("camera fields: %v", l.Cameras[0])
			}
			if !strings.Contains(l.Cameras[2]["last_error"].(string), "404") {
				t.Fatalf("404 camera error: %v", l.Cameras[2]["last_error"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("states: %s", states)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_camera_up{camera="cam001"} 1`, `vigil_camera_state{camera="cam003",state="failed"} 1`, `vigil_camera_width_pixels{camera="cam002"} 320`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	resp, _ = http.Get(base + "/v1/cameras/cam404")
	if resp.StatusCode != 404 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("unknown camera: %d", resp.StatusCode)
	}
	resp.Body.Close()
	n.Stop()
}
