package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
)

// signed sends a controller request signed for signedQuery but sent with query (a rewrite in
// transit when they differ), with extra headers.
func (s *doorSite) signed(t *testing.T, method, door, path, signedQuery, query string, body []byte, extra map[string]string) (int, []byte) {
	t.Helper()
	nonceN++
	nonce := fmt.Sprintf("proto-%016d", nonceN)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	u := s.srv.URL + path
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set(access.HeaderTimestamp, ts)
	req.Header.Set(access.HeaderNonce, nonce)
	req.Header.Set(access.HeaderSignature, access.Sign(s.keys[door], method, path, signedQuery, ts, nonce, body))
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestControllerProtocolHardening: the query is signed (a since rewritten in transit is refused),
// a delta names the version it applies to, a non-face body over 16 KB is never read, a refused
// request leaves no audit row of its own, and an address that keeps sending forgeries is
// throttled while an honest controller elsewhere goes on.
func TestControllerProtocolHardening(t *testing.T) {
	s := newDoorSite(t)
	path := "/v1/doors/lobby-in/credentials"
	code, out := s.signed(t, "GET", "lobby-in", path, "since=0", "since=0", nil, nil)
	var full access.DoorCache
	json.Unmarshal(out, &full)
	if code != 200 || !full.Full || full.Base != 0 {
		t.Fatalf("full sync: %d %s", code, out)
	}
	// The same request with since rewritten on the way (to make the controller keep revoked
	// credentials): the signature covers the query.
	if code, out := s.signed(t, "GET", "lobby-in", path, "since="+strconv.FormatInt(full.Version, 10), "since=1", nil, nil); code != 401 || !strings.Contains(string(out), access.DenyBadSignature) {
		t.Fatalf("since rewritten: %d %s", code, out)
	}
	// A change, then a delta: it names the version it is based on.
	_, _, err := s.engine.AddCredential(context.Background(), testAdmin, "alice", access.NewCredential{Kind: access.KindCard, Value: "CARD-ALICE-2"})
	if err != nil {
		t.Fatal(err)
	}
	q := "since=" + strconv.FormatInt(full.Version, 10)
	code, out = s.signed(t, "GET", "lobby-in", path, q, q, nil, nil)
	var delta access.DoorCache
	json.Unmarshal(out, &delta)
	if code != 200 || delta.Full || delta.Base != full.Version || len(delta.Credentials) != 1 {
		t.Fatalf("delta: %d %s", code, out)
	}
	// Cache entries are keyed per door: no plain SHA-256 of a card in them.
	for _, cc := range append(full.Credentials, delta.Credentials...) {
		if cc.Alg != "door" {
			t.Fatalf("a cache entry not keyed with the door's key: %+v", cc)
		}
	}

	// A big body on a card decision is cut at 16 KB: 413, never read whole.
	big := bytes.Repeat([]byte("x"), 1<<20)
	if code, _ := s.signed(t, "POST", "lobby-in", "/v1/doors/lobby-in/decisions", "", "", big, nil); code != 413 {
		t.Fatalf("1 MB card decision: %d, want 413", code)
	}
	var before, after int
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit`).Scan(&before)
	// Forgeries from one address: refused, counted, then throttled (429), and not one audit row
	// each.
	throttled := 0
	for i := range 60 {
		body := []byte(`{"credential":{"kind":"card","value":"CARD-ALICE"}}`)
		nonceN++
		req, _ := http.NewRequest("POST", s.srv.URL+"/v1/doors/lobby-in/decisions", bytes.NewReader(body))
		req.Header.Set(access.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
		req.Header.Set(access.HeaderNonce, fmt.Sprintf("forged-%016d-%d", nonceN, i))
		req.Header.Set(access.HeaderSignature, strings.Repeat("ab", 32))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			throttled++
		}
	}
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit`).Scan(&after)
	if throttled < 20 || after != before {
		t.Fatalf("60 forgeries: %d throttled, %d audit rows written at once", throttled, after-before)
	}
	// An unknown door with an attacker's megabyte of id is counted as unknown, not stored.
	longID := strings.Repeat("d", 100000)
	req, _ := http.NewRequest("POST", s.srv.URL+"/v1/doors/"+longID+"/decisions", nil)
	req.RemoteAddr = "192.0.2.9:1234"
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if err := s.engine.FlushRefusals(context.Background()); err != nil {
		t.Fatal(err)
	}
	var longest int
	s.pool.QueryRow(context.Background(), `SELECT max(length(detail)) FROM audit WHERE action = 'door.refused'`).Scan(&longest)
	if longest > 500 {
		t.Fatalf("a refusal's audit row holds %d bytes", longest)
	}
}

