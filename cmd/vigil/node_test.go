package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// testNode is a vigil serve run by a test.
type testNode struct {
	URL  string // http://host:port of the API
	Addr string
	t    *testing.T
	stop context.CancelFunc
	done chan error
}

// nodeConfig is serve's default configuration for a test: the API on a free loopback port,
// data in a temporary folder, live view on a free loopback UDP port, and the test's own
// PostgreSQL database when dbURL is not empty.
func nodeConfig(t *testing.T, dbURL string) config.Config {
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.Live.UDPAddr = "127.0.0.1:0"
	cfg.Database.URL = config.SecretURL(dbURL)
	return cfg
}

// startNode runs serve with cfg until the test ends (or Stop) and returns once every component
// has started; a node that fails to start fails the test. Logs go to the test's log only when
// VIGIL_TEST_LOG is set.
func startNode(t *testing.T, cfg config.Config) *testNode {
	t.Helper()
	var w io.Writer = io.Discard
	if os.Getenv("VIGIL_TEST_LOG") != "" {
		w = os.Stderr
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{t: t, stop: cancel, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() { n.done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(w, nil)), func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		n.Addr, n.URL = a, "http://"+a
	case err := <-n.done:
		cancel()
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("serve did not start within 2 minutes")
	}
	t.Cleanup(n.Stop)
	return n
}

// Stop stops the node and checks that it stopped cleanly within 30 s. It may be called again.
func (n *testNode) Stop() {
	if n.done == nil {
		return
	}
	n.stop()
	select {
	case err := <-n.done:
		if err != nil {
			n.t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		n.t.Error("serve did not stop within 30 s")
	}
	n.done = nil
}

// TestReadyzAndToolsBesideServe: a node on its own managed PostgreSQL, in a data directory that
// does not exist yet (as root, the server runs as postgres and must get through the folders
// vigil creates). /healthz and /readyz answer, /readyz names what is not ready. A tool run beside
// it (vigil doors add) uses the node's cluster and leaves it running.
func TestReadyzAndToolsBesideServe(t *testing.T) {
	base, err := os.MkdirTemp("", "vigil-first-run-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755)
	t.Cleanup(func() { os.RemoveAll(base) })
	cfg := nodeConfig(t, "")
	cfg.Data = filepath.Join(base, "fresh", "data")
	cfg.Pipeline.Enabled, cfg.Footage.Enabled, cfg.Live.Enabled = false, false, false
	n := startNode(t, cfg)
	get := func(path string) (int, map[string]any) {
		t.Helper()
		r, err := http.Get(n.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var v map[string]any
		json.NewDecoder(r.Body).Decode(&v)
		return r.StatusCode, v
	}
	if code, v := get("/healthz"); code != 200 || v["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, v)
	}
	if code, v := get("/readyz"); code != 200 || v["status"] != "ready" {
		t.Fatalf("readyz on a started node: %d %v", code, v)
	}
	t.Setenv("VIGIL_DATA", "")
	code, out, errs := runCmd("doors", "add", "--id", "gate-1", "--data", cfg.Data)
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("doors add beside serve: %d %q %s", code, out, errs)
	}
	code, out, errs = runCmd("token", "create", "--role", "admin", "--name", "ops", "--data", cfg.Data)
	if code != 0 {
		t.Fatalf("token create beside serve: %d %s", code, errs)
	}
	// The tools are done: the node's database must still be there.
	req, _ := http.NewRequest("GET", n.URL+"/v1/doors", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !strings.Contains(string(body), `"gate-1"`) {
		t.Fatalf("after the tools, GET /v1/doors: %d %s", r.StatusCode, body)
	}
	if code, v := get("/readyz"); code != 200 {
		t.Fatalf("readyz after the tools: %d %v", code, v)
	}
	n.Stop()
}

// TestReadyzNamesTheDatabase: with its database unreachable a started node is not ready, and
// /readyz says why; it is ready again once the database is back.
func TestReadyzNamesTheDatabase(t *testing.T) {
	db := testenv.PostgresDB(t)
	path := testenv.NewProxy(t, "127.0.0.1:5432")
	cfg := nodeConfig(t, strings.Replace(db, "127.0.0.1:5432", path.Addr(), 1))
	cfg.Pipeline.Enabled, cfg.Footage.Enabled, cfg.Live.Enabled = false, false, false
	n := startNode(t, cfg)
	ready := func() (int, string) {
		r, err := http.Get(n.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return r.StatusCode, string(b)
	}
	if code, b := ready(); code != 200 {
		t.Fatalf("before the outage: %d %s", code, b)
	}
	path.Cut()
	if code, b := ready(); code != 503 || !strings.Contains(b, "database") {
		t.Fatalf("database unreachable: %d %s", code, b)
	}
	path.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := ready()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database back: %d %s", code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConnectionCap: past http.max_connections_per_address a host's next connection is closed at
// once while other hosts still get in; past http.max_connections everyone's is, until one closes.
func TestConnectionCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListener(ln, 3, 2)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { // a server: echoes until the client goes
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	// open dials from a loopback address of its own and reports whether the node serves it.
	open := func(from string) (net.Conn, bool) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("x"))
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
		return c, err == nil
	}
	a1, ok1 := open("127.0.0.2")
	_, ok2 := open("127.0.0.2")
	_, ok3 := open("127.0.0.2")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("one host's connections served: %v %v %v, want the third closed", ok1, ok2, ok3)
	}
	if _, ok := open("127.0.0.3"); !ok {
		t.Fatal("another host was kept out by the first one's connections")
	}
	if _, ok := open("127.0.0.4"); ok {
		t.Fatal("a connection past max_connections was served")
	}
	a1.Close()
	time.Sleep(100 * time.Millisecond)
	if _, ok := open("127.0.0.4"); !ok {
		t.Fatal("a connection was refused after one closed")
	}
}
