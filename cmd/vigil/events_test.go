package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestServeStreamsLiveEvents runs serve with the pipeline on camsim, enrols Obama with photos
// other than the one camsim walks past, and reads /v1/events/live until his event arrives.
func TestServeStreamsLiveEvents(t *testing.T) {
	td := testenv.Testdata(t)
	testenv.Models(t)
	data := t.TempDir()
	gallery := filepath.Join(data, "gallery.json")
	if code, out, errs := runCmd("enroll", "--gallery", gallery, "--name", "Barack Obama",
		filepath.Join(td, "faces/obama/2.jpg"), filepath.Join(td, "faces/obama/3.jpg")); code != 0 {
		t.Fatalf("enroll: %d %s %s", code, out, errs)
	}
	lib, _ := camsim.LoadLibrary(td)
	clip, err := camsim.SmallClip(context.Background(), lib)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: "127.0.0.1:18755", Cameras: 1}, []*camsim.Clip{clip}, log)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	dbURL := testenv.PostgresDB(t)
	// Tokens come from the CLI, as an admin would make them.
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	tokens := map[string]string{}
	for _, role := range []string{"investigator", "operator", "patrol"} {
		code, out, errs := runCmd("token", "create", "--role", role, "--name", "test "+role, "--data", data)
		if code != 0 || !strings.HasPrefix(out, "vgl_") {
			t.Fatalf("token create: %d %s %s", code, out, errs)
		}
		tokens[role] = strings.TrimSpace(out)
	}
	client := &http.Client{Transport: bearer{tokens["investigator"]}}
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Gallery = gallery
	cfg.Pipeline.FPS = 5
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.Footage.SegmentLength = config.Duration(2 * time.Second)
	started := time.Now()
	cfg.AddCameras([]string{"rtsp://127.0.0.1:18755/cam/001"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := startNode(t, cfg)
	base := n.URL

	if r, _ := http.Get(base + "/v1/events/live"); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("live events without a token: %d", r.StatusCode)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/live", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	type ev struct {
		ID, Kind, Camera string
		SnapshotURL      string `json:"snapshot_url"`
		Embedding        []float32
		Match            *struct {
			PersonID string `json:"person_id"`
			List     string
		}
		Plate *struct{ Text string }
	}
	var face, plate *ev
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(25 * time.Second)
	for face == nil || plate == nil {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if !strings.HasPrefix(l, "data: ") {
				continue
			}
			var e ev
			if err := json.Unmarshal([]byte(l[6:]), &e); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			if e.Embedding != nil {
				t.Fatal("live events carry embeddings")
			}
			if e.Kind == "face" && e.Match != nil && e.Match.PersonID == "barack-obama" {
				face = &e
			}
			if e.Kind == "plate" && e.Plate != nil {
				plate = &e
			}
		case <-deadline:
			t.Fatalf("no identified face and plate event within 25 s (face %v, plate %v)", face != nil, plate != nil)
		}
	}
	if plate.Plate.Text != lib.Plates[0].Text {
		t.Errorf("plate read %q, camsim drove %q", plate.Plate.Text, lib.Plates[0].Text)
	}
	sr, err := client.Get(base + face.SnapshotURL)
	if err != nil {
		t.Fatal(err)
	}
	jpeg, _ := io.ReadAll(sr.Body)
	sr.Body.Close()
	if sr.StatusCode != 200 || sr.Header.Get("Content-Type") != "image/jpeg" || len(jpeg) < 500 || jpeg[0] != 0xff || jpeg[1] != 0xd8 {
		t.Fatalf("snapshot: %d %s %d bytes", sr.StatusCode, sr.Header.Get("Content-Type"), len(jpeg))
	}
	resp.Body.Close()

	// The same event is in the store: listed by person, fetched by id, its snapshot from blobs.
	var stored struct {
		Events []struct {
			ID, Camera, SnapshotURL string
			PersonID                *string `json:"person_id"`
		} `json:"events"`
	}
	deadline = time.After(10 * time.Second)
	for {
		r, err := client.Get(base + "/v1/events?person=barack-obama&kind=face&reason=case+11")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(r.Body).Decode(&stored)
		r.Body.Close()
		if len(stored.Events) > 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the live event never reached the store")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if stored.Events[0].Camera != "cam001" || *stored.Events[0].PersonID != "barack-obama" {
		t.Fatalf("stored %+v", stored.Events[0])
	}
	// Following a person takes the search roles and a reason, and is audited.
	patrol := &http.Client{Transport: bearer{tokens["patrol"]}}
	for _, c := range []struct {
		who  *http.Client
		path string
		want int
	}{
		{patrol, "/v1/events?person=barack-obama&reason=curious", 403},
		{patrol, "/v1/events?plate=" + url.QueryEscape(lib.Plates[0].Text) + "&reason=curious", 403},
		{client, "/v1/events?person=barack-obama", 400},
		{patrol, "/v1/events?camera=cam001", 200},
	} {
		r, err := c.who.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, r.StatusCode, c.want)
		}
	}
	// Listing a camera's events is no way around that guard: patrol sees that a resident was
	// recognised, not who.
	if r, err := patrol.Get(base + "/v1/events?camera=cam001&kind=face"); err == nil {
		var seen struct {
			Events []struct {
				PersonID *string `json:"person_id"`
				List     *string `json:"list"`
			} `json:"events"`
		}
		json.NewDecoder(r.Body).Decode(&seen)
		r.Body.Close()
		matched := 0
		for _, e := range seen.Events {
			if e.List != nil {
				matched++
			}
			if e.PersonID != nil {
				t.Fatalf("patrol's event list names %s", *e.PersonID)
			}
		}
		if matched == 0 {
			t.Fatalf("patrol's list shows no recognised face at all (%d events)", len(seen.Events))
		}
	}
	if conn, err := pgx.Connect(context.Background(), dbURL); err == nil {
		var tracked int
		conn.QueryRow(context.Background(), `SELECT count(*) FROM audit WHERE action = 'events.track' AND reason = 'case 11' AND actor = 'test investigator'`).Scan(&tracked)
		conn.Close(context.Background())
		if tracked == 0 {
			t.Error("following a person left no audit row")
		}
	}
	// The camera is recorded: a clip of its first seconds comes back as an MP4.
	footageURL := fmt.Sprintf("%s/v1/cameras/cam001/footage?from=%s&to=%s", base,
		started.Add(time.Second).UTC().Format(time.RFC3339Nano), started.Add(2500*time.Millisecond).UTC().Format(time.RFC3339Nano))
	deadline = time.After(15 * time.Second)
	for {
		r, err := client.Get(footageURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == 200 {
			if r.Header.Get("Content-Type") != "video/mp4" || len(body) < 1000 || string(body[4:8]) != "ftyp" {
				t.Fatalf("footage: %s, %d bytes", r.Header.Get("Content-Type"), len(body))
			}
			break
		}
		if r.StatusCode != 404 {
			t.Fatalf("footage: %d %s", r.StatusCode, body)
		}
		select {
		case <-deadline:
			t.Fatal("no footage recorded")
		case <-time.After(300 * time.Millisecond):
		}
	}
	if r, _ := client.Get(base + "/v1/cameras/cam001/footage?from=2026-11-29T10:00:00Z&to=2026-11-29T12:00:00Z"); r.StatusCode != 400 {
		t.Errorf("a two-hour clip: %d, want 400", r.StatusCode)
	}
	for _, bad := range []string{"?from=2026-11-29T10:00:00Z&to=2026-11-29T09:00:00Z", "?limit=0", "?kind=car", "?cursor=zzz", "?from=yesterday"} {
		r, _ := client.Get(base + "/v1/events" + bad)
		if r.StatusCode != 400 {
			t.Errorf("GET /v1/events%s: %d, want 400", bad, r.StatusCode)
		}
		r.Body.Close()
	}
	testSearch(t, base, data, tokens, face.ID, lib.Plates[0].Text)
	n.Stop()
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
