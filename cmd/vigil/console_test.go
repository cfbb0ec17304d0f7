package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/camsim"
	"github.com/vigil-oss/vigil/internal/config"
	"github.com/vigil-oss/vigil/internal/testdata"
	"github.com/vigil-oss/vigil/internal/testenv"
	"github.com/vigil-oss/vigil/models"
)

// consoleRunner finds node, Chromium and the test driver's modules (web/test: npm ci), or skips
// (fails under CI: scripts/test.sh installs them).
func consoleRunner(t *testing.T) (node, dir string) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir = filepath.Join(filepath.Dir(here), "..", "..", "web", "test")
	node, err := exec.LookPath("node")
	missing := ""
	switch {
	case err != nil:
		missing = "node"
	case !fileExists("/usr/bin/chromium"):
		missing = "chromium (apt-get install chromium)"
	case !fileExists(filepath.Join(dir, "node_modules", "playwright-core")):
		missing = "web/test/node_modules (npm ci --prefix web/test)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("console tests need %s (scripts/test.sh installs it)", missing)
		}
		t.Skipf("no %s", missing)
	}
	return node, dir
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// artifacts is where the browser tests leave their screenshots: $VIGIL_TEST_ARTIFACTS, else
// test-artifacts/ at the repository's root.
func artifacts(t *testing.T, name string) string {
	dir := os.Getenv("VIGIL_TEST_ARTIFACTS")
	if dir == "" {
		_, here, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(here), "..", "..", "test-artifacts")
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInChromium: the console in a real browser against vigil serve and camsim. An
// operator signs in (a wrong token is refused with a message), every tile of the camera wall plays
// decoded video through WHEP within 2 s, and the alert feed shows the watchlisted person camsim
// walks past, with the best shot. Screenshots in test-artifacts/console.
func TestConsoleInChromium(t *testing.T) {
	node, dir := consoleRunner(t)
	td := testdata.Dir()
	if _, err := models.Dir(os.Getenv("VIGIL_MODELS")); err != nil || td == "" {
		t.Skip("no models or testdata")
	}
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	_, out, errs := runCmd("token", "create", "--role", "operator", "--name", "police post 1", "--data", data)
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, "vgl_") {
		t.Fatalf("token: %q %s", out, errs)
	}
	gallery := filepath.Join(data, "gallery.json")
	if code, _, errs := runCmd("enroll", "--name", "obama", "--list", "watchlist", "--gallery", gallery, filepath.Join(td, "faces/obama/2.jpg")); code != 0 {
		t.Fatalf("enroll: %s", errs)
	}
	lib, _ := camsim.LoadLibrary(td)
	clip, err := camsim.SmallClip(context.Background(), lib)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	simAddr := freeAddrT(t)
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: simAddr, Cameras: 2}, []*camsim.Clip{clip}, log)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.FPS = 5
	cfg.Pipeline.Gallery = gallery
	cfg.Footage.Enabled = false
	cfg.Live.UDPAddr = "127.0.0.1:0"
	cfg.Database.URL = config.Secret(dbURL)
	cfg.AddCameras([]string{"rtsp://" + simAddr + "/cam/001", "rtsp://" + simAddr + "/cam/002"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, func(a string) { addr <- a }) }()
	base := "http://" + <-addr

	shots := artifacts(t, "console")
	cmd := exec.Command(node, "console.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE="+base, "TOKEN="+token, "WATCH=obama", "OUT="+shots)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runDone := make(chan error, 1)
	go func() { runDone <- cmd.Run() }()
	select {
	case err = <-runDone:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the browser test did not finish in 2 minutes: %s", stderr.String())
	}
	if err != nil {
		t.Fatalf("browser: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	var res struct {
		Steps []struct {
			Name    string
			Message string
			Who     string
			Tiles   []struct {
				Camera                      string
				FirstFrameMs, Width, Height int
			}
			FramesAfter1s  []int
			Camera         string
			SnapshotLoaded bool
			Errors         []string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.Steps) != 4 {
		t.Fatalf("browser output: %v\n%s", err, stdout.String())
	}
	bad, wall, alert, cerrs := res.Steps[0], res.Steps[1], res.Steps[2], res.Steps[3]
	if !strings.Contains(bad.Message, "not valid") {
		t.Errorf("wrong token: %q", bad.Message)
	}
	if !strings.Contains(wall.Who, "police post 1") || !strings.Contains(wall.Who, "operator") {
		t.Errorf("signed in as %q", wall.Who)
	}
	if len(wall.Tiles) != 2 {
		t.Fatalf("wall tiles %+v", wall.Tiles)
	}
	for i, tile := range wall.Tiles {
		if tile.FirstFrameMs <= 0 || tile.FirstFrameMs > 2000 || tile.Width != 320 || tile.Height != 240 {
			t.Errorf("tile %+v: want 320x240 presented within 2 s of the offer", tile)
		}
		if wall.FramesAfter1s[i] <= 10 {
			t.Errorf("tile %s: %d frames presented a second after the first", tile.Camera, wall.FramesAfter1s[i])
		}
		t.Logf("live view %s: first frame presented %d ms after the offer", tile.Camera, tile.FirstFrameMs)
	}
	if !strings.Contains(alert.Who, "obama") || (alert.Camera != "cam001" && alert.Camera != "cam002") || !alert.SnapshotLoaded {
		t.Errorf("alert %+v", alert)
	}
	if len(cerrs.Errors) > 0 {
		t.Errorf("console errors in the page: %v", cerrs.Errors)
	}
	for _, f := range []string{"wall.png", "alerts.png"} {
		if st, err := os.Stat(filepath.Join(shots, f)); err != nil || st.Size() < 5000 {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
