package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/core/config"
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
	_, out, _ := runCmd("token", "create", "--role", "operator", "--name", "operator", "--data", data)
	operator := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	_, out, _ = runCmd("token", "create", "--role", "patrol", "--name", "patrol 1", "--data", data)
	patrol := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	start := func(id string) *testNode {
		cfg := config.Default()
		cfg.HTTP.Addr = "127.0.0.1:0"
		cfg.Data = t.TempDir()
		cfg.Pipeline.Enabled = false
		cfg.Footage.Enabled = false
		cfg.Live.Enabled = false
		cfg.Database.URL = config.SecretURL(dbURL)
		cfg.Bus.URL = config.SecretURL(busURL)
		cfg.Cluster.Node = id
		return startNode(t, cfg)
	}
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
