package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestServeDetectURL: a camera configured with its sub-stream (detect_url) is analysed on it,
// identifies the enrolled resident and reads the plate from its main stream's pictures, and
// GET /v1/cameras shows what became of its frames.
func TestServeDetectURL(t *testing.T) {
	td := testenv.Testdata(t)
	testenv.Models(t)
	data := t.TempDir()
	gallery := filepath.Join(data, "gallery.json")
	if code, out, errs := runCmd("enroll", "--gallery", gallery, "--name", "Barack Obama",
		filepath.Join(td, "faces/obama/2.jpg"), filepath.Join(td, "faces/obama/3.jpg")); code != 0 {
		t.Fatalf("enroll: %d %s %s", code, out, errs)
	}
	lib, _ := camsim.LoadLibrary(td)
	p := camsim.Params{Width: 640, Height: 360, FPS: 10, GOP: 1, Bitrate: 600, Seconds: 6,
		Sub: &camsim.SubParams{Width: 320, Height: 180, GOP: 0.5, Bitrate: 200}}
	evs := []camsim.Event{
		{Kind: "face", Identity: "obama", Photo: "faces/obama/1.jpg", Start: 0.3, Duration: 3, Size: 110, Y: 0.4},
		{Kind: "plate", Plate: lib.Plates[0].Text, Start: 3.4, Duration: 2.4, Size: 150},
	}
	for i := range evs {
		if err := lib.Resolve(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	clip, err := camsim.BuildClip(context.Background(), lib, p, evs, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddrT(t)
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: addr, Cameras: 1}, []*camsim.Clip{clip}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	client := tokenClient(t, "investigator", "investigator", data)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Gallery = gallery
	cfg.Pipeline.FPS = 4
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.Footage.Enabled = false
	cfg.Cameras = []config.Camera{{ID: "cam001", URL: config.SecretURL("rtsp://" + addr + "/cam/001"), DetectURL: config.SecretURL("rtsp://" + addr + "/cam/001/sub")}}
	n := startNode(t, cfg)
	defer n.Stop()

	type stored struct {
		Events []struct {
			Kind     string
			PersonID *string   `json:"person_id"`
			Plate    *string   `json:"plate"`
			BBox     []float64 `json:"bbox"` // x, y, w, h
		} `json:"events"`
	}
	var face, plate bool
	var faceBox float64
	deadline := time.Now().Add(40 * time.Second)
	for !(face && plate) {
		if time.Now().After(deadline) {
			t.Fatalf("within 40 s: resident identified %v, plate read %v", face, plate)
		}
		time.Sleep(500 * time.Millisecond)
		var got stored
		r, err := client.Get(n.URL + "/v1/events?camera=cam001&reason=test")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(r.Body).Decode(&got)
		r.Body.Close()
		for _, e := range got.Events {
			if e.Kind == "face" && e.PersonID != nil && *e.PersonID == "barack-obama" {
				face = true
				if len(e.BBox) == 4 {
					faceBox = e.BBox[3]
				}
			}
			if e.Kind == "plate" && e.Plate != nil && *e.Plate == lib.Plates[0].Text {
				plate = true
			}
		}
	}
	// camsim's face is 110 px on the 640x360 main stream, 55 px on the sub-stream: the box says
	// the best shot is the main stream's.
	if faceBox < 80 {
		t.Errorf("best shot's face box is %.0f px high: not from the main stream", faceBox)
	}
	r, err := client.Get(n.URL + "/v1/cameras/cam001")
	if err != nil {
		t.Fatal(err)
	}
	var cam struct {
		Width    int
		Analysis *struct{ Sampled, Offered, Dropped uint64 }
	}
	json.NewDecoder(r.Body).Decode(&cam)
	r.Body.Close()
	if cam.Width != 640 || cam.Analysis == nil || cam.Analysis.Sampled == 0 || cam.Analysis.Offered == 0 {
		t.Fatalf("camera %+v (analysis %+v)", cam, cam.Analysis)
	}
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `vigil_pipeline_shots_total{camera="cam001",result="ok"}`) {
		t.Error("no shot came from the main stream")
	}
	t.Logf("face box %.0f px, analysis %+v", faceBox, *cam.Analysis)
}
