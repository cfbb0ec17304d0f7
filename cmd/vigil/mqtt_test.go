package main

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestServeSendsCommandsOverMQTT: with access.mqtt.url set, vigil serve publishes door commands
// to the broker; a controller subscribed there (doorsim --mqtt) gets a remote unlock from the
// console's API, signed with its key.
func TestServeSendsCommandsOverMQTT(t *testing.T) {
	broker := testenv.StartMQTT(t)
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	_, out, _ := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	admin := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	_, out, errs := runCmd("doors", "add", "--id", "d4-gate", "--data", data)
	key, err := hex.DecodeString(strings.TrimSpace(out))
	if err != nil || len(key) != 32 {
		t.Fatalf("doors add: %q %s", out, errs)
	}
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Live.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	cfg.Access.MQTT = config.MQTT{URL: broker.URL, Topic: "estate/doors"}
	n := startNode(t, cfg)
	base := n.URL
	ctrl := doorsim.New(base, "d4-gate", key)
	got := make(chan access.Command, 1)
	ctrl.OnUnlock = func(c access.Command) { got <- c }
	unsub, err := ctrl.ConnectMQTT(broker.URL, "estate/doors")
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	r, err := admin.Post(base+"/v1/doors/d4-gate/unlock", "application/json", strings.NewReader(`{"reason":"delivery, resident away"}`))
	if err != nil || r.StatusCode != 201 {
		t.Fatalf("remote unlock: %v %v", r.StatusCode, err)
	}
	select {
	case c := <-got:
		if c.Door != "d4-gate" || c.Reason != "remote_unlock" {
			t.Fatalf("command %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no command over MQTT within 5 s")
	}
	if n := ctrl.Rejected.Load(); n != 0 {
		t.Fatalf("%d messages rejected", n)
	}
	n.Stop()
}
