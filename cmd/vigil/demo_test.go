package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestDemoStory: `vigil demo` (what scripts/demo.sh runs) tells the product's story within two
// minutes of serving: a watch-listed face raises an alert, the blacklisted plate raises one, a
// resident's face opens the demo's door, and the face search it prints finds the watch-listed
// person it names.
func TestDemoStory(t *testing.T) {
	testenv.Models(t)
	td := testenv.Testdata(t)
	data := t.TempDir()
	// The demo's own PostgreSQL runs as the postgres user when the test runs as root: it must
	// reach its folder.
	for _, d := range []string{filepath.Dir(data), data} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	httpAddr, rtspAddr := freeAddrT(t), freeAddrT(t)
	var stdout, stderr testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var demoErr error
	go func() {
		defer close(done)
		demoErr = cmdDemo(ctx, []string{"--data", data, "--http", httpAddr, "--rtsp", rtspAddr, "--udp", "127.0.0.1:0", "--testdata", td}, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the demo did not stop within 30 s")
		}
	}()
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(within); !ok(); time.Sleep(time.Second) {
			if time.Now().After(end) {
				t.Fatalf("%s: not within %v\nstdout:\n%s\nstderr (end):\n%s", what, within, stdout.String(), tail(stderr.String(), 3000))
			}
			select {
			case <-done:
				t.Fatalf("the demo ended: %v\n%s\n%s", demoErr, stdout.String(), tail(stderr.String(), 3000))
			default:
			}
		}
	}
	waitFor("the demo serving", 4*time.Minute, func() bool { return strings.Contains(stdout.String(), "vigil demo is running") })
	serving := time.Now()
	tok, err := os.ReadFile(filepath.Join(data, "demo-token"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, v any) error {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		return json.NewDecoder(r.Body).Decode(v)
	}
	var watch, plate string
	waitFor("a watch-list face alert, a blacklisted plate's alert, a door opened by a face and the barrier by a resident's car", 2*time.Minute, func() bool {
		var res struct {
			Events []struct {
				Kind, List, Plate string
				PersonName        string `json:"person_name"`
			}
		}
		if get("/v1/events?limit=500", &res) != nil {
			return false
		}
		for _, e := range res.Events {
			switch {
			case e.Kind == "face" && e.List == "watchlist":
				watch = e.PersonName
			case e.Kind == "plate" && e.List == "blacklist":
				plate = e.Plate
			}
		}
		return watch != "" && plate != "" && strings.Contains(stdout.String(), "door demo-gate opened by face for") &&
			strings.Contains(stdout.String(), "barrier demo-barrier opened for the car of")
	})
	out := stdout.String()
	t.Logf("within %v of serving: watch-listed %s, plate %s, and %s", time.Since(serving).Round(time.Second), watch, plate,
		strings.TrimSpace(out[strings.Index(out, "door demo-gate opened"):][:60]))
	if !strings.Contains(out, "alerts:   watch-listed "+watch) && !strings.Contains(out, " and "+watch) {
		t.Errorf("the alert's person %q is not among those the demo says are watch-listed:\n%s", watch, out)
	}
	// The printed commands run as printed: the binary's path, and a face search photo of a
	// watch-listed person that is not the photo enrolled.
	for _, want := range []string{"./bin/vigil audit verify", "faces:    curl", "plates:   curl"} {
		if !strings.Contains(out, want) && !strings.Contains(out, strings.Replace(want, "./bin/vigil", "go run ./cmd/vigil", 1)) {
			t.Errorf("the demo does not print %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "not enrolled") && strings.Contains(out, "no face found") {
		t.Errorf("the demo enrolled a person from a photo without a face:\n%s", out)
	}
	// The resident's printed link signs a phone in: their home names them and their unit.
	i := strings.Index(out, "#/join?code=")
	if i < 0 {
		t.Fatalf("no resident link printed:\n%s", out)
	}
	code := strings.Fields(out[i+len("#/join?code="):])[0]
	r, err := http.Post("http://"+httpAddr+"/v1/join", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var joined struct{ Token, Person string }
	json.NewDecoder(r.Body).Decode(&joined)
	r.Body.Close()
	req, _ := http.NewRequest("GET", "http://"+httpAddr+"/v1/me/home", nil)
	req.Header.Set("Authorization", "Bearer "+joined.Token)
	var home struct {
		Person struct {
			ID    string
			Units []string
		}
		Doors []struct{ ID string }
	}
	if r, err := http.DefaultClient.Do(req); err == nil {
		json.NewDecoder(r.Body).Decode(&home)
		r.Body.Close()
	}
	if home.Person.ID == "" || home.Person.ID != joined.Person || len(home.Person.Units) == 0 || len(home.Doors) == 0 {
		t.Errorf("the resident's link: joined %+v, home %+v", joined, home)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
