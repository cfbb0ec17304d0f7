package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
	"github.com/vigil-oss/vigil/internal/core/space"
	"github.com/vigil-oss/vigil/internal/testkit/testenv"
)

// doorSite is a small site: unit 1-101 with doors lobby-in, lobby-out (anti-passback on the
// lobby) and a night door open on no schedule window, and the people the cases need.
type doorSite struct {
	srv     *httptest.Server
	engine  *access.Engine
	pool    *pgxpool.Pool
	keys    map[string][]byte
	qr      string
	expired string
	revoked int64
}

func newDoorSite(t *testing.T) *doorSite {
	t.Helper()
	ctx := context.Background()
	pool := testenv.Pool(t)
	audit := audit.New(pool, "")
	e, err := access.NewEngine(ctx, pool, audit, testenv.Secret())
	if err != nil {
		t.Fatal(err)
	}
	admin := auth.Actor{Name: "test admin", Role: auth.RoleAdmin}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	site := &doorSite{pool: pool, keys: map[string][]byte{}, engine: e}
	must(e.AddUnit(ctx, admin, "1-101", "Block 1, 101", "1"))
	for _, d := range []access.Door{
		{ID: "lobby-in", Camera: "cam001", Area: "lobby", Direction: "in", AntiPassback: true},
		{ID: "lobby-out", Area: "lobby", Direction: "out", AntiPassback: true},
		{ID: "night"},
	} {
		key, err := e.AddDoor(ctx, admin, d)
		must(err)
		site.keys[d.ID] = key
	}
	must(e.AddSchedule(ctx, admin, "holidays-only", json.RawMessage(`{"hol": [["00:00", "24:00"]]}`), nil, ""))
	must(e.AddRule(ctx, admin, "lobby-in", "unit", "1-101", ""))
	must(e.AddRule(ctx, admin, "lobby-out", "unit", "1-101", ""))
	must(e.AddRule(ctx, admin, "night", "unit", "1-101", "holidays-only"))
	must(e.AddRule(ctx, admin, "lobby-in", "person", "eve", ""))
	must(e.AddGroup(ctx, admin, "cleaners", "Cleaning staff"))
	must(e.AddRule(ctx, admin, "lobby-out", "group", "cleaners", ""))
	for _, p := range []struct{ id, kind, card string }{
		{"alice", "resident", "CARD-ALICE"}, {"bob", "resident", "CARD-BOB"}, {"carol", "resident", "CARD-CAROL"},
		{"dave", "resident", "CARD-DAVE"}, {"eve", "visitor", ""}, {"ivan", "staff", "CARD-IVAN"},
	} {
		must(e.AddPerson(ctx, admin, p.id, p.id, p.kind))
		if p.card != "" {
			_, _, err := e.AddCredential(ctx, admin, p.id, access.NewCredential{Kind: access.KindCard, Value: p.card})
			must(err)
		}
	}
	must(e.AddLease(ctx, admin, "alice", "1-101", now.AddDate(0, -1, 0), now.AddDate(1, 0, 0)))
	must(e.AddLease(ctx, admin, "bob", "1-101", now.AddDate(-1, 0, 0), now.AddDate(0, 0, -1))) // moved out yesterday
	must(e.AddLease(ctx, admin, "carol", "1-101", now.AddDate(0, 0, 7), now.AddDate(1, 0, 7))) // moves in next week
	must(e.AddLease(ctx, admin, "dave", "1-101", now.AddDate(0, -1, 0), now.AddDate(1, 0, 0)))
	must(e.SetBlacklisted(ctx, admin, "dave", true, "banned by the estate office"))
	must(e.AddGroupMember(ctx, admin, "cleaners", "ivan"))
	_, _, err = e.AddCredential(ctx, admin, "alice", access.NewCredential{Kind: access.KindPIN, Value: "9111", Duress: true})
	must(err)
	site.revoked, _, err = e.AddCredential(ctx, admin, "alice", access.NewCredential{Kind: access.KindCard, Value: "CARD-ALICE-OLD"})
	must(err)
	must(e.RevokeCredential(ctx, admin, site.revoked, "lost"))
	_, err = e.AddFaceTemplate(ctx, admin, "alice", access.FaceTemplate{Embedding: access.SyntheticFace(space.DefaultSpace, "alice"),
		Quality: 0.9, Liveness: 0.9, Consent: "signed form (test)"})
	must(err)
	from, until := now.Add(-time.Hour), now.Add(2*time.Hour)
	_, site.qr, err = e.AddCredential(ctx, admin, "eve", access.NewCredential{Kind: access.KindQR, ValidFrom: &from, ValidUntil: &until})
	must(err)
	past := now.Add(-time.Minute)
	_, site.expired, err = e.AddCredential(ctx, admin, "eve", access.NewCredential{Kind: access.KindQR, ValidFrom: &from, ValidUntil: &past})
	must(err)

	a, err := New(Deps{Cameras: fakeCameras{}, Registry: prometheus.NewRegistry(), Access: e, Audit: audit, Open: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(err)
	site.srv = httptest.NewServer(a.Handler())
	t.Cleanup(site.srv.Close)
	return site
}

var nonceN int

var testAdmin = auth.Actor{Name: "test admin", Role: auth.RoleAdmin}

// ask sends a signed decision request; ts and key may be overridden to forge one.
func (s *doorSite) ask(t *testing.T, door, kind, value string, key []byte, ts time.Time, nonce string) (int, access.Decision, http.Header) {
	t.Helper()
	if key == nil {
		key = s.keys[door]
	}
	if nonce == "" {
		nonceN++
		nonce = fmt.Sprintf("nonce-%016d", nonceN)
	}
	body, _ := json.Marshal(map[string]any{"credential": access.Presented{Kind: kind, Value: value}})
	path := "/v1/doors/" + door + "/decisions"
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req, _ := http.NewRequest("POST", s.srv.URL+path, bytes.NewReader(body))
	req.Header.Set(access.HeaderTimestamp, stamp)
	req.Header.Set(access.HeaderNonce, nonce)
	req.Header.Set(access.HeaderSignature, access.Sign(key, "POST", path, "", stamp, nonce, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var d access.Decision
	json.Unmarshal(out, &d)
	if resp.StatusCode == 200 {
		// The answer is signed with the door's key over the request's nonce.
		want := access.SignResponse(s.keys[door], resp.Header.Get(access.HeaderTimestamp), nonce, out)
		if resp.Header.Get(access.HeaderSignature) != want || d.Nonce != nonce {
			t.Fatalf("answer signature for %s: %s", door, out)
		}
	}
	return resp.StatusCode, d, resp.Header
}

func TestDoorDecisions(t *testing.T) {
	nonceN = 0 // the replay case below resends the third request's nonce
	s := newDoorSite(t)
	var alarms []access.Alarm
	s.engine.OnAlarm(func(a access.Alarm) { alarms = append(alarms, a) })
	now := time.Now()
	type tc struct {
		name, door, kind, value string
		grant                   bool
		reason                  string
	}
	for _, c := range []tc{
		{"resident on her own door", "lobby-in", "card", "CARD-ALICE", true, access.Granted},
		{"second entry without leaving", "lobby-in", "card", "CARD-ALICE", false, access.DenyAntiPassback},
		{"leaving", "lobby-out", "card", "CARD-ALICE", true, access.Granted},
		{"entering again", "lobby-in", "card", "CARD-ALICE", true, access.Granted},
		{"outside the schedule", "night", "card", "CARD-ALICE", false, access.DenySchedule},
		{"revoked card", "lobby-in", "card", "CARD-ALICE-OLD", false, access.DenyRevoked},
		{"lease ended", "lobby-in", "card", "CARD-BOB", false, access.DenyLeaseEnded},
		{"lease not started", "lobby-in", "card", "CARD-CAROL", false, access.DenyLeaseFuture},
		{"blacklisted", "lobby-in", "card", "CARD-DAVE", false, access.DenyBlacklisted},
		{"unknown card", "lobby-in", "card", "CARD-NOBODY", false, access.DenyUnknown},
		{"visitor QR in its window", "lobby-in", "qr", s.qr, true, access.Granted},
		{"visitor QR expired", "lobby-in", "qr", s.expired, false, access.DenyExpired},
		{"visitor on a door not granted", "lobby-out", "qr", s.qr, false, access.DenyNoRule},
		{"duress PIN: a plain grant at the door", "lobby-out", "pin", "9111", true, access.Granted},
		{"group member on the group's door", "lobby-out", "card", "CARD-IVAN", true, access.Granted},
		{"group member elsewhere", "lobby-in", "card", "CARD-IVAN", false, access.DenyNoRule},
	} {
		code, d, _ := s.ask(t, c.door, c.kind, c.value, nil, now, "")
		if code != 200 || d.Grant != c.grant || d.Reason != c.reason {
			t.Errorf("%s: %d grant %v reason %q, want grant %v %q", c.name, code, d.Grant, d.Reason, c.grant, c.reason)
		}
		if d.Grant && (d.PulseMS <= 0 || !d.Expires.After(time.Now())) {
			t.Errorf("%s: grant without pulse or expiry: %+v", c.name, d)
		}
	}
	// The duress PIN raised a silent alarm, and the audit knows it for what it was.
	if len(alarms) != 1 || alarms[0].Type != "duress" || alarms[0].Door != "lobby-out" {
		t.Fatalf("alarms %+v", alarms)
	}
	var duress int
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit WHERE reason = 'granted_duress'`).Scan(&duress)
	if duress != 1 {
		t.Fatalf("%d duress decisions audited", duress)
	}
	// Refused before any decision: forged, stale, replayed, unknown door.
	refusals := []struct {
		name   string
		code   int
		reason string
		send   func() (int, access.Decision, http.Header)
	}{
		{"bad signature", 401, access.DenyBadSignature, func() (int, access.Decision, http.Header) {
			return s.ask(t, "lobby-in", "card", "CARD-ALICE", s.keys["night"], now, "")
		}},
		{"stale timestamp", 401, access.DenyStale, func() (int, access.Decision, http.Header) {
			return s.ask(t, "lobby-in", "card", "CARD-ALICE", nil, now.Add(-2*time.Minute), "")
		}},
		{"replayed request", 401, access.DenyReplay, func() (int, access.Decision, http.Header) {
			return s.ask(t, "lobby-out", "card", "CARD-ALICE", nil, now, "nonce-0000000000000003") // the "leaving" request's nonce
		}},
		{"unknown door", 404, access.DenyUnknownDoor, func() (int, access.Decision, http.Header) {
			return s.ask(t, "back-gate", "card", "CARD-ALICE", s.keys["night"], now, "")
		}},
	}
	for _, r := range refusals {
		code, d, _ := r.send()
		if code != r.code || d.Grant || d.Reason != r.reason {
			t.Errorf("%s: %d %+v, want %d %q", r.name, code, d, r.code, r.reason)
		}
	}
	// Every decision is in the audit chain; the refusals are there in aggregate once flushed
	// (one row per door, address and reason, with a count), and the chain verifies.
	var n int
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit WHERE action = 'door.decision'`).Scan(&n)
	if n != 16 {
		t.Fatalf("%d door decisions audited, want 16", n)
	}
	if err := s.engine.FlushRefusals(context.Background()); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	rows, _ := s.pool.Query(context.Background(), `SELECT reason, actor, result_count FROM audit WHERE action = 'door.refused' ORDER BY reason`)
	for rows.Next() {
		var r, actor string
		var count int
		rows.Scan(&r, &actor, &count)
		reasons = append(reasons, fmt.Sprintf("%s %s %d", r, actor, count))
	}
	want := []string{"bad_signature door:lobby-in 1", "replayed_request door:lobby-out 1", "stale_timestamp door:lobby-in 1", "unknown_door door:(unknown) 1"}
	if !slices.Equal(reasons, want) {
		t.Fatalf("audited refusals %v, want %v", reasons, want)
	}
	rep, err := audit.Verify(context.Background(), s.pool, audit.VerifyOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("audit verify: %+v %v", rep, err)
	}
}

func TestAccessAdminAPI(t *testing.T) {
	s := newDoorSite(t)
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, s.srv.URL+path, bytes.NewReader([]byte(body)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, resp.StatusCode, b, want)
		}
		return out
	}
	call("POST", "/v1/people", `{"id":"frank","name":"Frank Wu","kind":"resident"}`, 201)
	call("POST", "/v1/people", `{"id":"frank","name":"Frank Wu","kind":"resident"}`, 409)
	call("POST", "/v1/people", `{"id":"x'; DROP TABLE people;--","name":"x","kind":"resident"}`, 400)
	call("POST", "/v1/people", `{"id":"gina","name":"Gina","kind":"landlord"}`, 400)
	call("POST", "/v1/people/frank/leases", `{"unit":"1-101","starts":"2026-01-01T00:00:00Z","ends":"2025-01-01T00:00:00Z"}`, 400)
	call("POST", "/v1/people/frank/leases", `{"unit":"9-999","starts":"2026-01-01T00:00:00Z","ends":"2027-01-01T00:00:00Z"}`, 400)
	call("POST", "/v1/people/frank/leases", `{"unit":"1-101","starts":"2026-01-01T00:00:00Z","ends":"2030-01-01T00:00:00Z"}`, 201)
	card := call("POST", "/v1/people/frank/credentials", `{"kind":"card","value":"CARD-FRANK"}`, 201)
	call("POST", "/v1/people/frank/credentials", `{"kind":"card","value":"CARD-FRANK"}`, 409) // one live card per number
	call("POST", "/v1/people/frank/credentials", `{"kind":"face"}`, 400)
	qr := call("POST", "/v1/people/frank/credentials", `{"kind":"qr"}`, 201)
	if len(qr["qr"].(string)) < 20 {
		t.Fatalf("qr %v", qr)
	}
	door := call("POST", "/v1/doors", `{"id":"garage","camera":"cam009"}`, 201)
	if len(door["key"].(string)) != 64 {
		t.Fatalf("door key %v", door)
	}
	call("POST", "/v1/doors/garage/rules", `{"who_kind":"unit","who":"1-101"}`, 201)
	call("POST", "/v1/doors/garage/rules", `{"who_kind":"everyone","who":"x"}`, 400)
	call("POST", "/v1/schedules", `{"id":"bad","weekly":{"mon":[["25:00","26:00"]]}}`, 400)
	call("POST", "/v1/people/frank/blacklist", `{"blacklisted":true}`, 400) // a reason is required
	id := fmt.Sprint(card["id"].(float64))
	call("DELETE", "/v1/credentials/"+id+"?reason=lost", "", 200)
	call("DELETE", "/v1/credentials/"+id, "", 400)
	call("POST", "/v1/units", `{"id":"1-101"}`, 409)
	call("POST", "/v1/groups", `{"id":"guards","name":"Security"}`, 201)
	call("POST", "/v1/groups/guards/members", `{"person":"frank"}`, 201)
	call("POST", "/v1/groups/guards/members", `{"person":"nobody"}`, 400)
	call("POST", "/v1/doors/garage/rules", `{"who_kind":"group","who":"guards"}`, 201)
}

// TestAutoUnlockChannel: a person recognised at a door's camera opens that door through the
// controller's long poll; a spoof or a stranger queues nothing.
func TestAutoUnlockChannel(t *testing.T) {
	s := newDoorSite(t)
	ctx := context.Background()
	poll := func(wait string) (int, []access.Command) {
		t.Helper()
		nonceN++
		nonce := fmt.Sprintf("poll-%016d", nonceN)
		path := "/v1/doors/lobby-in/commands"
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest("GET", s.srv.URL+path+"?wait="+wait, nil)
		req.Header.Set(access.HeaderTimestamp, ts)
		req.Header.Set(access.HeaderNonce, nonce)
		req.Header.Set(access.HeaderSignature, access.Sign(s.keys["lobby-in"], "GET", path, "wait="+wait, ts, nonce, nil))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct{ Commands []access.Command }
		json.Unmarshal(b, &out)
		if resp.StatusCode == 200 && resp.Header.Get(access.HeaderSignature) != access.SignResponse(s.keys["lobby-in"], resp.Header.Get(access.HeaderTimestamp), nonce, b) {
			t.Fatal("commands answer not signed")
		}
		return resp.StatusCode, out.Commands
	}
	if code, _ := poll("0"); code != 204 {
		t.Fatalf("empty channel: %d", code)
	}
	// The controller is waiting when the camera recognises alice.
	got := make(chan []access.Command, 1)
	go func() { _, c := poll("10"); got <- c }()
	time.Sleep(200 * time.Millisecond)
	e := s.engine
	if d, err := e.AutoUnlock(ctx, "lobby-in", camFace("mallory", 0.9), "evt-0", time.Now()); err != nil || d.Grant {
		t.Fatalf("stranger: %+v %v", d, err)
	}
	if d, err := e.AutoUnlock(ctx, "lobby-in", camFace("alice", 0.1), "evt-1", time.Now()); err != nil || d.Grant || d.Reason != access.DenySpoof {
		t.Fatalf("spoof: %+v %v", d, err)
	}
	t0 := time.Now()
	if d, err := e.AutoUnlock(ctx, "lobby-in", camFace("alice", 0.95), "evt-2", time.Now()); err != nil || !d.Grant {
		t.Fatalf("alice: %+v %v", d, err)
	}
	select {
	case cmds := <-got:
		if len(cmds) != 1 || cmds[0].Action != "unlock" || cmds[0].PersonID != "alice" || cmds[0].Event != "evt-2" {
			t.Fatalf("commands %+v", cmds)
		}
		t.Logf("decision → command at the controller: %v", time.Since(t0))
	case <-time.After(5 * time.Second):
		t.Fatal("no command reached the waiting controller")
	}
	if doors := e.DoorsWithCamera("cam001"); len(doors) != 1 || doors[0] != "lobby-in" {
		t.Fatalf("doors of cam001: %v", doors)
	}
}

// camFace is a passage of person at a door camera: two agreeing frames of their synthetic face.
func camFace(person string, live float32) access.CameraFace {
	sp := space.DefaultSpace
	return access.CameraFace{Person: person, Votes: 2, Liveness: live, Embedding: access.SyntheticFace(sp, person), Model: sp.Name}
}
