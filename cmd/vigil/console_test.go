package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
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
		testenv.Missing(t, "the console tests need %s", missing)
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
	td := testenv.Testdata(t)
	testenv.Models(t)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	_, out, errs := runCmd("token", "create", "--role", "operator", "--name", "police post 1", "--data", data)
	token := strings.TrimSpace(out)
	if !strings.HasPrefix(token, "vgl_") {
		t.Fatalf("token: %q %s", out, errs)
	}
	_, out, _ = runCmd("token", "create", "--role", "patrol", "--name", "patrol officer 7", "--data", data)
	patrolToken := strings.TrimSpace(out)
	_, out, _ = runCmd("token", "create", "--role", "investigator", "--name", "detective 3", "--data", data)
	investigatorToken := strings.TrimSpace(out)
	_, out, _ = runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	adminToken := strings.TrimSpace(out)
	if code, _, errs := runCmd("doors", "add", "--id", "gate-1", "--camera", "cam001", "--data", data); code != 0 {
		t.Fatalf("doors add: %s", errs)
	}
	if code, _, errs := runCmd("doors", "add", "--id", "car-gate", "--camera", "cam002", "--camera-opens", "plates", "--area", "carpark-1", "--data", data); code != 0 {
		t.Fatalf("doors add: %s", errs)
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
	cfg.Footage.SegmentLength = config.Duration(4 * time.Second) // the review timeline has spans soon
	cfg.Live.UDPAddr = "127.0.0.1:0"
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + simAddr + "/cam/001", "rtsp://" + simAddr + "/cam/002"})
	cfg.Cameras[0].Map = &[2]float64{0.25, 0.25} // on the site map, for "nearest officer"
	cfg.Cameras[1].Map = &[2]float64{0.75, 0.75}
	n := startNode(t, cfg)
	base := n.URL

	shots := artifacts(t, "console")
	stdout := runBrowser(t, node, dir, "console.mjs", "BASE="+base, "TOKEN="+token, "PATROL_TOKEN="+patrolToken,
		"INVESTIGATOR_TOKEN="+investigatorToken, "ADMIN_TOKEN="+adminToken, "PLAN="+filepath.Join(td, "groups/couple.jpg"), "DOOR=gate-1", "PHOTO="+filepath.Join(td, "faces/obama/3.jpg"), "PLATE=B1234", "WATCH=obama", "OUT="+shots)
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
			// dispatch
			ReceivedMs                 int
			OfficerChip, PatrolSummary string
			PatrolStatus               string
			LiveFrames                 int
			// charts
			HourBars int
			Lists    []string
			Uptime   []struct{ Camera, Width string }
			// search
			FaceHits   []struct{ Event, Text string }
			Plates     []string
			FaceResult string
			// map
			PlacedDoor *struct{ X, Y float64 }
			Blinking   struct{ Camera, Alert string }
			PathPoints int
			MapState   string
			// audit
			AuditRows  [][]string
			AuditNamed [][2]string
			// roles
			PatrolFaceSearch, PatrolExport, OperatorRule int
			PatrolNav                                    []string
		}
	}
	if err := json.Unmarshal(stdout, &res); err != nil || len(res.Steps) != 10 {
		t.Fatalf("browser output: %v\n%s", err, stdout)
	}
	bad, wall, alert, disp, charts, search, smap, audited, roles, cerrs := res.Steps[0], res.Steps[1], res.Steps[2], res.Steps[3], res.Steps[4], res.Steps[5], res.Steps[6], res.Steps[7], res.Steps[8], res.Steps[9]
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
	if disp.ReceivedMs <= 0 || disp.ReceivedMs > 3000 || !strings.Contains(disp.OfficerChip, "patrol officer 7") ||
		!strings.Contains(disp.PatrolSummary, "obama") || disp.PatrolStatus != "on_scene" || disp.LiveFrames <= 0 {
		t.Errorf("dispatch %+v", disp)
	}
	t.Logf("dispatch reached the patrol page %d ms after the operator's click", disp.ReceivedMs)
	if charts.HourBars < 1 || len(charts.Uptime) != 2 || !strings.Contains(strings.Join(charts.Lists, "|"), "face · watchlist") {
		t.Errorf("charts %+v", charts)
	}
	for _, u := range charts.Uptime {
		if u.Width == "" || u.Width == "0%" {
			t.Errorf("camera %s uptime bar %q", u.Camera, u.Width)
		}
	}
	// Every face hit is one of obama's passages (the only face in camsim's clip), the best first.
	if len(search.FaceHits) == 0 || !strings.Contains(search.FaceHits[0].Text, "cam00") {
		t.Errorf("face search by upload: %+v %q", search.FaceHits, search.FaceResult)
	}
	if len(search.Plates) == 0 || !strings.Contains(search.Plates[0], "B12345") {
		t.Errorf("plate search: %v", search.Plates)
	}
	if smap.PlacedDoor == nil || smap.PlacedDoor.X < 0.4 || smap.PlacedDoor.X > 0.6 || smap.PlacedDoor.Y < 0.3 || smap.PlacedDoor.Y > 0.5 {
		t.Errorf("door dragged to (0.5, 0.4) is at %+v", smap.PlacedDoor)
	}
	if (smap.Blinking.Camera != "cam001" && smap.Blinking.Camera != "cam002") || smap.Blinking.Alert != "obama" {
		t.Errorf("blinking %+v", smap.Blinking)
	}
	if smap.PathPoints < 2 {
		t.Errorf("obama's path: %d points (%s)", smap.PathPoints, smap.MapState)
	}
	// Who searched for obama: the investigator's photo search (by whom it found) and the admin's
	// timeline on the map, each with its reason.
	found := map[string]bool{}
	for _, row := range audited.AuditRows {
		if len(row) >= 4 && row[3] == "case 2026-118" {
			found[row[2]] = true
		}
	}
	if !found["search.faces"] || !found["search.timeline"] {
		t.Errorf("the audit review of obama: %v", audited.AuditRows)
	}
	// People by name in the audit, their ids on hover.
	if !slices.ContainsFunc(audited.AuditNamed, func(n [2]string) bool { return n[0] == "obama" && n[1] != "" }) {
		t.Errorf("the audit names no one: %v", audited.AuditNamed)
	}
	if roles.PatrolFaceSearch != 403 || roles.PatrolExport != 403 || roles.OperatorRule != 403 {
		t.Errorf("roles: patrol face search %d, patrol export %d, operator rule edit %d; want 403 each", roles.PatrolFaceSearch, roles.PatrolExport, roles.OperatorRule)
	}
	if len(roles.PatrolNav) == 0 || roles.PatrolNav[0] != "Dispatches" {
		t.Errorf("patrol pages %v", roles.PatrolNav)
	}
	if len(cerrs.Errors) > 0 {
		t.Errorf("console errors in the page: %v", cerrs.Errors)
	}
	for _, f := range []string{"wall.png", "alerts.png", "dispatch-dialog.png", "patrol.png", "alerts-dispatched.png", "search-faces.png", "search-plates.png", "map.png", "charts.png", "audit.png"} {
		if st, err := os.Stat(filepath.Join(shots, f)); err != nil || st.Size() < 5000 {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
	// The flows that once broke in a real browser, on the same node (the plan is uploaded now).
	consoleFlows(t, node, dir, "BASE="+base, "LATE_URL=rtsp://"+simAddr+"/cam/002", "ADMIN_TOKEN="+adminToken, "OPERATOR_TOKEN="+token, "INVESTIGATOR_TOKEN="+investigatorToken, "PATROL_TOKEN="+patrolToken,
		"PHOTO="+filepath.Join(td, "faces/obama/3.jpg"), "PLATE_START=B123", "FRAGMENT=2345", "OUT="+shots)
	// Issue 19's flows: the property office and a resident on their phone.
	_, out, _ = runCmd("token", "create", "--role", "property", "--name", "property office", "--data", data)
	residentFlows(t, node, dir, base, adminToken, "PROPERTY_TOKEN="+strings.TrimSpace(out), "PHOTO="+filepath.Join(td, "faces/kit_harington/1.jpg"), "DOOR=gate-1", "OUT="+shots)
	n.Stop()
}
