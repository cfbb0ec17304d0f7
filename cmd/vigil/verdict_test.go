package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

type faceEvent struct {
	ID       string
	Time     time.Time
	PersonID *string `json:"person_id"`
}

func faceEvents(t *testing.T, c *http.Client, base, camera string) []faceEvent {
	t.Helper()
	var res struct{ Events []faceEvent }
	getJSON(t, c, base+"/v1/events?kind=face&limit=500&camera="+camera+"&reason=verdict+test", &res)
	return res.Events
}

// TestVerdictStopsWrongMatch: a watch-list entry enrolled from a photo of the man camsim's clip
// shows keeps matching his passages (for the story: a look-alike); an operator marks one match
// wrong; from the next passages on he is not matched to that entry any more; the audit names
// who corrected what, and the person's verdicts list it.
func TestVerdictStopsWrongMatch(t *testing.T) {
	testenv.Models(t)
	td := testenv.Testdata(t)
	sim := startCamsim(t, 1)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	gallery := filepath.Join(data, "gallery.json")
	if code, _, errs := runCmd("enroll", "--name", "suspect-x", "--list", "watchlist", "--gallery", gallery, filepath.Join(td, "faces/obama/1.jpg")); code != 0 {
		t.Fatalf("enroll: %s", errs)
	}
	op := tokenClient(t, "operator", "police post 1", data)
	patrol := tokenClient(t, "patrol", "patrol 7", data)
	admin := tokenClient(t, "admin", "estate office", data)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.FPS = 5
	cfg.Pipeline.Gallery = gallery
	cfg.Footage.Enabled = false
	cfg.Live.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + sim + "/cam/001"})
	n := startNode(t, cfg)
	base := n.URL

	var wrongly faceEvent
	waitFor(t, 90*time.Second, "a passage matched to suspect-x", func() bool {
		for _, e := range faceEvents(t, op, base, "cam001") {
			if e.PersonID != nil && *e.PersonID == "suspect-x" {
				wrongly = e
				return true
			}
		}
		return false
	})
	url := base + "/v1/events/" + wrongly.ID + "/verdict"
	for _, c := range []struct {
		who  *http.Client
		body string
		want int
	}{
		{op, `{"verdict": "maybe"}`, 400},
		{op, `{"verdict": "this_is"}`, 400},
		{op, `{"verdict": "wrong", "template": true}`, 400},
		{op, `{"verdict": "this_is", "person": "suspect-x"}`, 400},
		{patrol, `{"verdict": "wrong"}`, 403},
	} {
		if code, b := doJSON(t, c.who, "POST", url, c.body); code != c.want {
			t.Fatalf("verdict %s: %d %s, want %d", c.body, code, b, c.want)
		}
	}
	if code, _ := doJSON(t, op, "POST", base+"/v1/events/0000000000000000000000/verdict", `{"verdict": "wrong"}`); code != 404 {
		t.Fatalf("unknown event: %d", code)
	}
	// The operator marks it wrong in the console.
	node, dir := consoleRunner(t)
	_, tok, _ := runCmd("token", "create", "--role", "operator", "--name", "police post 2", "--data", data)
	out := runBrowser(t, node, dir, "verdict.mjs", "BASE="+base, "TOKEN="+strings.TrimSpace(tok), "PERSON=suspect-x", "OUT="+artifacts(t, "verdict"))
	var ui struct {
		Event, Chip, Effect, Track string
		Errors                     []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &ui); err != nil {
		t.Fatalf("verdict.mjs printed %s: %v", out, err)
	}
	if !strings.Contains(ui.Chip, "wrong") || !strings.Contains(ui.Effect, "no longer match suspect-x") ||
		!strings.Contains(ui.Track, "Mr Lin") || !strings.Contains(ui.Track, "no longer match suspect-x") || len(ui.Errors) > 0 {
		t.Fatalf("console verdict: %+v", ui)
	}
	wrongly.ID = ui.Event
	corrected := time.Now()
	// The next passages of the same man (the clip loops every 4 s): none matched to suspect-x.
	settle := corrected.Add(verdictsEvery + time.Second) // every node picks verdicts up within verdictsEvery
	var after []faceEvent
	waitFor(t, 60*time.Second, "two passages after the verdict", func() bool {
		after = after[:0]
		for _, e := range faceEvents(t, op, base, "cam001") {
			if e.Time.After(settle) {
				after = append(after, e)
			}
		}
		return len(after) >= 2
	})
	for _, e := range after {
		if e.PersonID != nil && *e.PersonID == "suspect-x" {
			t.Fatalf("passage %s at %s matched suspect-x again after the verdict", e.ID, e.Time)
		}
	}
	// Who corrected what: the audit and the person's verdicts.
	r, _ := admin.Get(base + "/v1/audit?action=event.verdict")
	ab := readAll(r)
	if !strings.Contains(ab, "police post 2") || !strings.Contains(ab, wrongly.ID) || !strings.Contains(ab, "suspect-x") {
		t.Fatalf("the verdict is not audited: %s", ab)
	}
	var vs struct {
		Verdicts []struct {
			EventID                    string `json:"event_id"`
			Verdict, Matched, By, Note string
		}
	}
	getJSON(t, op, base+"/v1/verdicts?person=suspect-x", &vs)
	if len(vs.Verdicts) != 1 || vs.Verdicts[0].By != "police post 2" || vs.Verdicts[0].Verdict != "wrong" || vs.Verdicts[0].EventID != wrongly.ID {
		t.Fatalf("verdicts: %+v", vs)
	}
	t.Logf("wrong match %s corrected; %d passages since, none matched to suspect-x", wrongly.ID, len(after))
}

func readAll(r *http.Response) string {
	defer r.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
