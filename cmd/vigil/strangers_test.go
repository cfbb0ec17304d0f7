package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

type strangerRow struct {
	ID          string
	Faces       int
	Cameras     []string
	SnapshotURL string `json:"snapshot_url"`
}

func listStrangers(t *testing.T, c *http.Client, base string) []strangerRow {
	t.Helper()
	var res struct{ Strangers []strangerRow }
	getJSON(t, c, base+"/v1/strangers?min_faces=2", &res)
	return res.Strangers
}

// TestStrangersStableAcrossRestart: the man camsim's clip shows, enrolled nowhere, passes two
// cameras: his faces become one stranger seen on both; after the node restarts his next faces
// join the same id; an investigator follows him (a reason is required) and promotes him to the
// watch list, after which his passages match the new entry.
func TestStrangersStableAcrossRestart(t *testing.T) {
	testenv.Models(t)
	sim := startCamsim(t, 2)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	inv := tokenClient(t, "investigator", "detective 3", data)
	patrol := tokenClient(t, "patrol", "patrol 7", data)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.FPS = 5
	cfg.Footage.Enabled = false
	cfg.Live.Enabled = false
	cfg.Strangers.Every = config.Duration(300 * time.Millisecond)
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{"rtsp://" + sim + "/cam/001", "rtsp://" + sim + "/cam/002"})
	n := startNode(t, cfg)
	var first strangerRow
	waitFor(t, 90*time.Second, "one stranger seen on both cameras", func() bool {
		for _, s := range listStrangers(t, inv, n.URL) {
			if slices.Contains(s.Cameras, "cam001") && slices.Contains(s.Cameras, "cam002") {
				first = s
				return true
			}
		}
		return false
	})
	if r, _ := patrol.Get(n.URL + "/v1/strangers"); r.StatusCode != 403 {
		t.Fatalf("patrol lists strangers: %d", r.StatusCode)
	}
	n.Stop()

	n = startNode(t, cfg)
	base := n.URL
	var again strangerRow
	waitFor(t, 90*time.Second, "the stranger's faces after the restart", func() bool {
		for _, s := range listStrangers(t, inv, base) {
			if s.ID == first.ID && s.Faces > first.Faces+2 {
				again = s
				return true
			}
		}
		return false
	})
	if all := listStrangers(t, inv, base); len(all) != 1 {
		t.Fatalf("one man became %d strangers: %+v", len(all), all)
	}
	if r, _ := inv.Get(base + "/v1/strangers/" + first.ID); r.StatusCode != 400 {
		t.Fatalf("following a stranger without a reason: %d", r.StatusCode)
	}
	var detail struct {
		Stranger    struct{ ID string }
		Appearances []struct {
			EventID     string `json:"event_id"`
			SnapshotURL string `json:"snapshot_url"`
		}
	}
	getJSON(t, inv, base+"/v1/strangers/"+first.ID+"?reason=case+2026-140", &detail)
	if detail.Stranger.ID != first.ID || len(detail.Appearances) < again.Faces-5 || detail.Appearances[0].SnapshotURL == "" {
		t.Fatalf("detail: %+v", detail.Stranger)
	}

	// The investigator follows him in the console and promotes him to the watch list; his next
	// passages match the new entry.
	node, dir := consoleRunner(t)
	_, tok, _ := runCmd("token", "create", "--role", "investigator", "--name", "detective 4", "--data", data)
	out := runBrowser(t, node, dir, "strangers.mjs", "BASE="+base, "TOKEN="+strings.TrimSpace(tok), "STRANGER="+first.ID, "OUT="+artifacts(t, "strangers"))
	var ui struct {
		Row, Promoted         string
		ListShot, Appearances int
		Shots                 int
		Errors                []string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &ui); err != nil {
		t.Fatalf("strangers.mjs printed %s: %v", out, err)
	}
	if !strings.Contains(ui.Row, "cam001, cam002") || ui.ListShot == 0 || ui.Shots == 0 || ui.Appearances < again.Faces-5 ||
		!strings.Contains(ui.Promoted, "visitor-1") || len(ui.Errors) > 0 {
		t.Fatalf("strangers page: %+v", ui)
	}
	if code, _ := doJSON(t, inv, "POST", base+"/v1/strangers/"+first.ID+"/promote", `{"person": "visitor-2", "name": "x", "list": "residents", "reason": "x"}`); code != 400 && code != 404 {
		t.Fatalf("promote to residents: %d", code)
	}
	promoted := time.Now()
	waitFor(t, 60*time.Second, "a passage matched to the promoted entry", func() bool {
		for _, e := range faceEvents(t, inv, base, "cam001") {
			if e.Time.After(promoted) && e.PersonID != nil && *e.PersonID == "visitor-1" {
				return true
			}
		}
		return false
	})
	r, _ := inv.Get(base + "/v1/audit?action=stranger.promote")
	if r.StatusCode == 200 {
		if b := readAll(r); !strings.Contains(b, "visitor-1") {
			t.Fatalf("promote not audited: %s", b)
		}
	}
	t.Logf("stranger %s: %d faces on %v before the restart, %d after; promoted to visitor-1", first.ID, first.Faces, first.Cameras, again.Faces)
}
