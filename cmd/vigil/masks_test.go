package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/core/privacy"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// grayColumns decodes an MP4's frames scaled to 64×36 grey and returns each column's mean
// brightness over all frames, and how many frames there were.
func grayColumns(t *testing.T, mp4 []byte) ([64]float64, int) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", "pipe:0", "-vf", "scale=64:36:flags=neighbor,format=gray", "-f", "rawvideo", "pipe:1")
	cmd.Stdin = bytes.NewReader(mp4)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("decoding the clip: %v", err)
	}
	var cols [64]float64
	frames := len(raw) / (64 * 36)
	if frames == 0 {
		t.Fatal("the clip has no frames")
	}
	for i, v := range raw[:frames*64*36] {
		cols[i%64] += float64(v)
	}
	for i := range cols {
		cols[i] /= float64(frames * 36)
	}
	return cols, frames
}

// footageOf is GET /v1/cameras/{camera}/footage of [from, to]: the MP4 as recorded.
func footageOf(t *testing.T, c *http.Client, base, camera string, from, to time.Time) []byte {
	t.Helper()
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}, "reason": {"case 2026-131"}}
	r, err := c.Get(base + "/v1/cameras/" + camera + "/footage?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 {
		t.Fatalf("footage of %s: %d %s", camera, r.StatusCode, b)
	}
	return b
}

