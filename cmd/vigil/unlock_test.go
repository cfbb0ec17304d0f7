package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/camsim"
	"github.com/vigil-oss/vigil/internal/config"
	"github.com/vigil-oss/vigil/internal/testdata"
	"github.com/vigil-oss/vigil/internal/testenv"
	"github.com/vigil-oss/vigil/models"
)

// TestAutoUnlockFromDoorCamera: a resident enrolled through the admin API walks past the door's
// camera (camsim) and the door's controller, long-polling its channel, receives an unlock for
// him, and only for him.
func TestAutoUnlockFromDoorCamera(t *testing.T) {
	td := testdata.Dir()
	if _, err := models.Dir(os.Getenv("VIGIL_MODELS")); err != nil || td == "" {
		t.Skip("no models or testdata")
	}
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	_, out, _ := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	admin := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	code, out, errs := runCmd("doors", "add", "--id", "gate-1", "--camera", "cam001", "--data", data)
	if code != 0 {
		t.Fatalf("doors add: %s", errs)
	}
	key, _ := hex.DecodeString(strings.TrimSpace(out))

	lib, _ := camsim.LoadLibrary(td)
	clip, err := camsim.SmallClip(context.Background(), lib)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, _ := camsim.NewServer(camsim.Config{RTSPAddress: "127.0.0.1:18756", Cameras: 1}, []*camsim.Clip{clip}, log)
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.FPS = 5
	cfg.Footage.Enabled = false
	cfg.Database.URL = config.Secret(dbURL)
	cfg.AddCameras([]string{"rtsp://127.0.0.1:18756/cam/001"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, func(a string) { addr <- a }) }()
	base := "http://" + <-addr

	call := func(path, body string) {
		t.Helper()
		r, err := admin.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 201 {
			t.Fatalf("POST %s: %d %s", path, r.StatusCode, b)
		}
	}
	call("/v1/units", `{"id":"g1-0101"}`)
	call("/v1/people", `{"id":"obama","name":"Barack Obama","kind":"resident"}`)
	call("/v1/people/obama/leases", fmt.Sprintf(`{"unit":"g1-0101","starts":%q,"ends":%q}`,
		time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339)))
	call("/v1/people/obama/credentials", `{"kind":"card","value":"G1-0001"}`)
	call("/v1/doors/gate-1/rules", `{"who_kind":"unit","who":"g1-0101"}`)
	img, _ := os.ReadFile(filepath.Join(td, "faces/obama/2.jpg"))
	body, ct := multipartBody(map[string]string{"consent": "signed form"}, img)
	if r, err := admin.Post(base+"/v1/people/obama/faces", ct, body); err != nil || r.StatusCode != 201 {
		t.Fatalf("enrol: %v %v", r.StatusCode, err)
	}
	if err := sim.Start(); err != nil { // he walks past after the enrolment
		t.Fatal(err)
	}
	defer sim.Close()

	deadline := time.Now().Add(30 * time.Second)
	var got []access.Command
	for n := 0; len(got) == 0 && time.Now().Before(deadline); n++ {
		nonce := fmt.Sprintf("gate-1-poll-%06d", n)
		path := "/v1/doors/gate-1/commands"
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest("GET", base+path+"?wait=10", nil)
		req.Header.Set(access.HeaderTimestamp, ts)
		req.Header.Set(access.HeaderNonce, nonce)
		req.Header.Set(access.HeaderSignature, access.Sign(key, "GET", path, ts, nonce, nil))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var res struct{ Commands []access.Command }
		json.NewDecoder(r.Body).Decode(&res)
		r.Body.Close()
		got = res.Commands
	}
	if len(got) == 0 {
		t.Fatal("no unlock reached the controller within 30 s")
	}
	for _, c := range got {
		if c.Action != "unlock" || c.PersonID != "obama" || c.Door != "gate-1" || c.Event == "" {
			t.Fatalf("command %+v", c)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
