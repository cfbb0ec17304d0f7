package doorsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/access"
)

// fakeVigil answers every request with status and body, signed with key when sign is set (a
// forger signs with a key that is not the door's).
func fakeVigil(t *testing.T, status *atomic.Int64, body any, key []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := json.Marshal(body)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		w.Header().Set(access.HeaderTimestamp, ts)
		w.Header().Set(access.HeaderSignature, access.SignResponse(key, ts, r.Header.Get(access.HeaderNonce), out))
		w.WriteHeader(int(status.Load()))
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestFailsClosedOnAttack: a fail-safe door's controller. A grant signed with another key is a
// forgery: denied and counted, never decided from the cache. A refusal from vigil denies. Only
// sustained silence puts it offline; then the door stands unlocked for egress, but an unknown
// card is still refused, and only what the cache holds is granted.
func TestFailsClosedOnAttack(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	var status atomic.Int64
	status.Store(http.StatusOK)
	forged := fakeVigil(t, &status, access.Decision{Door: "d1", Grant: true, Reason: access.Granted}, []byte("not-the-door-key-not-the-door-ke"))
	c := New(forged.URL, "d1", key)
	c.OfflineAfter = 200 * time.Millisecond
	// The controller holds a cache (fail-safe) with one card.
	c.cache = &access.DoorCache{Door: "d1", Version: 7, FailMode: "safe"}
	cc := access.CachedCredential{ID: "e1", Kind: "card", Hash: access.CacheHash(key, "card", "C-1"), Alg: "door", PersonID: "wang"}
	c.entries = map[string]access.CachedCredential{"e1": cc}
	c.byHash = map[string][]access.CachedCredential{cc.Hash: {cc}}
	ctx := context.Background()

	if g, r, online := c.Present(ctx, "card", "C-1"); g || r != "answer_forged" || !online || c.BadAnswers.Load() != 1 {
		t.Fatalf("forged grant: %v %s %v, %d bad answers", g, r, online, c.BadAnswers.Load())
	}
	if c.Offline() || c.Unlocked() || c.Pending() != 0 {
		t.Fatal("a forged answer put the controller offline")
	}
	status.Store(http.StatusServiceUnavailable)
	refused := fakeVigil(t, &status, map[string]any{"error": "audit unavailable"}, key)
	c.Server = refused.URL
	if g, r, online := c.Present(ctx, "card", "C-1"); g || r != "refused_503" || !online || c.Offline() {
		t.Fatalf("vigil refusing: %v %s %v", g, r, online)
	}
	// vigil goes silent.
	c.Server = "http://127.0.0.1:1"
	if g, r, _ := c.Present(ctx, "card", "C-1"); g || r != "vigil_unreachable" {
		t.Fatalf("just gone: %v %s", g, r)
	}
	time.Sleep(250 * time.Millisecond)
	if !c.Offline() || !c.Unlocked() {
		t.Fatal("silent for longer than OfflineAfter, yet not offline and unlocked (fail-safe)")
	}
	if g, r, online := c.Present(ctx, "card", "C-1"); !g || online || r != access.Granted {
		t.Fatalf("cached card offline: %v %s %v", g, r, online)
	}
	if g, r, _ := c.Present(ctx, "card", "NOT-CACHED"); g || r != access.DenyUnknown {
		t.Fatalf("unknown card at a fail-safe door offline: %v %s", g, r)
	}
}

// TestOfflineKeypadLocks: cutting the controller's uplink does not buy unlimited PIN guesses:
// offline too, five refused PINs lock the keypad for a while (cards are still decided).
func TestOfflineKeypadLocks(t *testing.T) {
	c := &Controller{Door: "d1", Key: []byte("0123456789abcdef0123456789abcdef"), cache: &access.DoorCache{}}
	now := time.Now()
	for i := range 5 {
		if g, r := c.decideOffline(access.KindPIN, fmt.Sprintf("99%02d", i), now); g || r != access.DenyUnknown {
			t.Fatalf("guess %d: %v %s", i, g, r)
		}
	}
	if _, r := c.decideOffline(access.KindPIN, "1234", now); r != access.DenyPINLocked {
		t.Fatalf("a sixth PIN offline: %s, want %s", r, access.DenyPINLocked)
	}
	if _, r := c.decideOffline(access.KindCard, "C-1", now); r != access.DenyUnknown {
		t.Fatalf("a card at the locked keypad: %s", r)
	}
	if c.Pending() != 7 {
		t.Fatalf("%d offline decisions kept for upload, want 7", c.Pending())
	}
}
