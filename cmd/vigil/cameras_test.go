package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestCameraRegistryAtRunTime: cameras are added, changed and removed while the node runs, through
// the API and `vigil cameras`, and the node runs what the registry says within seconds; the
// configuration's cameras seed it; bad entries are refused with the reason, non-admins are
// refused, passwords never come back, and every change is audited.
func TestCameraRegistryAtRunTime(t *testing.T) {
	testenv.Testdata(t)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	admin := tokenClient(t, "admin", "estate office", data)
	operator := tokenClient(t, "operator", "operator", data)

	simAddr := startCamsim(t, 3)
	camURL := func(i int) string { return fmt.Sprintf("rtsp://%s%s", simAddr, camsim.CameraPath(i)) }
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.AddCameras([]string{camURL(1)}) // seeds the registry as cam001
	n := startNode(t, cfg)
	defer n.Stop()

	running := func() map[string]string {
		r, err := admin.Get(n.URL + "/v1/cameras")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var body struct{ Cameras []struct{ ID, State string } }
		json.NewDecoder(r.Body).Decode(&body)
		out := map[string]string{}
		for _, c := range body.Cameras {
			out[c.ID] = c.State
		}
		return out
	}
	waitFor := func(what string, ok func(map[string]string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(running()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: cameras %v", what, running())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	send := func(c *http.Client, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, n.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	waitFor("the seeded camera", func(m map[string]string) bool { return m["cam001"] == "live" })

	t0 := time.Now()
	if code, body := send(admin, "POST", "/v1/cameras", fmt.Sprintf(`{"id":"cam002","url":%q,"analyse":"none"}`, camURL(2))); code != 201 {
		t.Fatalf("add: %d %s", code, body)
	}
	waitFor("a camera added through the API", func(m map[string]string) bool { return m["cam002"] == "live" })
	t.Logf("a camera added through the API was live %v later", time.Since(t0).Round(time.Millisecond))
	for _, c := range []struct {
		client       *http.Client
		method, body string
		want         int
	}{
		{admin, "POST", `{"id":"cam002","url":"rtsp://127.0.0.1/x"}`, 409},
		{admin, "POST", `{"id":"cam 9","url":"http://127.0.0.1/x","analyse":"everything"}`, 400},
		{admin, "POST", `{"id":"cam009","url":"rtsp://127.0.0.1/x","fps":99}`, 400},
		{operator, "POST", `{"id":"cam009","url":"rtsp://127.0.0.1/x"}`, 403},
	} {
		if code, body := send(c.client, c.method, "/v1/cameras", c.body); code != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.body, code, body, c.want)
		}
	}
	if code, body := send(operator, "DELETE", "/v1/cameras/cam001", ""); code != 403 {
		t.Errorf("an operator removed a camera: %d %s", code, body)
	}

	// A file of cameras through the command line: one good, one refused with its reason.
	csvFile := filepath.Join(data, "cams.csv")
	os.WriteFile(csvFile, []byte("id,url,analyse\ncam003,"+camURL(3)+",plates\nbad one,ftp://x,both\n"), 0o600)
	code, iout, ierr := runCmd("cameras", "import", "--data", data, csvFile)
	if code == 0 || !strings.Contains(iout, "1 cameras added, 0 updated, 1 refused") || !strings.Contains(iout, "bad one") {
		t.Errorf("import: %d %s %s", code, iout, ierr)
	}
	waitFor("a camera imported from a file", func(m map[string]string) bool { return m["cam003"] == "live" })

	// A password never comes back.
	if code, _, errs := runCmd("cameras", "add", "--data", data, "--id", "cam004", "--url", "rtsp://admin:hunter2@127.0.0.1:9/x"); code != 0 {
		t.Fatalf("cameras add: %s", errs)
	}
	_, lout, _ := runCmd("cameras", "list", "--data", data)
	_, reg := send(admin, "GET", "/v1/cameras/registry", "")
	if strings.Contains(lout+reg, "hunter2") || !strings.Contains(lout, "cam004") || !strings.Contains(reg, "cam004") {
		t.Errorf("a camera password came back, or cam004 is missing:\n%s\n%s", lout, reg)
	}

	// Changed and removed while running.
	if code, body := send(admin, "PUT", "/v1/cameras/cam002", fmt.Sprintf(`{"url":%q,"analyse":"faces"}`, camURL(2))); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if code, body := send(admin, "DELETE", "/v1/cameras/cam001", ""); code != 200 {
		t.Fatalf("remove: %d %s", code, body)
	}
	if code, _, _ := runCmd("cameras", "rm", "--data", data, "cam004"); code != 0 {
		t.Fatal("cameras rm")
	}
	waitFor("removed cameras stopped", func(m map[string]string) bool {
		_, one := m["cam001"]
		_, four := m["cam004"]
		return !one && !four && m["cam002"] == "live" && m["cam003"] == "live"
	})
	if code, _ := send(admin, "DELETE", "/v1/cameras/cam001", ""); code != 404 {
		t.Errorf("removing a removed camera: %d", code)
	}
	// Every change is in the audit chain.
	_, aout, _ := runCmd("audit", "verify", "--data", data)
	r, _ := admin.Get(n.URL + "/v1/audit?action=camera.add")
	var audit struct {
		Entries []struct{ Action, Actor string }
	}
	json.NewDecoder(r.Body).Decode(&audit)
	r.Body.Close()
	var actors []string
	for _, e := range audit.Entries {
		actors = append(actors, e.Actor)
	}
	slices.Sort(actors)
	if len(actors) < 4 || !slices.Contains(actors, "configuration") || !slices.Contains(actors, "vigil-cli") || !slices.Contains(actors, "estate office") {
		t.Errorf("camera.add audit rows by %v (verify: %s)", actors, aout)
	}
}
