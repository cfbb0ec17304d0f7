// Package docker holds vigil's container image and 3-node compose file; its test builds the image
// with podman and runs the site.
package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sim/whep"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

const image = "localhost/vigil:test"

var nodes = []string{"http://127.0.0.1:18081", "http://127.0.0.1:18082", "http://127.0.0.1:18083"}

// TestComposeSite builds the runtime image with podman (on a Debian base made by mmdebstrap: no
// registry is reachable here) and runs docker/compose.yaml: three NATS servers, PostgreSQL,
// versitygw, three vigil nodes and camsim. Smoke test: six cameras registered through one node
// run live spread over the nodes, a face event is stored, and every node answers a WHEP offer.
func TestComposeSite(t *testing.T) {
	for _, c := range []string{"podman", "podman-compose", "mmdebstrap", "runc"} {
		testenv.Command(t, c)
	}
	models, testdata := testenv.Models(t), testenv.Testdata(t)
	root, _ := filepath.Abs("..")
	conf := filepath.Join(root, "docker", "containers.conf")
	env := append(os.Environ(), "CONTAINERS_CONF="+conf)
	sh := func(timeout time.Duration, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = root, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out))
		}
		return string(out)
	}
	// The base image, once per machine.
	if exec.Command("podman", "image", "exists", "localhost/debian-base:bookworm").Run() != nil {
		dir, _ := os.UserCacheDir()
		cache := filepath.Join(dir, "vigil", "debian-base.tar")
		_ = os.MkdirAll(filepath.Dir(cache), 0o755)
		if _, err := os.Stat(cache); err != nil {
			sh(10*time.Minute, "mmdebstrap", "--variant=minbase", "bookworm", cache)
		}
		sh(5*time.Minute, "podman", "import", cache, "localhost/debian-base:bookworm")
	}
	// The binaries, then the image from them.
	bin := filepath.Join(root, "bin")
	sh(10*time.Minute, "go", "build", "-o", bin+"/", "./cmd/vigil", "./cmd/camsim", "./cmd/doorsim")
	sh(time.Minute, "cp", testenv.VersityGW(), filepath.Join(bin, "versitygw"))
	t0 := time.Now()
	sh(20*time.Minute, "podman", "build", "--network=host", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
		"--build-arg", "BASE=localhost/debian-base:bookworm", "-f", "docker/Dockerfile", "-t", image, ".")
	t.Logf("image built in %v", time.Since(t0).Round(time.Second))

	env = append(env, "VIGIL_IMAGE="+image, "VIGIL_MODELS="+models, "VIGIL_TESTDATA="+testdata)
	down := func() {
		cmd := exec.Command("podman-compose", "-f", "docker/compose.yaml", "down", "-v")
		cmd.Dir, cmd.Env = root, env
		_ = cmd.Run()
	}
	down() // what an earlier run left
	t.Cleanup(down)
	sh(10*time.Minute, "podman-compose", "-f", "docker/compose.yaml", "up", "-d")
	// podman-compose answers 0 even when a container did not start: count them.
	running := sh(time.Minute, "podman", "ps", "--filter", "label=io.podman.compose.project=docker", "--format", "{{.Names}}")
	if n := len(strings.Fields(running)); n != 10 {
		// Say why: every container's state, and the last lines of those that are not running.
		all, _ := exec.Command("podman", "ps", "-a", "--filter", "label=io.podman.compose.project=docker", "--format", "{{.Names}} {{.Status}}").CombinedOutput()
		var logs strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(string(all)), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[1] != "Up" {
				out, _ := exec.Command("podman", "logs", "--tail", "20", f[0]).CombinedOutput()
				fmt.Fprintf(&logs, "--- %s:\n%s\n", f[0], out)
			}
		}
		t.Fatalf("%d containers running, want 10:\n%s\nall:\n%s\n%s", n, running, all, logs.String())
	}
	for _, n := range nodes {
		waitReady(t, n, 4*time.Minute, func() string {
			out, _ := exec.Command("podman", "logs", "--tail", "30", "docker_vigil"+n[len(n)-1:]+"_1").CombinedOutput()
			return string(out)
		})
	}
	// An admin token, made against the site's database from the host.
	tok := exec.Command(filepath.Join(bin, "vigil"), "token", "create", "--role", "admin", "--name", "compose test", "--data", t.TempDir())
	tok.Env = append(os.Environ(), "VIGIL_DATABASE_URL=postgres://postgres:vigil-site@127.0.0.1:15432/postgres?sslmode=disable",
		"VIGIL_DATABASE_APP_URL=postgres://vigil_app:vigil-site-app@127.0.0.1:15432/postgres?sslmode=disable")
	var stderr strings.Builder
	tok.Stderr = &stderr
	out, err := tok.Output()
	if err != nil {
		t.Fatalf("token: %v\n%s", err, stderr.String())
	}
	token := strings.TrimSpace(string(out))
	call := func(method, url, body string, v any) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		if v != nil {
			_ = json.NewDecoder(r.Body).Decode(v)
		}
		return r.StatusCode
	}
	for i := 1; i <= 6; i++ {
		body := fmt.Sprintf(`{"id":"cam%03d","url":"rtsp://camsim:8554/cam/%03d","analyse":"faces","fps":2}`, i, i)
		if code := call("POST", nodes[0]+"/v1/cameras", body, nil); code != 201 {
			t.Fatalf("add camera %d: %d", i, code)
		}
	}
	// Cameras live, spread over the nodes, as any node lists them.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list struct {
			Cameras []struct{ ID, State, Node string }
		}
		call("GET", nodes[2]+"/v1/cameras", "", &list)
		on := map[string]int{}
		for _, c := range list.Cameras {
			if c.State == "live" {
				on[c.Node]++
			}
		}
		if len(list.Cameras) == 6 && on[""] == 0 && on["vigil1"]+on["vigil2"]+on["vigil3"] == 6 && len(on) >= 2 {
			t.Logf("cameras live per node: %v", on)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cameras: %+v", list.Cameras)
		}
		time.Sleep(time.Second)
	}
	// A face event stored (camsim's people walking past).
	deadline = time.Now().Add(3 * time.Minute)
	for {
		var evs struct {
			Events []struct{ ID, Camera, Kind string }
		}
		call("GET", nodes[1]+"/v1/events?kind=face&limit=5", "", &evs)
		if len(evs.Events) > 0 {
			t.Logf("stored: %+v", evs.Events[0])
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no face event stored in 3 minutes")
		}
		time.Sleep(2 * time.Second)
	}
	// Every node answers a WHEP offer for a camera (relaying it when another node runs it).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range nodes {
		v, err := whep.Dial(ctx, n+"/v1/live/cam001/whep", whep.Options{Token: token})
		if err != nil {
			t.Fatalf("WHEP through %s: %v", n, err)
		}
		if err := v.WaitFrames(ctx, 5); err != nil {
			t.Errorf("frames through %s: %v", n, err)
		}
		_ = v.Close(true)
	}
}

func waitReady(t *testing.T, base string, within time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready in %v; a node's log:\n%s", base, within, logs())
		}
		time.Sleep(time.Second)
	}
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
