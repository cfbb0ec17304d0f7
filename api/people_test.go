package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/access"
	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// TestResidentsAndVisitors walks issue 19's flows through the API as the roles that use them:
// property staff register a resident with a lease, a card and a car, find them, and invite them
// to the app; the resident joins, invites a visitor whose QR code opens the allowed door in its
// window only (every use visible to the resident), opens a door from the phone, reports the card
// lost and revokes a visit; the lease ends and with it everything the resident and their
// visitors could open, in the API and in the controllers' caches.
func TestResidentsAndVisitors(t *testing.T) {
	s := newDoorSite(t)
	ctx := context.Background()
	ps := auth.NewPrincipals(s.pool, time.Second)
	a, err := New(Deps{Cameras: fakeCameras{}, Registry: prometheus.NewRegistry(), Access: s.engine, Audit: audit.New(s.pool, ""), Auth: ps},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	_, staff, _ := ps.Create(ctx, "estate office", auth.RoleProperty)
	_, operator, _ := ps.Create(ctx, "police post", auth.RoleOperator)
	_, alice, err := ps.CreateFor(ctx, "alice's phone", auth.RoleResident, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ps.Create(ctx, "unbound", auth.RoleResident); err == nil {
		t.Fatal("a resident token without a person was made")
	}
	call := func(tok, method, path string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	want := func(what string, code, wantCode int, out map[string]any) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("%s: %d %v, want %d", what, code, out, wantCode)
		}
	}
	ids := func(out map[string]any, key string) []string {
		var v []string
		list, _ := out[key].([]any)
		for _, it := range list {
			v = append(v, it.(map[string]any)["id"].(string))
		}
		return v
	}
	now := time.Now()

	// Staff register Frank: a person, a lease, a card and a car.
	code, out := call(operator, "GET", "/v1/people", nil)
	want("an operator lists people", code, 403, out)
	code, out = call(staff, "POST", "/v1/people", map[string]string{"id": "frank", "name": "Frank Wu", "kind": "resident"})
	want("staff add a resident", code, 201, out)
	code, out = call(staff, "POST", "/v1/people/frank/leases", map[string]any{"unit": "1-101", "starts": now.Add(-time.Hour), "ends": now.AddDate(0, 0, 30)})
	want("staff add a lease", code, 201, out)
	for _, c := range []map[string]string{{"kind": "card", "value": "CARD-FRANK"}, {"kind": "card", "value": "CARD-FRANK-2"}, {"kind": "plate", "value": "粤B·12345"}} {
		code, out = call(staff, "POST", "/v1/people/frank/credentials", c)
		want("staff add "+c["kind"], code, 201, out)
	}
	code, out = call(staff, "POST", "/v1/people/frank/credentials", map[string]string{"kind": "plate", "value": "粤B1234"})
	want("a plate one character short", code, 400, out)

	// Found by name, card and plate; his file shows the car's plate, never a card number.
	for _, q := range []string{"q=fran", "card=CARD-FRANK", "plate=" + "%E7%B2%A4B12345", "unit=1-101&q=wu"} {
		code, out = call(staff, "GET", "/v1/people?"+q, nil)
		if code != 200 || !slices.Equal(ids(out, "people"), []string{"frank"}) {
			t.Errorf("people?%s: %d %v", q, code, out)
		}
	}
	code, out = call(staff, "GET", "/v1/people/frank", nil)
	want("frank's file", code, 200, out)
	b, _ := json.Marshal(out)
	if !bytes.Contains(b, []byte(`"plate":"粤B12345"`)) || bytes.Contains(b, []byte("CARD-FRANK")) || len(out["leases"].([]any)) != 1 {
		t.Errorf("frank's file: %s", b)
	}
	code, out = call(staff, "GET", "/v1/leases?ending_within_days=31", nil)
	if code != 200 || len(out["leases"].([]any)) != 1 || out["leases"].([]any)[0].(map[string]any)["person"] != "frank" {
		t.Errorf("leases ending within 31 days: %d %v", code, out)
	}

	// Frank joins the app through his one-time link.
	code, out = call(staff, "POST", "/v1/people/frank/app-invitation", nil)
	want("an app invitation", code, 201, out)
	inviteCode := out["code"].(string)
	code, out = call("", "POST", "/v1/join", map[string]string{"code": inviteCode})
	want("joining", code, 201, out)
	frank := out["token"].(string)
	code, out = call("", "POST", "/v1/join", map[string]string{"code": inviteCode})
	want("joining twice with one link", code, 404, out)
	code, out = call(frank, "GET", "/v1/me", nil)
	if code != 200 || out["role"] != "resident" || out["person"].(map[string]any)["name"] != "Frank Wu" {
		t.Errorf("GET /v1/me with frank's token: %d %v", code, out)
	}
	code, out = call(frank, "GET", "/v1/me/home", nil)
	want("frank's home", code, 200, out)
	if out["person"].(map[string]any)["id"] != "frank" || !slices.Equal(ids(out, "doors"), []string{"lobby-in", "lobby-out", "night"}) {
		t.Errorf("frank's home: %v", out)
	}
	code, out = call(frank, "GET", "/v1/people", nil)
	want("a resident lists people", code, 403, out)

	// A visitor at the lobby for two hours, with a car.
	code, out = call(frank, "POST", "/v1/me/visitors", map[string]any{"name": "Vault", "from": now.Add(-time.Minute), "until": now.Add(2 * time.Hour), "doors": []string{"vault"}})
	want("a visitor at a door that is not frank's", code, 400, out)
	code, out = call(frank, "POST", "/v1/me/visitors", map[string]any{"name": "Grace", "from": now.Add(-time.Minute), "until": now.Add(2 * time.Hour), "doors": []string{"lobby-in"}, "plate": "粤A54321"})
	want("frank invites grace", code, 201, out)
	grace, graceVisit := out["qr"].(string), out["id"].(string)
	if _, d, _ := s.ask(t, "lobby-in", "qr", grace, nil, time.Now(), ""); !d.Grant {
		t.Errorf("grace's QR at the lobby: %+v", d)
	}
	if _, d, _ := s.ask(t, "lobby-out", "qr", grace, nil, time.Now(), ""); d.Grant || d.Reason != access.DenyNoRule {
		t.Errorf("grace's QR at a door her invitation does not name: %+v", d)
	}
	if _, d, _ := s.ask(t, "lobby-in", "qr", grace, nil, time.Now().Add(3*time.Hour), ""); d.Grant {
		t.Errorf("grace's QR after her window: %+v", d)
	}
	code, out = call(frank, "GET", "/v1/me/visitors", nil)
	want("frank's visitors", code, 200, out)
	if vs := out["visitors"].([]any); len(vs) != 1 || len(vs[0].(map[string]any)["uses"].([]any)) < 2 {
		t.Errorf("frank sees grace's uses: %v", out)
	}
	code, out = call(alice, "DELETE", "/v1/me/visitors/"+graceVisit, nil)
	want("alice revokes frank's visitor", code, 404, out)

	// Frank opens the lobby from his phone; not a door that is not his.
	code, out = call(frank, "POST", "/v1/me/doors/lobby-in/open", map[string]string{"reason": "courier at the intercom"})
	want("frank opens the lobby", code, 201, out)
	code, out = call(frank, "POST", "/v1/me/doors/vault/open", map[string]string{})
	want("frank opens a door not his", code, 403, out)

	// The card reported lost is refused at once; alice's card is not frank's to report.
	var cardID, aliceCard float64
	_, out = call(frank, "GET", "/v1/me/home", nil)
	for _, c := range out["person"].(map[string]any)["credentials"].([]any) {
		if c.(map[string]any)["kind"] == "card" && cardID == 0 {
			cardID = c.(map[string]any)["id"].(float64)
		}
	}
	_, aliceHome := call(alice, "GET", "/v1/me/home", nil)
	aliceCard = aliceHome["person"].(map[string]any)["credentials"].([]any)[0].(map[string]any)["id"].(float64)
	code, out = call(frank, "POST", "/v1/me/credentials/"+strconv.Itoa(int(aliceCard))+"/lost", nil)
	want("frank reports alice's card", code, 404, out)
	code, out = call(frank, "POST", "/v1/me/credentials/"+strconv.Itoa(int(cardID))+"/lost", nil)
	want("frank reports his card lost", code, 200, out)
	if _, d, _ := s.ask(t, "lobby-out", "card", "CARD-FRANK", nil, time.Now(), ""); d.Reason != access.DenyRevoked {
		t.Errorf("the lost card: %+v", d)
	}

	// Revoked visits stop at once.
	code, out = call(frank, "DELETE", "/v1/me/visitors/"+graceVisit, nil)
	want("frank revokes grace", code, 200, out)
	if _, d, _ := s.ask(t, "lobby-in", "qr", grace, nil, time.Now(), ""); d.Grant {
		t.Errorf("grace's revoked QR: %+v", d)
	}

	// The lease ends: frank's card, his visitors and his app stop opening anything.
	code, out = call(frank, "POST", "/v1/me/visitors", map[string]any{"name": "Heidi", "from": now.Add(-time.Minute), "until": now.Add(2 * time.Hour)})
	want("frank invites heidi", code, 201, out)
	heidi := out["qr"].(string)
	_, file := call(staff, "GET", "/v1/people/frank", nil)
	lease := int(file["leases"].([]any)[0].(map[string]any)["id"].(float64))
	code, out = call(staff, "POST", "/v1/leases/"+strconv.Itoa(lease)+"/end", map[string]string{})
	want("ending a lease without a reason", code, 400, out)
	code, out = call(staff, "POST", "/v1/leases/"+strconv.Itoa(lease)+"/end", map[string]string{"reason": "moved out"})
	want("staff end frank's lease", code, 200, out)
	for _, c := range []struct{ door, kind, value, reason string }{
		{"lobby-out", "card", "CARD-FRANK-2", access.DenyLeaseEnded},
		{"lobby-in", "qr", heidi, access.DenySponsor},
	} {
		if _, d, _ := s.ask(t, c.door, c.kind, c.value, nil, time.Now(), ""); d.Grant || d.Reason != c.reason {
			t.Errorf("%s after the lease ended: %+v, want %s", c.kind, d, c.reason)
		}
	}
	code, out = call(frank, "POST", "/v1/me/visitors", map[string]any{"name": "Ivan", "from": now.Add(time.Minute), "until": now.Add(2 * time.Hour)})
	want("an invitation after the lease ended", code, 400, out)
	code, out = call(frank, "POST", "/v1/me/doors/lobby-in/open", map[string]string{})
	want("a remote open after the lease ended", code, 403, out)
	// Groups, schedules and doors are edited as well as added.
	code, out = call(staff, "DELETE", "/v1/groups/cleaners/members/ivan", nil)
	want("taking ivan out of the cleaners", code, 200, out)
	code, out = call(staff, "DELETE", "/v1/groups/cleaners/members/ivan", nil)
	want("taking him out again", code, 404, out)
	code, out = call(staff, "DELETE", "/v1/schedules/holidays-only", nil)
	want("removing a schedule a rule uses", code, 400, out)
	code, out = call(staff, "PUT", "/v1/doors/night", map[string]any{"name": "Night door"})
	want("property staff change a door", code, 403, out)
	_, adminTok, _ := ps.Create(ctx, "site admin", auth.RoleAdmin)
	code, out = call(adminTok, "PUT", "/v1/doors/night", map[string]any{"name": "Night door", "camera_opens": "plates", "plate_policy": "confusable"})
	if d, _ := s.engine.Door("night"); code != 201 || d.Name != "Night door" || d.CameraOpens != access.CameraPlates || d.PlatePolicy != access.PlateConfusable {
		t.Errorf("an admin changes a door: %d %v → %+v", code, out, d)
	}
	code, out = call(adminTok, "PUT", "/v1/doors/night", map[string]any{"direction": "sideways"})
	want("a door's direction that is neither in nor out", code, 400, out)
	// Controllers' caches: frank's card and heidi's QR end where the lease did.
	cache, err := s.engine.Cache(ctx, "lobby-in", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cache.Credentials {
		if (c.PersonID == "frank" || c.Kind == access.KindQR && c.PersonID != "eve") && (c.Until == nil || c.Until.After(time.Now())) {
			t.Errorf("lobby-in's cache still opens for %s (%s) until %v", c.PersonID, c.Kind, c.Until)
		}
	}
}