func doJSON(t *testing.T, c *http.Client, method, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

// TestPrivacyMasks: a camera masked whole is sampled but yields no face event while the same
// scene unmasked does; masks are set at run time by an admin only (audited, checked); a case
// file of a masked camera's footage has the masked region black in every decoded frame and
// names the masks, while the recording itself is kept intact.
func TestPrivacyMasks(t *testing.T) {
	testenv.Models(t)
	sim := startCamsim(t, 2)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	admin := tokenClient(t, "admin", "estate office", data)
	inv := tokenClient(t, "investigator", "detective 3", data)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.FPS = 4
	cfg.Live.Enabled = false
	cfg.Footage.SegmentLength = config.Duration(2 * time.Second)
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + sim + "/cam/001", "rtsp://" + sim + "/cam/002"})
	whole := privacy.Masks{{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}
	cfg.Cameras[0].Masks = whole
	n := startNode(t, cfg)
	base := n.URL

	count := func(camera string) int {
		var res struct{ Events []struct{ ID string } }
		getJSON(t, admin, base+"/v1/events?kind=face&camera="+camera+"&limit=500&reason=mask+test", &res)
		return len(res.Events)
	}
	waitFor(t, 90*time.Second, "face events on the unmasked camera", func() bool { return count("cam002") >= 2 })
	time.Sleep(2 * time.Second)
	var cams struct {
		Cameras []struct {
			ID       string
			Analysis *struct{ Sampled uint64 }
		}
	}
	getJSON(t, admin, base+"/v1/cameras", &cams)
	for _, c := range cams.Cameras {
		if c.ID == "cam001" && (c.Analysis == nil || c.Analysis.Sampled == 0) {
			t.Fatalf("the masked camera was not sampled: %+v", c)
		}
	}
	if got := count("cam001"); got != 0 {
		t.Fatalf("the camera masked whole gave %d face events", got)
	}

	// Masks at run time: admins only, checked, audited.
	left := `{"polygons": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]}`
	if code, _ := doJSON(t, inv, "PUT", base+"/v1/cameras/cam002/masks", left); code != 403 {
		t.Fatalf("an investigator set masks: %d", code)
	}
	for _, bad := range []string{`{"polygons": [[[0, 0], [2, 0], [0, 1]]]}`, `{"polygons": [[[0, 0], [1, 1]]]}`, `{}`} {
		if code, b := doJSON(t, admin, "PUT", base+"/v1/cameras/cam002/masks", bad); code != 400 {
			t.Fatalf("mask %s: %d %s", bad, code, b)
		}
	}
	if code, _ := doJSON(t, admin, "PUT", base+"/v1/cameras/nocam/masks", left); code != 404 {
		t.Fatalf("unknown camera: %d", code)
	}
	if code, b := doJSON(t, admin, "PUT", base+"/v1/cameras/cam002/masks", left); code != 200 {
		t.Fatalf("set masks: %d %s", code, b)
	}
	var got struct{ Polygons privacy.Masks }
	getJSON(t, inv, base+"/v1/cameras/cam002/masks", &got)
	if len(got.Polygons) != 1 || got.Polygons[0][1] != [2]float64{0.5, 0} {
		t.Fatalf("masks read back: %+v", got)
	}
	r, _ := admin.Get(base + "/v1/audit?action=camera.masks")
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Contains(b, []byte(`camera.masks`)) || !bytes.Contains(b, []byte(`estate office`)) {
		t.Fatalf("the mask change is not audited: %s", b)
	}

	// A case file of the last 12 s of cam002: the left half black in every frame, the masks named.
	to := time.Now().UTC()
	from := to.Add(-12 * time.Second)
	body, _ := json.Marshal(map[string]any{"reason": "case 2026-131", "ranges": []map[string]any{{"camera": "cam002", "from": from, "to": to}}})
	code, b := doJSON(t, inv, "POST", base+"/v1/exports", string(body))
	if code != 201 {
		t.Fatalf("export: %d %s", code, b)
	}
	var exp struct {
		Export struct {
			Files []struct{ Name, URL string }
			Masks []struct {
				Camera   string
				Polygons privacy.Masks
				Files    []string
			}
			Ranges []struct {
				Footage string `json:"footage_file"`
			}
		}
	}
	if err := json.Unmarshal(b, &exp); err != nil || len(exp.Export.Masks) != 1 || exp.Export.Masks[0].Camera != "cam002" ||
		len(exp.Export.Masks[0].Files) != 1 || exp.Export.Ranges[0].Footage != exp.Export.Masks[0].Files[0] {
		t.Fatalf("the manifest does not name the masks: %s", b)
	}
	var clip []byte
	for _, f := range exp.Export.Files {
		if f.Name == exp.Export.Ranges[0].Footage {
			r, err := inv.Get(base + f.URL)
			if err != nil {
				t.Fatal(err)
			}
			clip, _ = io.ReadAll(r.Body)
			r.Body.Close()
		}
	}
	cols, frames := grayColumns(t, clip)
	for x := 0; x < 31; x++ {
		if cols[x] > 2 {
			t.Fatalf("exported column %d of 64 has mean %.1f over %d frames: not black", x, cols[x], frames)
		}
	}
	rightMean := 0.0
	for x := 34; x < 64; x++ {
		rightMean += cols[x] / 30
	}
	if rightMean < 20 {
		t.Fatalf("the unmasked half is dark too (%.1f)", rightMean)
	}
	// The recording itself is intact: played back as recorded, its left half shows the scene.
	orig := footageOf(t, inv, base, "cam002", from, to)
	ocols, _ := grayColumns(t, orig)
	leftMean := 0.0
	for x := 0; x < 31; x++ {
		leftMean += ocols[x] / 31
	}
	if leftMean < 20 {
		t.Fatalf("the recording's left half is dark (%.1f): it was changed", leftMean)
	}
	t.Logf("export: %d frames, masked half mean ≤ 2, unmasked half %.0f; recording's left half %.0f", frames, rightMean, leftMean)

	// The admin draws a second region on the camera's still in the console.
	node, dir := consoleRunner(t)
	_, tok, _ := runCmd("token", "create", "--role", "admin", "--name", "privacy officer", "--data", data)
	out := runBrowser(t, node, dir, "masks.mjs", "BASE="+base, "TOKEN="+strings.TrimSpace(tok), "CAMERA=cam002", "OUT="+artifacts(t, "masks"))
	var ed struct {
		StillWidth, Before, Drawn int
		State                     string
		Saved                     privacy.Masks
		Errors                    []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &ed); err != nil {
		t.Fatalf("masks.mjs printed %s: %v", out, err)
	}
	if ed.StillWidth < 320 || ed.Before != 1 || ed.Drawn != 2 || len(ed.Saved) != 2 || len(ed.Saved[1]) != 4 || len(ed.Errors) > 0 {
		t.Fatalf("mask editor: %+v", ed)
	}
	if p := ed.Saved[1][0]; p[0] < 0.55 || p[0] > 0.65 || p[1] < 0.05 || p[1] > 0.15 {
		t.Fatalf("the drawn corner is at %v, want about [0.6, 0.1]", p)
	}

	// Masks at record time: the segments recorded from then on are masked themselves.
	if code, b := doJSON(t, admin, "PUT", base+"/v1/cameras/cam002/masks", `{"polygons": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]], "record": true}`); code != 200 {
		t.Fatalf("record-time masks: %d %s", code, b)
	}
	set := time.Now()
	time.Sleep(9 * time.Second) // the camera restarts with them; a few 2 s segments are recorded
	rec := footageOf(t, inv, base, "cam002", set.Add(4*time.Second), time.Now())
	rcols, rframes := grayColumns(t, rec)
	for x := 0; x < 31; x++ {
		if rcols[x] > 2 {
			t.Fatalf("recorded column %d of 64 has mean %.1f over %d frames: the recording is not masked", x, rcols[x], rframes)
		}
	}
	t.Logf("masked at record time: %d frames recorded with the left half black", rframes)
}