// TestControllerLargeBodies: a face photo is the only large body, and nobody can make the node
// hold many: an oversized one is refused (bad_body) and costs the address a failure token; one
// trickled in is cut at the deadline; one address sends at most two at once.
func TestControllerLargeBodies(t *testing.T) {
	s := newDoorSite(t)
	defer func(d time.Duration) { bodyDeadline = d }(bodyDeadline)
	bodyDeadline = 500 * time.Millisecond
	face := map[string]string{headerKind: "face"}
	if code, _ := s.signed(t, "POST", "lobby-in", "/v1/doors/lobby-in/decisions", "", "", bytes.Repeat([]byte("x"), maxFaceBody+1), face); code != 413 {
		t.Fatalf("an oversized photo: %d, want 413", code)
	}
	// Two photos trickled in (headers, then a few bytes, then nothing) hold this address's two
	// large bodies; a third is answered 429 at once.
	addr := strings.TrimPrefix(s.srv.URL, "http://")
	stall := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/doors/lobby-in/decisions HTTP/1.1\r\nHost: x\r\n%s: face\r\n%s: %d\r\n%s: stall-%016d\r\n%s: %s\r\nContent-Length: 1000000\r\n\r\n{\"cred",
			headerKind, access.HeaderTimestamp, time.Now().Unix(), access.HeaderNonce, time.Now().UnixNano(), access.HeaderSignature, strings.Repeat("ab", 32))
		return c
	}
	c1, c2 := stall(), stall()
	defer c1.Close()
	defer c2.Close()
	time.Sleep(100 * time.Millisecond)
	if code, _ := s.signed(t, "POST", "lobby-in", "/v1/doors/lobby-in/decisions", "", "", []byte(`{"credential":{"kind":"face","value":""}}`), face); code != 429 {
		t.Fatalf("a third photo from one address: %d, want 429", code)
	}
	// The trickled ones are cut at the deadline and answered.
	for _, c := range []net.Conn{c1, c2} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("a trickled body was not cut: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("a trickled body: %d, want 400", resp.StatusCode)
		}
	}
	if err := s.engine.FlushRefusals(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	s.pool.QueryRow(context.Background(), `SELECT coalesce(sum(result_count), 0) FROM audit WHERE action = 'door.refused' AND reason = $1`, access.DenyBadBody).Scan(&n)
	if n != 3 {
		t.Fatalf("%d bad_body refusals audited, want 3", n)
	}
}

// TestPINLockout: five wrong PINs at a door lock its keypad for a while; the right PIN is then
// refused too (pin_locked), and cards still open.
func TestPINLockout(t *testing.T) {
	s := newDoorSite(t)
	now := time.Now()
	for i := range 5 {
		if _, d, _ := s.ask(t, "lobby-out", "pin", fmt.Sprintf("00%02d", i), nil, now, ""); d.Reason != access.DenyUnknown {
			t.Fatalf("wrong PIN %d: %+v", i, d)
		}
	}
	if _, d, _ := s.ask(t, "lobby-out", "pin", "9111", nil, now, ""); d.Grant || d.Reason != access.DenyPINLocked {
		t.Fatalf("the right PIN at a locked keypad: %+v", d)
	}
	if _, d, _ := s.ask(t, "lobby-in", "card", "CARD-ALICE", nil, now, ""); !d.Grant {
		t.Fatalf("a card at the locked door's neighbour: %+v", d)
	}
	// A real PIN refused by the rules (outside its schedule) names nobody, and counts like a
	// wrong one: the answer's reason must not let a guesser try real PINs for free.
	for i := range 5 {
		_, d, _ := s.ask(t, "night", "pin", "9111", nil, now, "")
		if d.Grant || d.Reason != access.DenySchedule || d.PersonID != "" {
			t.Fatalf("a real PIN outside its schedule, try %d: %+v", i, d)
		}
	}
	if _, d, _ := s.ask(t, "night", "pin", "9111", nil, now, ""); d.Reason != access.DenyPINLocked {
		t.Fatalf("five refused real PINs did not lock the keypad: %+v", d)
	}
}

// TestOfflineDecisionsChecked: an offline grant of a credential the door was never sent is
// recorded as unexpected (a controller granting what vigil did not give it is tampered with).
func TestOfflineDecisionsChecked(t *testing.T) {
	s := newDoorSite(t)
	q := "since=0"
	code, out := s.signed(t, "GET", "lobby-in", "/v1/doors/lobby-in/credentials", q, q, nil, nil)
	var set access.DoorCache
	json.Unmarshal(out, &set)
	if code != 200 || len(set.Credentials) == 0 {
		t.Fatalf("sync: %d %s", code, out)
	}
	now := time.Now()
	body, _ := json.Marshal(map[string]any{"decisions": []access.OfflineDecision{
		{Time: now, Kind: "card", Hash: set.Credentials[0].Hash, PersonID: set.Credentials[0].PersonID, Grant: true, Reason: access.Granted},
		{Time: now, Kind: "card", Hash: access.CacheHash(s.keys["lobby-in"], "card", "NEVER-ISSUED"), Grant: true, Reason: access.Granted},
		{Time: now, Kind: "card", Hash: "00", Grant: false, Reason: access.DenyUnknown},
	}})
	code, out = s.signed(t, "POST", "lobby-in", "/v1/doors/lobby-in/offline-decisions", "", "", body, nil)
	var res struct{ Recorded, Unexpected int }
	json.Unmarshal(out, &res)
	if code != 200 || res.Recorded != 3 || res.Unexpected != 1 {
		t.Fatalf("offline upload: %d %s", code, out)
	}
	var n int
	s.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit WHERE action = 'door.decision.offline.unexpected'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d unexpected offline grants audited", n)
	}
}

// TestCardAndPINStayOnline: a door whose rule asks for a card and its holder's PIN has nothing in
// its offline cache for that rule: a card alone must not open it while vigil is away.
func TestCardAndPINStayOnline(t *testing.T) {
	s := newDoorSite(t)
	ctx := context.Background()
	key, err := s.engine.AddDoor(ctx, testAdmin, access.Door{ID: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	s.keys["vault"] = key
	if err := s.engine.AddRule(ctx, testAdmin, "vault", "person", "alice", "", "card+pin"); err != nil {
		t.Fatal(err)
	}
	code, out := s.signed(t, "GET", "vault", "/v1/doors/vault/credentials", "since=0", "since=0", nil, nil)
	var set access.DoorCache
	json.Unmarshal(out, &set)
	if code != 200 || !set.Full || len(set.Credentials) != 0 {
		t.Fatalf("a card+PIN door's cache: %d %s", code, out)
	}
	if _, d, _ := s.ask(t, "vault", "card", "CARD-ALICE", nil, time.Now(), ""); d.Grant || d.Reason != access.DenyPINRequired {
		t.Fatalf("card alone online: %+v", d)
	}
}
