package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runBrowser runs one of web/test's scripts with env and returns what it printed.
func runBrowser(t *testing.T, node, dir, script string, env ...string) []byte {
	t.Helper()
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("%s did not finish in 2 minutes: %s", script, stderr.String())
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s\n%s", script, err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// consoleFlows runs web/test/flows.mjs: the console's flows that broke in a real browser
// (issue 18), each checked on what the page shows and what the node counts.
func consoleFlows(t *testing.T, node, dir string, env ...string) {
	out := runBrowser(t, node, dir, "flows.mjs", env...)
	var res struct {
		Steps []struct {
			Name                                                                      string
			SignOutVisible, BarVisible                                                bool
			ViewersBefore, LeftEarly, Playing, LeftPlaying, AlertStreams, AfterAlerts float64
			ExportBarForOperator                                                      bool
			Start, Fragment                                                           []string
			ExportBarEmpty, ExportBarPicked                                           bool
			Picked                                                                    int
			Card                                                                      struct {
				ID, SHA, Text string
				Files         []string
			}
			ManifestStatus int
			Zip            struct {
				Status, Bytes int
				Magic         string
			}
			ManifestSHA    string
			ManifestEvents int
			Hits           [][]struct{ Event, Person, ID, Time string }
			Items          []string
			Open           []struct {
				Person, Plate string
				Acked         bool
				Actions       []string
			}
			All []struct {
				Acked bool
				Text  string
			}
			Note, Hash, State, Exported string
			Stops                       []string
			Points                      int
			Lanes                       []struct {
				Camera           string
				Recorded, Events float64
			}
			Still                 struct{ Width, Height int }
			Played, InStep, Speed float64
			Rates                 []float64
			Late                  struct {
				LateBy, InStep, Played float64
				Waited, Joined         bool
			}
			ExportedRanges struct {
				Ranges []struct {
					Camera, File string
					Missing      []string
					Seconds      float64
				}
				Files []string
			}
			Rows      [][]string
			AfterMs   int
			Text      string
			FirstRow  []string
			Summary   string
			PlanShown bool
			Errors    []string
		}
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Steps) != 12 {
		t.Fatalf("flows output: %v\n%s", err, out)
	}
	signin, pages, history, plates, export, faces, track, review, health, patrol, offline, errs := res.Steps[0], res.Steps[1], res.Steps[2], res.Steps[3],
		res.Steps[4], res.Steps[5], res.Steps[6], res.Steps[7], res.Steps[8], res.Steps[9], res.Steps[10], res.Steps[11]
	if offline.AfterMs <= 0 || offline.AfterMs > 15000 || offline.Text != "camera cam009 offline" || len(offline.FirstRow) < 4 || offline.FirstRow[1] != "cam009" || offline.FirstRow[3] == "live" {
		t.Errorf("a camera that never answers: %+v, want its offline alarm within 15 s and it first on Health", offline)
	}
	t.Logf("a dead camera's offline alarm was raised %d ms after it was added (and shown on the Alerts page)", offline.AfterMs)
	if review.Still.Width != 320 || review.Still.Height != 240 {
		t.Errorf("the scrub still is %dx%d, want the recording's key frame at 320x240", review.Still.Width, review.Still.Height)
	}
	checkReview(t, review.Lanes, review.Played, review.InStep, review.Speed, review.Rates, len(review.ExportedRanges.Ranges), review.ExportedRanges.Files)
	// cam003 was added during the test: clips from 3 s before its recording starts.
	if l := review.Late; l.LateBy < 2 || l.LateBy > 4 || !l.Waited || !l.Joined || l.InStep > 0.5 || l.Played < l.LateBy {
		t.Errorf("review of a camera whose recording starts later: %+v, want it 2–4 s later, waiting, then joined in step (≤ 0.5 s) once the other camera played past its start", l)
	}
	t.Logf("review: a camera whose recording starts %.1f s into the clips waited for it, then played in step (%.2f s apart)", review.Late.LateBy, review.Late.InStep)
	for _, rg := range review.ExportedRanges.Ranges {
		if rg.File == "" || len(rg.Missing) > 0 || rg.Seconds < 1 {
			t.Errorf("exported range %+v", rg)
		}
	}
	checkHealth(t, health.Rows, health.Summary)
	// console.mjs acknowledged one of obama's alerts: the others are open, it is among all.
	openObama := 0
	for _, a := range history.Open {
		if a.Acked {
			t.Errorf("an acknowledged alert among the open ones: %+v", a)
		}
		if a.Person == "obama" {
			openObama++
			for _, want := range []string{"Live", "Footage", "Track", "Acknowledge", "Dispatch…"} {
				if !slices.Contains(a.Actions, want) {
					t.Errorf("alert actions %v lack %q", a.Actions, want)
				}
			}
		}
	}
	ackedAll := 0
	for _, a := range history.All {
		if a.Acked && strings.Contains(a.Text, "acknowledged by police post 1") {
			ackedAll++
		}
	}
	if openObama == 0 || ackedAll == 0 { // (counts differ as live alerts arrive: not compared)
		t.Errorf("alert history: %d open of obama (%q), all %+v", openObama, history.Note, history.All)
	}
	if len(track.Stops) == 0 || track.Points < 1 || !strings.Contains(track.Hash, "person=obama") || !strings.Contains(track.Exported, "appearances") {
		t.Errorf("track: %+v", track)
	}
	for i := 1; i < len(track.Stops); i++ {
		if track.Stops[i] < track.Stops[i-1] {
			t.Errorf("track not in time order: %v", track.Stops)
		}
	}
	if signin.SignOutVisible || signin.BarVisible {
		t.Errorf("the sign-in page shows the header (%v) or Sign out (%v)", signin.BarVisible, signin.SignOutVisible)
	}
	if pages.ViewersBefore != 0 || pages.LeftEarly != 0 || pages.Playing < 1 || pages.LeftPlaying != 0 || pages.AlertStreams < 1 || pages.AfterAlerts != 0 {
		t.Errorf("pages left open what they opened: viewers before %v, after leaving the wall while connecting %v, playing %v, after leaving it playing %v; event streams on Alerts %v, after leaving %v",
			pages.ViewersBefore, pages.LeftEarly, pages.Playing, pages.LeftPlaying, pages.AlertStreams, pages.AfterAlerts)
	}
	if plates.ExportBarForOperator {
		t.Error("the export bar shows for an operator, who may not export")
	}
	if !slices.ContainsFunc(plates.Start, func(s string) bool { return strings.Contains(s, "粤B12345") }) ||
		!slices.ContainsFunc(plates.Fragment, func(s string) bool { return strings.Contains(s, "粤B12345") }) {
		t.Errorf("plate search: B123 found %v, 2345 found %v; want 粤B12345 in both", plates.Start, plates.Fragment)
	}
	if export.ExportBarEmpty || !export.ExportBarPicked || export.Picked < 1 {
		t.Errorf("export bar: shown with nothing picked %v, with %d picked %v", export.ExportBarEmpty, export.Picked, export.ExportBarPicked)
	}
	if export.ManifestStatus != 200 || export.ManifestEvents != export.Picked || export.ManifestSHA != export.Card.SHA ||
		!slices.Contains(export.Card.Files, "manifest.json") || len(export.Card.Files) < 1+export.Picked {
		t.Errorf("export from Search: %+v (manifest %d, %d events, sha256 %s)", export.Card, export.ManifestStatus, export.ManifestEvents, export.ManifestSHA)
	}
	if export.Zip.Status != 200 || export.Zip.Magic != "PK" || export.Zip.Bytes < 1000 {
		t.Errorf("the case file's ZIP: %+v", export.Zip)
	}
	// Every hit is his, and named as him, but for at most one in ten: a passage seen once at the
	// edge of the frame (a loaded test machine drops frames) may have matched no one, and a search
	// by photo rightly finds his unnamed face too.
	n, unnamed := 0, 0
	for _, band := range faces.Hits {
		for i, h := range band {
			n++
			switch {
			case h.Person == "" && h.ID == "":
				unnamed++
			case h.Person != "obama" || h.ID != "obama":
				t.Errorf("face hit %s names %q (id %q), want obama", h.Event, h.Person, h.ID)
			}
			// Event ids begin with their millisecond (12 hex digits), then random bytes: camsim's
			// cameras share one frame clock, so two cameras' events may share a millisecond.
			if i > 0 && len(h.Event) >= 12 && len(band[i-1].Event) >= 12 && h.Event[:12] < band[i-1].Event[:12] {
				t.Errorf("face hits not in time order: %s after %s", h.Event, band[i-1].Event)
			}
		}
	}
	if n == 0 {
		t.Error("face search by photo found nothing")
	}
	if unnamed*10 > n {
		t.Errorf("%d of %d face hits are named no one", unnamed, n)
	}
	if !slices.Contains(patrol.Items, "camera:cam001") || !slices.Contains(patrol.Items, "door:gate-1") || !patrol.PlanShown {
		t.Errorf("patrol's Where am I: items %v, plan shown %v", patrol.Items, patrol.PlanShown)
	}
	if len(errs.Errors) > 0 {
		t.Errorf("console errors in the pages: %v", errs.Errors)
	}
	t.Logf("flows: %d face hits (%d named no one), export %s (%d files, manifest sha256 %s), patrol plan %d items", n, unnamed, export.Card.ID, len(export.Card.Files), export.Card.SHA, len(patrol.Items))
}

// checkReview: both cameras' lanes show recordings and events; playback from an event ran at 4×
// with the two cameras in step; the marked range was exported for both.
func checkReview(t *testing.T, lanes []struct {
	Camera           string
	Recorded, Events float64
}, played, inStep, speed float64, rates []float64, ranges int, files []string) {
	t.Helper()
	if len(lanes) != 2 {
		t.Fatalf("review lanes %+v", lanes)
	}
	for _, l := range lanes {
		if l.Recorded < 4 {
			t.Errorf("review: %s shows %.0f s recorded", l.Camera, l.Recorded)
		}
	}
	if lanes[0].Events+lanes[1].Events == 0 {
		t.Errorf("review: no events on the timeline: %+v", lanes)
	}
	// A camera out of step plays up to half as fast again, or half as slow, until it is in step.
	if played < 4 || inStep < 0 || inStep > 0.5 || speed != 4 || len(rates) != 2 || rates[0] < 2 || rates[0] > 6 || rates[1] < 2 || rates[1] > 6 {
		t.Errorf("review playback: %.1f s of footage in 2 s at %v× (want ≥ 4 at 4×), cameras %.2f s apart, rates %v", played, speed, inStep, rates)
	}
	if ranges != 2 || len(files) != 2 {
		t.Errorf("review export: %d ranges, files %v", ranges, files)
	}
	t.Logf("review: %.1f s of footage played in 2 s at 4×, cameras %.2f s apart; range exported as %v", played, inStep, files)
}

// checkHealth: the three camsim cameras live at their steady 25 fps, the dead one first.
func checkHealth(t *testing.T, rows [][]string, summary string) {
	t.Helper()
	if len(rows) != 4 || !strings.Contains(summary, "3 live") || rows[0][1] != "cam009" {
		t.Fatalf("health: %q %v", summary, rows)
	}
	for _, r := range rows[1:] {
		fps, err := strconv.ParseFloat(r[4], 64)
		if err != nil || fps < 24 || fps > 26 || r[3] != "live" {
			t.Errorf("health row %v: want live at 25 fps", r)
		}
	}
}
