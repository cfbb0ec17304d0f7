package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/event"
	"github.com/vigil-oss/vigil/internal/core/space"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/camsim"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/internal/sim/whep"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestClusterMembership: two nodes sharing a bus and a database see each other in
// GET /v1/cluster, each with its advertise URL and the cameras it runs; a node that stops
// leaves the list at once; an operator may look, a patrol officer may not.
func TestClusterMembership(t *testing.T) {
	busURL := testenv.StartNATS(t)
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data := t.TempDir()
	operator := tokenClient(t, "operator", "operator", data)
	patrol := tokenClient(t, "patrol", "patrol 1", data)
	start := func(id string) *testNode { return clusterNode(t, id, dbURL, busURL) }
	a := start("node-a")
	defer a.Stop()
	b := start("node-b")
	type view struct {
		Self  string
		Nodes []struct {
			ID, Advertise string
			Cameras       int
		}
	}
	look := func(c *http.Client, n *testNode) (int, view) {
		r, err := c.Get(n.URL + "/v1/cluster")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var v view
		json.NewDecoder(r.Body).Decode(&v)
		return r.StatusCode, v
	}
	code, v := look(operator, a)
	if code != 200 || v.Self != "node-a" || len(v.Nodes) != 2 || v.Nodes[0].ID != "node-a" || v.Nodes[1].ID != "node-b" ||
		v.Nodes[1].Advertise != b.URL {
		t.Fatalf("node a sees %d %+v", code, v)
	}
	if code, v := look(operator, b); code != 200 || v.Self != "node-b" || len(v.Nodes) != 2 {
		t.Fatalf("node b sees %d %+v", code, v)
	}
	if code, _ := look(patrol, a); code != 403 {
		t.Errorf("a patrol officer saw the cluster: %d", code)
	}
	b.Stop()
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, v = look(operator, a); len(v.Nodes) == 1 && v.Nodes[0].ID == "node-a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after node b stopped, node a sees %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCamerasSpreadOverNodes: cameras registered on one node of three are each run by exactly
// one node, no node empty; a node that stops hands its cameras to the others; a node that joins
// takes about its share and no camera runs twice.
func TestCamerasSpreadOverNodes(t *testing.T) {
	busURL := testenv.StartNATS(t)
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data := t.TempDir()
	admin := tokenClient(t, "admin", "estate office", data)
	const cams = 9
	simAddr := startCamsim(t, cams)
	start := func(id string) *testNode { return clusterNode(t, id, dbURL, busURL) }
	nodes := map[string]*testNode{"node-a": start("node-a"), "node-b": start("node-b"), "node-c": start("node-c")}
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	addCameras(t, admin, nodes["node-a"].URL, simAddr, cams)
	// where: camera → the nodes running it live.
	where := func() map[string][]string {
		out := map[string][]string{}
		for id, n := range nodes {
			body := siteCameras(t, admin, n.URL)
			for _, c := range body.Cameras {
				if c.State == "live" && c.Node == id { // what the answering node runs itself
					out[c.ID] = append(out[c.ID], id)
				}
			}
		}
		return out
	}
	settled := func(what string) map[string][]string {
		t.Helper()
		t0 := time.Now()
		for {
			w := where()
			once, per := len(w) == cams, map[string]int{}
			for _, on := range w {
				once = once && len(on) == 1
				if len(on) > 0 {
					per[on[0]]++
				}
			}
			if once && len(per) == len(nodes) {
				t.Logf("%s: every camera live on one node after %v: %v", what, time.Since(t0).Round(time.Millisecond), per)
				return w
			}
			if time.Since(t0) > 20*time.Second {
				t.Fatalf("%s: cameras %v", what, w)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	first := settled("three nodes")
	// The node running most stops (a planned stop): its cameras move to the other two.
	busiest, most := "", 0
	per := map[string]int{}
	for _, on := range first {
		per[on[0]]++
	}
	for id, c := range per {
		if c > most {
			busiest, most = id, c
		}
	}
	nodes[busiest].Stop()
	delete(nodes, busiest)
	second := settled(busiest + " stopped")
	// A node joins: it takes about its share; nothing else moves.
	nodes["node-d"] = start("node-d")
	third := settled("node-d joined")
	moved := 0
	for cam, on := range third {
		if on[0] != second[cam][0] {
			moved++
			if on[0] != "node-d" {
				t.Errorf("%s moved from %s to %s, not to the new node", cam, second[cam][0], on[0])
			}
		}
	}
	if moved == 0 || moved > cams/3+2 {
		t.Errorf("node-d joining moved %d of %d cameras", moved, cams)
	}
}

// TestLiveViewFromAnyNode: any node lists every camera of the site with the node running it,
// and a viewer pointed at one node plays a camera another node runs (the WHEP offer and its
// hang-up are relayed to the camera's node; the media comes from there).
func TestLiveViewFromAnyNode(t *testing.T) {
	busURL := testenv.StartNATS(t)
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data := t.TempDir()
	_, out, _ := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	token := strings.TrimSpace(out)
	admin := &http.Client{Transport: bearer{token}}
	_, out, _ = runCmd("token", "create", "--role", "patrol", "--name", "patrol 1", "--data", data)
	patrol := strings.TrimSpace(out)
	const cams = 4
	simAddr := startCamsim(t, cams)
	start := func(id string) *testNode {
		cfg := clusterConfig(t, id, dbURL, busURL)
		cfg.Live.Enabled, cfg.Live.UDPAddr = true, "127.0.0.1:0" // each node its own port
		return startNode(t, cfg)
	}
	a, b := start("node-a"), start("node-b")
	defer a.Stop()
	defer b.Stop()
	addCameras(t, admin, a.URL, simAddr, cams)
	var onB string
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := siteCameras(t, admin, a.URL)
		live, nodes := 0, map[string]bool{}
		for _, c := range body.Cameras {
			if c.State == "live" && c.Node != "" {
				live++
				nodes[c.Node] = true
				if c.Node == "node-b" {
					onB = c.ID
				}
			}
		}
		if live == cams && len(body.Cameras) == cams && onB != "" {
			t.Logf("node a lists %+v", body.Cameras)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a lists %+v (live %d; want all %d, some on node-b)", body.Cameras, live, cams)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := whep.Dial(ctx, a.URL+"/v1/live/"+onB+"/whep", whep.Options{Token: patrol})
	if err != nil {
		t.Fatalf("viewing %s (on node b) through node a: %v", onB, err)
	}
	if err := v.WaitFrames(ctx, 10); err != nil {
		t.Fatalf("frames of %s through node a: %v", onB, err)
	}
	if err := v.Close(true); err != nil {
		t.Errorf("hanging up through node a: %v", err)
	}
	if _, err := whep.Dial(ctx, a.URL+"/v1/live/"+onB+"/whep", whep.Options{Token: "not-a-token"}); err == nil {
		t.Error("a viewer without a valid token was relayed")
	}
}

// clusterNode starts a node of a site sharing dbURL and busURL, without recognition, footage
// or live view (what these tests look at is where cameras run).
func clusterNode(t *testing.T, id, dbURL, busURL string) *testNode {
	return startNode(t, clusterConfig(t, id, dbURL, busURL))
}

// clusterConfig is clusterNode's configuration.
func clusterConfig(t *testing.T, id, dbURL, busURL string) config.Config {
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Live.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.Bus.URL = config.SecretURL(busURL)
	cfg.Cluster.Node = id
	return cfg
}

// TestReplayToAnotherNodeRefused: a door controller's signed request answered by one node is a
// replay on every other node of the site (the nonce store is the bus's KV bucket), and the first
// node refuses it too.
func TestReplayToAnotherNodeRefused(t *testing.T) {
	busURL := testenv.StartNATS(t)
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data := t.TempDir()
	code, out, errs := runCmd("doors", "add", "--id", "gate-1", "--camera", "cam001", "--data", data)
	if code != 0 {
		t.Fatalf("doors add: %s", errs)
	}
	key, _ := hex.DecodeString(strings.TrimSpace(out))
	a := clusterNode(t, "node-a", dbURL, busURL)
	defer a.Stop()
	b := clusterNode(t, "node-b", dbURL, busURL)
	defer b.Stop()
	body := []byte(`{"credential":{"kind":"card","value":"NO-SUCH-CARD"}}`)
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "nonce-0123456789abcdef01"
	send := func(n *testNode) (int, string) {
		req, _ := http.NewRequest("POST", n.URL+"/v1/doors/gate-1/decisions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(access.HeaderTimestamp, ts)
		req.Header.Set(access.HeaderNonce, nonce)
		req.Header.Set(access.HeaderSignature, access.Sign(key, "POST", "/v1/doors/gate-1/decisions", "", ts, nonce, body))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if code, body := send(a); code != 200 || !strings.Contains(body, access.DenyUnknown) {
		t.Fatalf("first request on node a: %d %s", code, body)
	}
	for _, n := range []*testNode{b, a} {
		if code, body := send(n); code != 401 || !strings.Contains(body, access.DenyReplay) {
			t.Errorf("the same request replayed to %s: %d %s", n.URL, code, body)
		}
	}
}

// TestUnlockReachesControllerOnAnotherNode: a door controller long-polls node B; an operator's
// remote unlock made on node A reaches it through the bus, once.
func TestUnlockReachesControllerOnAnotherNode(t *testing.T) {
	busURL, dbURL, _, key, admin := doorSite(t)
	a := clusterNode(t, "node-a", dbURL, busURL)
	defer a.Stop()
	b := clusterNode(t, "node-b", dbURL, busURL)
	defer b.Stop()
	ctrl := doorsim.New(b.URL, "gate-1", key)
	got := make(chan access.Command, 4)
	ctrl.OnUnlock = func(c access.Command) { got <- c }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ctrl.Run(ctx, time.Minute)
	time.Sleep(300 * time.Millisecond) // the long poll is waiting on b
	r, err := admin.Post(a.URL+"/v1/doors/gate-1/unlock", "application/json", strings.NewReader(`{"reason":"visitor at the intercom"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("remote unlock on node a: %d %s", r.StatusCode, body)
	}
	select {
	case c := <-got:
		if c.Door != "gate-1" || c.Reason != "remote_unlock" || !strings.Contains(string(body), c.ID) {
			t.Fatalf("the controller on node b got %+v for %s", c, body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unlock decided on node a never reached the controller polling node b")
	}
	select {
	case c := <-got:
		t.Fatalf("a second unlock arrived: %+v", c)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestNodeRoles: a site of an API node and a cameras+search+doors node. Cameras run only on
// the node with the cameras role; a plate search asked of the API node is answered by the search
// node; the API node refuses door controllers and the other node refuses API calls, each with
// 421 and what to use instead.
func TestNodeRoles(t *testing.T) {
	busURL := testenv.StartNATS(t)
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data := t.TempDir()
	admin := tokenClient(t, "admin", "estate office", data)
	simAddr := startCamsim(t, 3)
	start := func(id string, roles ...string) *testNode {
		cfg := clusterConfig(t, id, dbURL, busURL)
		cfg.Cluster.Roles = roles
		return startNode(t, cfg)
	}
	front := start("front", config.RoleAPI)
	defer front.Stop()
	back := start("back", config.RoleCameras, config.RoleSearch, config.RoleDoors)
	defer back.Stop()
	addCameras(t, admin, front.URL, simAddr, 3)
	deadline := time.Now().Add(15 * time.Second)
	for {
		body := siteCameras(t, admin, front.URL)
		live := 0
		for _, c := range body.Cameras {
			if c.State == "live" && c.Node == "back" {
				live++
			}
			if c.Node == "front" {
				t.Fatalf("%s runs on the API node", c.ID)
			}
		}
		if live == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cameras: %+v", body.Cameras)
		}
		time.Sleep(200 * time.Millisecond)
	}
	get := func(c *http.Client, url string) (int, string) {
		r, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	span := "&from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	if code, body := get(admin, front.URL+"/v1/search/plates?q=B123&reason=case%2042"+span); code != 200 || !strings.Contains(body, `"plates"`) {
		t.Errorf("a plate search on the API node: %d %s", code, body)
	}
	if code, body := get(http.DefaultClient, front.URL+"/v1/doors/gate-1/commands?wait=1"); code != http.StatusMisdirectedRequest || !strings.Contains(body, "doors role") {
		t.Errorf("a controller on the API node: %d %s", code, body)
	}
	if code, body := get(admin, back.URL+"/v1/cameras"); code != http.StatusMisdirectedRequest || !strings.Contains(body, "api role") {
		t.Errorf("the API on the cameras node: %d %s", code, body)
	}
	if code, _ := get(http.DefaultClient, back.URL+"/readyz"); code != 200 {
		t.Errorf("readyz on the cameras node: %d", code)
	}
}

// TestAutoUnlockDecidedOnceAcrossNodes: two camera nodes, one of which runs the door's camera;
// the controller long-polls node B (the doors role). A resident's face at the camera is decided
// once, by the node that runs the camera, though both see the event on the bus, and B's
// controller opens the door once.
func TestAutoUnlockDecidedOnceAcrossNodes(t *testing.T) {
	busURL, dbURL, data, key, admin := doorSite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The resident, with a template of the default face space (made by the access package).
	pool, err := pgxpool.New(ctx, dbURL) // the site's database, migrated by doors add
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	eng, err := access.NewEngine(ctx, pool, audit.New(pool, filepath.Join(data, "anchor")), testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	office := auth.Actor{Name: "office", Role: "admin"}
	sp := space.DefaultSpace
	if err := eng.AddPerson(ctx, office, "wang", "Wang Fang", "resident"); err != nil {
		t.Fatal(err)
	}
	if err := eng.AddRule(ctx, office, "gate-1", "person", "wang", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.AddCredential(ctx, office, "wang", access.NewCredential{Kind: access.KindCard, Value: "CARD-WANG"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddFaceTemplate(ctx, office, "wang", access.FaceTemplate{Embedding: access.SyntheticFace(sp, "wang"), Quality: 0.9, Liveness: 0.9, Consent: "signed form (test)"}); err != nil {
		t.Fatal(err)
	}
	start := func(id string, roles ...string) *testNode {
		cfg := clusterConfig(t, id, dbURL, busURL)
		cfg.Cluster.Roles = roles
		return startNode(t, cfg)
	}
	a := start("node-a", config.RoleCameras, config.RoleAPI)
	defer a.Stop()
	b := start("node-b", config.RoleCameras, config.RoleDoors)
	defer b.Stop()
	r, err := admin.Post(a.URL+"/v1/cameras", "application/json", strings.NewReader(`{"id":"cam001","url":"rtsp://127.0.0.1:9/none","analyse":"faces"}`))
	if err != nil || r.StatusCode != 201 {
		t.Fatalf("add camera: %v %v", r.StatusCode, err)
	}
	r.Body.Close()
	time.Sleep(1500 * time.Millisecond) // node A takes the camera's lease
	ctrl := doorsim.New(b.URL, "gate-1", key)
	got := make(chan access.Command, 4)
	ctrl.OnUnlock = func(c access.Command) { got <- c }
	go ctrl.Run(ctx, time.Minute)
	time.Sleep(300 * time.Millisecond)
	nc, err := nats.Connect(busURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	now := time.Now()
	ev := &event.Event{ID: event.NewID(now), Camera: "cam001", Kind: event.KindFace, Time: now, First: now, Frames: 4, Liveness: 0.9,
		Match: &event.Match{PersonID: "wang", List: access.AccessList, Distance: 0.2, Votes: 3}, Embedding: event.PackVector(access.SyntheticFace(sp, "wang")), Model: sp.Name}
	if _, err := js.Publish(ctx, ev.Subject(), ev.Pack(), jetstream.WithMsgID(ev.ID)); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.PersonID != "wang" || c.Event != ev.ID {
			t.Fatalf("the controller got %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the resident's face at node A's camera never opened the door on node B")
	}
	time.Sleep(time.Second)
	var decisions int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action = 'door.decision' AND detail::jsonb->>'event' = $1`, ev.ID).Scan(&decisions); err != nil {
		t.Fatal(err)
	}
	if decisions != 1 || len(got) != 0 {
		t.Fatalf("the face was decided %d times and opened the door %d more times", decisions, len(got))
	}
}

// doorSite is a site's bus and database with door gate-1 (camera cam001): its controller key,
// the data folder the tools use, and an admin's client.
func doorSite(t *testing.T) (busURL, dbURL, data string, key []byte, admin *http.Client) {
	t.Helper()
	busURL, dbURL = testenv.StartNATS(t), testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	data = t.TempDir()
	code, out, errs := runCmd("doors", "add", "--id", "gate-1", "--camera", "cam001", "--data", data)
	if code != 0 {
		t.Fatalf("doors add: %s", errs)
	}
	key, _ = hex.DecodeString(strings.TrimSpace(out))
	return busURL, dbURL, data, key, tokenClient(t, "admin", "estate office", data)
}

// addCameras registers camsim's cameras 1…n (at simAddr, not analysed) through the API at url.
func addCameras(t *testing.T, admin *http.Client, url, simAddr string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf(`{"id":"cam%03d","url":"rtsp://%s%s","analyse":"none"}`, i, simAddr, camsim.CameraPath(i))
		r, err := admin.Post(url+"/v1/cameras", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("add camera %d: %d", i, r.StatusCode)
		}
	}
}

// siteCameras is GET /v1/cameras on the node at url.
func siteCameras(t *testing.T, c *http.Client, url string) (body struct {
	Cameras []struct{ ID, State, Node string }
}) {
	t.Helper()
	r, err := c.Get(url + "/v1/cameras")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Fatalf("GET /v1/cameras: %d %v", r.StatusCode, err)
	}
	return body
}
