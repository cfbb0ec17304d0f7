package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/access/audit"
	"github.com/vigil-oss/vigil/access/auth"
)

// TestCallerKey: an IPv6 host counts as its /64; X-Forwarded-For counts only from a trusted
// proxy, and then the last hop that is not itself a trusted proxy.
func TestCallerKey(t *testing.T) {
	s := &Server{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}
	for _, c := range []struct{ remote, xff, want string }{
		{"192.0.2.7:5000", "", "192.0.2.7"},
		{"192.0.2.7:5000", "203.0.113.9", "192.0.2.7"}, // not from a proxy: ignored
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "", "2001:db8:1:2::/64"},
		{"10.0.0.5:8000", "203.0.113.9", "203.0.113.9"},
		{"10.0.0.5:8000", "198.51.100.1, 203.0.113.9, 10.0.0.6", "203.0.113.9"}, // a forged first hop is not taken
		{"10.0.0.5:8000", "garbage", "10.0.0.5"},
		{"[::ffff:10.0.0.5]:8000", "203.0.113.9", "203.0.113.9"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.callerKey(r); got != c.want {
			t.Errorf("%s via %q: %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
}

// TestLimitsKeepTheBlocked: a flood of new addresses past maxCallers forgets callers that never
// failed, not the one that was blocked for guessing.
func TestLimitsKeepTheBlocked(t *testing.T) {
	l := newLimits()
	l.maxCallers = 1000
	now := time.Now()
	l.now = func() time.Time { return now }
	for range 40 {
		l.failed("198.51.100.66")
	}
	if !l.blocked("198.51.100.66") {
		t.Fatal("not blocked after 40 failures")
	}
	for i := range 5000 {
		now = now.Add(time.Microsecond)
		l.allow(fmt.Sprintf("2001:db8:%x::/64", i))
	}
	if len(l.callers) > l.maxCallers {
		t.Fatalf("%d callers kept, cap %d", len(l.callers), l.maxCallers)
	}
	if !l.blocked("198.51.100.66") {
		t.Fatal("the blocked caller was forgiven by a flood of new addresses")
	}
}

// TestTokenGuessingSparesTheDoors: an address that keeps guessing bearer tokens is throttled,
// while a controller at the same address (a shared NAT) still gets its answers.
func TestTokenGuessingSparesTheDoors(t *testing.T) {
	s := newDoorSite(t)
	a, err := New(Deps{Cameras: fakeCameras{}, Registry: prometheus.NewRegistry(), Access: s.engine, Audit: audit.New(s.pool, ""),
		Auth: auth.NewPrincipals(s.pool, time.Second)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(a.Handler())
	defer s.srv.Close()
	throttled := false
	for range 40 {
		req, _ := http.NewRequest("GET", s.srv.URL+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer vgl_guess")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		throttled = throttled || resp.StatusCode == 429
	}
	if !throttled {
		t.Fatal("40 guessed tokens were never throttled")
	}
	if code, out := s.signed(t, "GET", "lobby-in", "/v1/doors/lobby-in/credentials", "since=0", "since=0", nil, nil); code != 200 {
		t.Fatalf("the door behind the guessing address: %d %s", code, out)
	}
}
