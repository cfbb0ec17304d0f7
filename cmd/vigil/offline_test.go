package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/internal/core/config"
	"github.com/vigil-oss/vigil/internal/sim/doorsim"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// TestControllerOfflineAndBack: a controller syncs its cache, vigil stops, the controller keeps
// deciding from its cache (a resident's card opens, an unknown card does not), vigil comes back
// and the offline decisions land in the audit chain.
func TestControllerOfflineAndBack(t *testing.T) {
	data := t.TempDir()
	dbURL := testenv.PostgresDB(t)
	t.Setenv("VIGIL_DATABASE_URL", dbURL)
	_, out, _ := runCmd("token", "create", "--role", "admin", "--name", "estate office", "--data", data)
	admin := &http.Client{Transport: bearer{strings.TrimSpace(out)}}
	_, out, errs := runCmd("doors", "add", "--id", "b2-gate", "--data", data)
	key, err := hex.DecodeString(strings.TrimSpace(out))
	if err != nil || len(key) != 32 {
		t.Fatalf("doors add: %q %s", out, errs)
	}
	cfg := config.Default()
	cfg.HTTP.Addr = "127.0.0.1:18993"
	cfg.Data = data
	cfg.Pipeline.Enabled = false
	cfg.Footage.Enabled = false
	cfg.Database.URL = config.SecretURL(dbURL)
	node := startNode(t, cfg)
	base := "http://" + cfg.HTTP.Addr
	for _, c := range []struct{ path, body string }{
		{"/v1/units", `{"id":"b2-0202"}`},
		{"/v1/people", `{"id":"wang","name":"Wang Fang","kind":"resident"}`},
		{"/v1/people/wang/leases", fmt.Sprintf(`{"unit":"b2-0202","starts":%q,"ends":%q}`, time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339))},
		{"/v1/people/wang/credentials", `{"kind":"card","value":"B2-WANG"}`},
		{"/v1/doors/b2-gate/rules", `{"who_kind":"unit","who":"b2-0202"}`},
	} {
		r, err := admin.Post(base+c.path, "application/json", strings.NewReader(c.body))
		if err != nil || r.StatusCode != 201 {
			t.Fatalf("POST %s: %v %v", c.path, r.StatusCode, err)
		}
		r.Body.Close()
	}
	ctx := context.Background()
	var liCard string
	ctrl := doorsim.New(base, "b2-gate", key)
	if err := ctrl.Sync(ctx); err != nil || ctrl.Cached() != 1 || !ctrl.LastSync().Full {
		t.Fatalf("sync: %v, %d cached, %+v", err, ctrl.Cached(), ctrl.LastSync())
	}
	// Changes travel as changes: a flatmate's card is one entry added, revoking it one removed.
	for _, c := range []struct{ path, body string }{
		{"/v1/people", `{"id":"li","name":"Li Na","kind":"resident"}`},
		{"/v1/people/li/leases", fmt.Sprintf(`{"unit":"b2-0202","starts":%q,"ends":%q}`, time.Now().AddDate(0, -1, 0).Format(time.RFC3339), time.Now().AddDate(1, 0, 0).Format(time.RFC3339))},
		{"/v1/people/li/credentials", `{"kind":"card","value":"B2-LI"}`},
	} {
		r, err := admin.Post(base+c.path, "application/json", strings.NewReader(c.body))
		if err != nil || r.StatusCode != 201 {
			t.Fatalf("POST %s: %v %v", c.path, r.StatusCode, err)
		}
		if c.path == "/v1/people/li/credentials" {
			var cred struct{ ID int64 }
			json.NewDecoder(r.Body).Decode(&cred)
			liCard = fmt.Sprint(cred.ID)
		}
		r.Body.Close()
	}
	if err := ctrl.Sync(ctx); err != nil || ctrl.Cached() != 2 || ctrl.LastSync() != (doorsim.SyncResult{Added: 1}) {
		t.Fatalf("sync after a new card: %v, %d cached, %+v", err, ctrl.Cached(), ctrl.LastSync())
	}
	req, _ := http.NewRequest("DELETE", base+"/v1/credentials/"+liCard+"?reason=moved+out", nil)
	if r, err := admin.Do(req); err != nil || r.StatusCode/100 != 2 {
		t.Fatalf("revoke: %v %v", r.StatusCode, err)
	}
	if err := ctrl.Sync(ctx); err != nil || ctrl.Cached() != 1 || ctrl.LastSync() != (doorsim.SyncResult{Removed: 1}) {
		t.Fatalf("sync after a revocation: %v, %d cached, %+v", err, ctrl.Cached(), ctrl.LastSync())
	}
	// Nothing changed: "unchanged", or, when a late reload gave the same set a new version, an
	// empty delta; never the whole set again.
	if err := ctrl.Sync(ctx); err != nil || ctrl.Cached() != 1 || (ctrl.LastSync() != doorsim.SyncResult{Unchanged: true} && ctrl.LastSync() != doorsim.SyncResult{}) {
		t.Fatalf("sync with nothing changed: %v, %+v", err, ctrl.LastSync())
	}
	if g, _, _ := ctrl.Present(ctx, "card", "B2-LI"); g {
		t.Fatal("revoked card opened")
	}
	if g, r, online := ctrl.Present(ctx, "card", "B2-WANG"); !g || !online || r != access.Granted {
		t.Fatalf("online: %v %s %v", g, r, online)
	}
	// A remote unlock from the console (admin, with a reason) reaches the controller's channel,
	// and the door shows online with the unlock in its recent history.
	got := make(chan access.Command, 1)
	ctrl.OnUnlock = func(c access.Command) { got <- c }
	pollCtx, stopPoll := context.WithCancel(ctx)
	polling := make(chan struct{})
	go func() { defer close(polling); ctrl.Run(pollCtx, time.Hour) }()
	if r, _ := admin.Post(base+"/v1/doors/b2-gate/unlock", "application/json", strings.NewReader(`{}`)); r.StatusCode != 400 {
		t.Fatalf("remote unlock without a reason: %d", r.StatusCode)
	}
	r, err := admin.Post(base+"/v1/doors/b2-gate/unlock", "application/json", strings.NewReader(`{"reason":"resident locked out, called the post"}`))
	if err != nil || r.StatusCode != 201 {
		t.Fatalf("remote unlock: %v %v", r.StatusCode, err)
	}
	select {
	case c := <-got:
		if c.Reason != "remote_unlock" || c.Door != "b2-gate" {
			t.Fatalf("command %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the remote unlock did not reach the controller")
	}
	stopPoll()
	<-polling
	var doors struct {
		Doors []struct {
			ID     string
			Online bool
		}
	}
	getJSON(t, admin, base+"/v1/doors", &doors)
	if len(doors.Doors) != 1 || !doors.Doors[0].Online {
		t.Fatalf("doors %+v", doors)
	}
	var recent struct {
		Events []struct{ Action, Reason, Actor string }
	}
	getJSON(t, admin, base+"/v1/doors/b2-gate/recent", &recent)
	if len(recent.Events) == 0 || recent.Events[0].Action != "door.unlock.remote" || recent.Events[0].Reason != "resident locked out, called the post" {
		t.Fatalf("recent %+v", recent)
	}

	// vigil goes down. The controller refuses while vigil may only be slow, and decides from its
	// cache once vigil has been unreachable for OfflineAfter.
	// (The controller may notice while the node is still stopping: its patience is set long for
	// that, then short, so that the test does not depend on how long a stop takes.)
	ctrl.OfflineAfter = time.Hour
	node.Stop()
	if g, r, online := ctrl.Present(ctx, "card", "B2-WANG"); g || online || r != "vigil_unreachable" {
		t.Fatalf("just after vigil went: %v %s %v", g, r, online)
	}
	ctrl.OfflineAfter = time.Second
	time.Sleep(1100 * time.Millisecond)
	if g, r, online := ctrl.Present(ctx, "card", "B2-WANG"); !g || online || r != access.Granted {
		t.Fatalf("offline resident: %v %s %v", g, r, online)
	}
	if g, r, online := ctrl.Present(ctx, "card", "NOT-A-CARD"); g || online || r != access.DenyUnknown {
		t.Fatalf("offline stranger (fail-secure): %v %s %v", g, r, online)
	}
	if _, err := ctrl.Upload(ctx); err == nil || ctrl.Pending() != 2 {
		t.Fatalf("upload while down: %v, %d pending", err, ctrl.Pending())
	}
	// vigil is back: the offline decisions are uploaded and audited.
	startNode(t, cfg)
	if n, err := ctrl.Upload(ctx); err != nil || n != 2 || ctrl.Pending() != 0 {
		t.Fatalf("upload: %d %v", n, err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var offline int
	conn.QueryRow(ctx, `SELECT count(*) FROM audit WHERE action = 'door.decision.offline'`).Scan(&offline)
	if offline != 2 {
		t.Fatalf("%d offline decisions audited", offline)
	}
	if ctrl.Sync(ctx) != nil {
		t.Fatal("sync after restart")
	}
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	r, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("GET %s: %d %s", url, r.StatusCode, b)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
